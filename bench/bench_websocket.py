"""Benchmark: N WebSocket clients at 10 Hz against a running service on 127.0.0.1.

Measures the delivered update rate (per client and in total, against the requested rate), the latency from
a sample's timestamp to client receipt (p50/p99, service clock aligned to the client's by a REST round trip),
and what the load does to the control loop: deadline misses and loop p99 during a baseline window without
clients vs during the run (printed as a ratio, the baseline measured in the same run).

The server runs in its own process (so the clients' CPU does not share its GIL): by default
`uniross run --sim` (the real service with the embedded simulated vehicle), or --url URL (an already running service).
Bounded: --duration seconds (default 20) and --clients (default 200).

Run: .venv/bin/python bench/bench_websocket.py [--clients 200] [--duration 20] [--url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass, field

import httpx
import numpy as np
from websockets.asyncio.client import connect

from telemetry.api.testing import spawned_service

PATTERNS = ["SSC_Suction.*", "serial.fan_speed", "serial.suction_pressure", "CCVS1.WheelBasedVehicleSpeed"]


@dataclass
class ClientStats:
    messages: int = 0
    dropped: int = 0
    latencies: list[float] = field(default_factory=list)
    fanout: list[float] = field(default_factory=list)


def clock_offset(url: str, rounds: int = 5) -> float:
    """service clock - local monotonic, from the round trip with the smallest delay."""
    best: tuple[float, float] | None = None
    with httpx.Client(base_url=url) as c:
        for _ in range(rounds):
            t0 = time.monotonic()
            now = c.get("/healthz").json()["now"]
            t1 = time.monotonic()
            if best is None or t1 - t0 < best[0]:
                best = (t1 - t0, now - (t0 + t1) / 2)
    assert best is not None
    return best[1]


def loop_health(url: str) -> dict[str, float]:
    loop = httpx.get(url + "/api/v1/health", timeout=5).json()["loop"]
    return {"misses": loop["deadline_misses"], "p99": loop["cycle_p99_s"] or 0.0, "cycles": loop["cycles"]}


async def client(url: str, rate_hz: float, stop_at: float, offset: float, stats: ClientStats) -> None:
    ws_url = url.replace("http://", "ws://") + "/api/v1/stream"
    async with connect(ws_url, max_size=2**22, ping_interval=None) as ws:
        await ws.send(json.dumps({"subscribe": PATTERNS, "rate_hz": rate_hz}))
        first = True
        while (remaining := stop_at - time.monotonic()) > 0:
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=remaining)
            except TimeoutError:
                break
            received = time.monotonic() + offset
            msg = json.loads(raw)
            if msg.get("type") != "update":
                continue
            if first:  # the first update is the current state, not a fresh sample
                first = False
                continue
            stats.messages += 1
            stats.dropped += msg["dropped"]
            newest = max(v[0] for v in msg["updates"].values())
            stats.latencies.append(received - newest)
            stats.fanout.append(received - msg["t"])


async def run_clients(url: str, n: int, rate_hz: float, duration: float, offset: float) -> list[ClientStats]:
    stats = [ClientStats() for _ in range(n)]
    stop_at = time.monotonic() + duration
    await asyncio.gather(*(client(url, rate_hz, stop_at, offset, s) for s in stats))
    return stats


def bench(url: str, n: int, rate_hz: float, duration: float, baseline_s: float) -> None:
    offset = clock_offset(url)
    h0 = loop_health(url)
    time.sleep(baseline_s)
    h1 = loop_health(url)
    t_start = time.monotonic()
    stats = asyncio.run(run_clients(url, n, rate_hz, duration, offset))
    elapsed = time.monotonic() - t_start
    h2 = loop_health(url)
    lat = np.concatenate([np.asarray(s.latencies) for s in stats]) * 1e3
    per_client = np.array([s.messages for s in stats]) / elapsed
    total = per_client.sum()
    base_cycles = max(1.0, h1["cycles"] - h0["cycles"])
    run_cycles = max(1.0, h2["cycles"] - h1["cycles"])
    print(f"clients {n} at {rate_hz:g} Hz for {elapsed:.1f} s against {url}")
    print(f"delivered: {total:.0f} msg/s total, per client p50 {np.median(per_client):.2f} / min "
          f"{per_client.min():.2f} msg/s  ->  ratio to requested {np.median(per_client) / rate_hz:.3f}")
    print(f"dropped messages: {sum(s.dropped for s in stats)}; clients that got nothing: "
          f"{sum(1 for s in stats if s.messages == 0)}")
    fan = np.concatenate([np.asarray(s.fanout) for s in stats]) * 1e3
    if fan.size:
        print(f"latency fan-out->client: p50 {np.percentile(fan, 50):.1f} ms, p99 {np.percentile(fan, 99):.1f} ms")
    if lat.size:
        print(f"latency sample->client: p50 {np.percentile(lat, 50):.1f} ms, p99 {np.percentile(lat, 99):.1f} ms, "
              f"max {lat.max():.1f} ms ({lat.size} messages)")
    print(f"control loop baseline ({baseline_s:g} s, no clients): {h1['misses'] - h0['misses']:.0f} deadline misses "
          f"in {base_cycles:.0f} cycles, p99 {h1['p99'] * 1e3:.3f} ms")
    print(f"control loop under load: {h2['misses'] - h1['misses']:.0f} deadline misses in {run_cycles:.0f} cycles, "
          f"p99 {h2['p99'] * 1e3:.3f} ms  ->  p99 ratio load/baseline {h2['p99'] / max(h1['p99'], 1e-9):.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--baseline", type=float, default=5.0)
    parser.add_argument("--url", default=None)
    args = parser.parse_args()
    args.clients = max(1, min(args.clients, 2000))
    args.duration = max(1.0, min(args.duration, 120.0))
    if args.url:
        bench(args.url.rstrip("/"), args.clients, args.rate, args.duration, args.baseline)
    else:
        with spawned_service() as url:
            bench(url, args.clients, args.rate, args.duration, args.baseline)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
