"""WebSocket stream over the real service (simulated vehicle on a virtual bus, serial firmware simulator on a pty):
glob subscriptions, rate clamping, bad messages, and a slow client that never reads."""

from __future__ import annotations

import asyncio
import base64
import bisect
import itertools
import json
import os
import random
import socket
import struct
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from telemetry.api.service_port import ChangeBatch, SignalUpdate
from telemetry.api.stream import StreamHub
from telemetry.api.testing import RunningApi, running_api


@pytest.fixture(scope="module")
def api() -> Iterator[RunningApi]:
    with running_api(ws_queue_size=4, send_buffer_bytes=8192) as running:
        yield running


def recv_json(ws: ClientConnection, timeout: float = 3.0) -> dict[str, Any]:
    msg = json.loads(ws.recv(timeout=timeout))
    assert isinstance(msg, dict)
    return msg


def recv_until(ws: ClientConnection, kind: str, timeout: float = 3.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        msg = recv_json(ws, max(0.01, deadline - time.monotonic()))
        if msg["type"] == kind:
            return msg


def test_glob_subscription_streams_only_matching_keys(api: RunningApi) -> None:
    with connect(api.ws_url) as ws:
        ws.send(json.dumps({"subscribe": ["SSC_Suction.*", "serial.fan_speed"], "rate_hz": 20}))
        ack = recv_json(ws)
        assert ack["type"] == "subscribed" and ack["rate_hz"] == 20
        assert "serial.fan_speed" in ack["keys"] and "SSC_Suction.SuctionPressure" in ack["keys"]
        assert "serial.fan_speed.raw" not in ack["keys"]
        first = recv_until(ws, "update")
        assert set(first["updates"]) == set(ack["keys"])  # the first update carries the current state
        seen: set[str] = set()
        last_seq = first["seq"]
        for _ in range(10):
            msg = recv_until(ws, "update")
            assert msg["seq"] >= last_seq and msg["dropped"] == 0
            last_seq = msg["seq"]
            for key, (t, value, valid) in msg["updates"].items():
                assert key.startswith("SSC_Suction.") or key == "serial.fan_speed"
                assert isinstance(t, float) and isinstance(valid, bool)
                assert value is None or isinstance(value, (int, float))
                seen.add(key)
        assert "serial.fan_speed" in seen


def test_rate_is_honoured_and_clamped(api: RunningApi) -> None:
    with connect(api.ws_url) as ws:
        ws.send(json.dumps({"subscribe": ["serial.*"], "rate_hz": 1000}))
        assert recv_json(ws)["rate_hz"] == 50
        ws.send(json.dumps({"subscribe": ["serial.*"], "rate_hz": 5}))
        assert recv_until(ws, "subscribed")["rate_hz"] == 5
        recv_until(ws, "update")
        start, n = time.monotonic(), 0
        while time.monotonic() - start < 1.2:
            recv_until(ws, "update")
            n += 1
        assert 3 <= n <= 8, n  # ~5 Hz
        ws.send(json.dumps({"subscribe": ["serial.*"], "rate_hz": 0}))
        assert recv_until(ws, "subscribed")["rate_hz"] == 1


def test_subscribing_right_after_start_gets_every_key_and_their_values() -> None:
    # the service starts while the stream hub idles (it polls every 0.5 s with nobody subscribed): the key list
    # comes from the service at subscribe time, not from the hub's last poll, which saw nothing yet
    with running_api(start=False) as cold:
        expected = sorted(k for k in cold.service.signal_keys() if k.startswith("SSC_Suction."))
        assert expected
        cold.backend.start()
        with connect(cold.ws_url) as ws:
            ws.send(json.dumps({"subscribe": ["SSC_Suction.*"], "rate_hz": 20}))
            ack = recv_until(ws, "subscribed")
            assert ack["keys"] == expected
            seen: set[str] = set()
            deadline = time.monotonic() + 5.0
            while seen != set(expected) and time.monotonic() < deadline:
                seen.update(recv_until(ws, "update", timeout=5.0)["updates"])
            assert seen == set(expected)


def test_a_20_hz_client_on_20_hz_store_updates_gets_close_to_20_updates_per_second(api: RunningApi) -> None:
    # SSC_Suction comes at 50 Hz on CAN and reaches the store with every 20 Hz control cycle; the producer ticks
    # at 20 Hz too, so a tick regularly finds nothing new: the client must stay due until the data comes
    with connect(api.ws_url) as ws:
        ws.send(json.dumps({"subscribe": ["SSC_Suction.*"], "rate_hz": 20}))
        recv_until(ws, "update")
        recv_until(ws, "update")
        start, n = time.monotonic(), 0
        while time.monotonic() - start < 3.0:
            recv_until(ws, "update", timeout=1.0)
            n += 1
        rate = n / (time.monotonic() - start)
        assert 17.0 <= rate <= 21.0, rate


class JitteredStore:
    """Just the stream's part of the service port: one key written every `period` with +-`jitter` around the
    producer's own tick phase, the worst case of a control loop and a producer both at 20 Hz."""

    KEY = "SSC_Suction.SuctionFanSpeed"

    def __init__(self, period: float = 0.05, jitter: float = 0.012, seed: int = 7) -> None:
        self.period, self.jitter, self.rng = period, jitter, random.Random(seed)
        self.writes: list[float] = []

    def begin(self, t0: float, n: int = 400) -> None:
        self.writes = [t0 + k * self.period + self.rng.uniform(-self.jitter, self.jitter) for k in range(1, n)]

    def now(self) -> float:
        return time.time()

    def signal_keys(self) -> list[str]:
        return [self.KEY]

    def changes_since(self, seq: int) -> ChangeBatch:
        n = bisect.bisect(self.writes, time.monotonic())  # the asyncio loop's clock
        if n <= seq:
            return ChangeBatch(seq, [])
        return ChangeBatch(n, [SignalUpdate(self.KEY, float(n), float(n), True)])


def test_a_due_client_stays_due_until_jittered_data_arrives() -> None:
    async def run() -> tuple[int, int]:
        store = JitteredStore()
        hub = StreamHub(store, queue_size=256, default_rate_hz=20)  # type: ignore[arg-type]  # the port's subset
        client = hub.add_client()
        hub.handle_message(client, json.dumps({"subscribe": [JitteredStore.KEY], "rate_hz": 20}))
        store.begin(time.monotonic())
        hub.start()  # its first poll now: the 20 Hz ticks fall where the writes jitter
        await asyncio.sleep(3.0)
        await hub.stop()
        written = bisect.bisect(store.writes, time.monotonic())
        updates = 0
        while not client.queue.empty():
            updates += client.queue.get_nowait()["type"] == "update"
        return updates, written

    updates, written = asyncio.run(run())
    # one update per store write (at most one per tick): none lost to a tick that came a little early
    assert written >= 55 and updates >= written - 3, (updates, written)


@pytest.mark.parametrize(
    "bad",
    [
        "not json",
        json.dumps([1, 2]),
        json.dumps({"subscribe": "serial.*"}),
        json.dumps({"subscribe": [""]}),
        json.dumps({"subscribe": ["serial.*"], "rate_hz": "fast"}),
        json.dumps({"subscribe": ["serial.*"], "bogus": 1}),
    ],
)
def test_bad_subscribe_gets_error_and_connection_stays(api: RunningApi, bad: str) -> None:
    with connect(api.ws_url) as ws:
        ws.send(bad)
        err = recv_json(ws)
        assert err["type"] == "error" and err["code"] == "bad_subscribe" and err["message"]
        ws.send(json.dumps({"subscribe": ["serial.fan_speed"], "rate_hz": 10}))
        assert recv_until(ws, "subscribed")["keys"] == ["serial.fan_speed"]
        assert "serial.fan_speed" in recv_until(ws, "update")["updates"]


class RawWebSocket:
    """Minimal client on a raw socket with a tiny receive buffer: it can stop reading entirely."""

    def __init__(self, base_url: str) -> None:
        host, port = base_url.removeprefix("http://").split(":")
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        self.sock.connect((host, int(port)))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET /api/v1/stream HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.sock.recv(1024)
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101")

    def send_text(self, text: str) -> None:
        payload, mask = text.encode(), os.urandom(4)
        assert len(payload) < 126
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)

    def _read(self, n: int) -> bytes:
        while len(self.buf) < n:
            self.buf += self.sock.recv(65536)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_text(self) -> str:
        b0, b1 = self._read(2)
        length = b1 & 0x7F
        if length == 126:
            (length,) = struct.unpack(">H", self._read(2))
        elif length == 127:
            (length,) = struct.unpack(">Q", self._read(8))
        assert b0 & 0x0F == 1
        return self._read(length).decode()


