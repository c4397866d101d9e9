"""``python -m vehicle_sim``: the ``uniross sim`` command."""

from vehicle_sim.cli import main

main()
