"""A CAN bus peer run as its own OS process by the HIL tests: sends or receives numbered frames.

    python hil_tests/bus_peer.py send    --interface socketcan --channel vcan0 --id 0x18FEF127 --count 200
    python hil_tests/bus_peer.py receive --interface socketcan --channel vcan0 --id 0x18FEF127 --count 200

Frame i carries ``payload(i)``: the counter as uint32 little-endian, then its bitwise complement's low
4 bytes, so a receiver can tell a lost frame from a corrupted one. The receiver prints ``READY`` once its
socket is open, then one ``RESULT {json}`` line with the counters it got, in arrival order. With ``--data HEX`` the
sender sends that fixed payload instead (background load), paced on absolute deadlines, and prints
``SENT {json}`` (frames, seconds).
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import time
from collections.abc import Sequence

import can


def payload(counter: int) -> bytes:
    return struct.pack("<II", counter, ~counter & 0xFFFFFFFF)


def counter_of(data: bytes) -> int | None:
    """The counter of a well-formed payload, else None."""
    if len(data) != 8:
        return None
    counter, check = struct.unpack("<II", data)
    return counter if check == ~counter & 0xFFFFFFFF else None


def open_bus(args: argparse.Namespace) -> can.BusABC:
    filters = [{"can_id": args.id, "can_mask": 0x1FFFFFFF, "extended": True}]
    return can.Bus(interface=args.interface, channel=args.channel, can_filters=filters)


def send(args: argparse.Namespace) -> int:
    with open_bus(args) as bus:
        if args.data is not None:
            return send_fixed(bus, args)
        for counter in range(args.count):
            bus.send(can.Message(arbitration_id=args.id, is_extended_id=True, data=payload(counter)))
            time.sleep(args.period)
    return 0


def send_fixed(bus: can.BusABC, args: argparse.Namespace) -> int:
    """``args.count`` frames of ``args.data``, frame i due at ``i * period`` (no drift when a sleep runs late)."""
    msg = can.Message(arbitration_id=args.id, is_extended_id=True, data=bytes.fromhex(args.data))
    start = time.monotonic()
    for i in range(args.count):
        delay = start + i * args.period - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        bus.send(msg)
    print("SENT " + json.dumps({"frames": args.count, "seconds": time.monotonic() - start}), flush=True)
    return 0


def receive(args: argparse.Namespace) -> int:
    counters: list[int] = []
    corrupt = 0
    with open_bus(args) as bus:
        print("READY", flush=True)
        while len(counters) + corrupt < args.count:
            msg = bus.recv(timeout=args.idle_timeout)
            if msg is None:
                break
            counter = counter_of(bytes(msg.data))
            if counter is None:
                corrupt += 1
            else:
                counters.append(counter)
    print("RESULT " + json.dumps({"counters": counters, "corrupt": corrupt}), flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("role", choices=("send", "receive"))
    parser.add_argument("--interface", required=True)
    parser.add_argument("--channel", required=True)
    parser.add_argument("--id", type=lambda text: int(text, 0), required=True, help="29-bit CAN id")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--period", type=float, default=0.0005, help="seconds between sent frames")
    parser.add_argument("--data", help="send this fixed payload (hex) instead of numbered frames")
    parser.add_argument("--idle-timeout", type=float, default=10.0, help="receiver gives up after this")
    args = parser.parse_args(argv)
    return send(args) if args.role == "send" else receive(args)


if __name__ == "__main__":
    sys.exit(main())
