"""HIL suite: the service and the simulator as separate OS processes on a real CAN bus (see docs/hil.md)."""