def test_slow_client_never_stalls_others_and_learns_its_drops(api: RunningApi) -> None:
    slow = RawWebSocket(api.base_url)
    slow.send_text(json.dumps({"subscribe": ["*"], "rate_hz": 50}))
    try:
        with connect(api.ws_url) as fast, httpx.Client(base_url=api.base_url) as http:
            # 10 Hz against the 20 Hz control loop that writes the store: every due tick has fresh data
            fast.send(json.dumps({"subscribe": ["serial.fan_speed"], "rate_hz": 10}))
            recv_until(fast, "update")
            start, arrivals = time.monotonic(), []
            dropped_on_server = 0.0
            while time.monotonic() - start < 8.0:
                recv_until(fast, "update", timeout=1.0)  # a stall would time out here
                arrivals.append(time.monotonic())
                if len(arrivals) % 10 == 0:
                    metrics = http.get("/metrics").text
                    line = next(x for x in metrics.splitlines() if x.startswith("uniross_ws_dropped_messages_total"))
                    dropped_on_server = float(line.split()[-1])
                    if dropped_on_server > 0 and time.monotonic() - start > 2.0:
                        break
            assert dropped_on_server > 0, "the slow client never filled its queue"
            gaps = [b - a for a, b in itertools.pairwise(arrivals)]
            rate = len(arrivals) / (arrivals[-1] - start)
            assert rate > 7, rate  # ~10 Hz despite the stuck client
            assert max(gaps) < 0.5, max(gaps)
        # the slow client starts reading: a later update reports how many were dropped
        deadline = time.monotonic() + 10
        total = 0
        while time.monotonic() < deadline and total == 0:
            msg = json.loads(slow.recv_text())
            if msg.get("type") == "update":
                total += msg["dropped"]
        assert total > 0
    finally:
        slow.sock.close()
