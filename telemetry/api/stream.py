"""WebSocket streaming hub: one producer polls the service, bounded per-client queues fan the updates out.

The producer task asks the service for `changes_since(seq)` at the highest subscribed rate (in a worker thread,
so a slow call never stalls the event loop), keeps the latest value of every key, and hands each client the
coalesced updates matching its glob patterns at that client's own rate. A client that falls due while nothing new
has arrived for it stays due (its cadence does not move on), and the producer polls again after a quarter period,
for at most one period, so data arriving just after a tick still goes out at once instead of a period later.
A subscription resolves its key list against the service's keys at subscribe time. Queues are bounded and drop the
oldest message when full; the number dropped goes out with the client's next message. The producer never awaits a
client: each client has its own sender task, so a client that stops reading only loses its own messages.

Protocol (JSON text frames). Client -> server: `{"subscribe": ["SSC_Suction.*", "serial.fan_speed"],
"rate_hz": 10}` (any time; replaces the subscription; rate clamped to 1..50 Hz). Server -> client:
`{"type": "subscribed", "patterns": [...], "rate_hz": r, "keys": [...]}`, then
`{"type": "update", "t": now, "seq": n, "updates": {key: [t, value, valid]}, "dropped": n}`; a bad message gets
`{"type": "error", "code": ..., "message": ...}` and the connection stays open.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from telemetry.api.service_port import ChangeBatch, SignalUpdate, TelemetryService

log = logging.getLogger(__name__)

MIN_RATE_HZ = 1.0
MAX_RATE_HZ = 50.0
MAX_PATTERNS = 256
IDLE_PERIOD_S = 0.5
#: while a client is due without new data the producer polls this many times per period (bounded: one period)
WAIT_POLLS_PER_PERIOD = 4
_TICK_SLACK_S = 1e-3
_DUMPS = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode

Fragment = str  # pre-encoded JSON member '"key":[t,value,valid]', encoded once per change for all clients


def _json_value(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def clamp_rate(rate: object, default: float) -> float:
    """Rate in Hz clamped to 1..50; `default` when absent. Raises ValueError for a non-number."""
    if rate is None:
        return default
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not math.isfinite(rate):
        raise ValueError("rate_hz must be a finite number")
    return min(MAX_RATE_HZ, max(MIN_RATE_HZ, float(rate)))


@dataclass(eq=False)
class Client:
    """One WebSocket subscriber: patterns, rate, pending coalesced updates and its bounded queue."""

    queue_size: int
    patterns: tuple[str, ...] = ()
    rate_hz: float = 10.0
    next_due: float = 0.0
    pending: dict[str, Fragment] = field(default_factory=dict)
    dropped: int = 0
    dropped_total: int = 0
    sent: int = 0
    _match_cache: dict[str, bool] = field(default_factory=dict)
    queue: asyncio.Queue[dict[str, Any]] = field(init=False)

    def __post_init__(self) -> None:
        self.queue = asyncio.Queue(maxsize=self.queue_size)

    def matches(self, key: str) -> bool:
        hit = self._match_cache.get(key)
        if hit is None:
            hit = any(fnmatch.fnmatchcase(key, pattern) for pattern in self.patterns)
            self._match_cache[key] = hit
        return hit

    def subscribe(self, patterns: tuple[str, ...], rate_hz: float) -> None:
        self.patterns = patterns
        self.rate_hz = rate_hz
        self._match_cache.clear()
        self.pending.clear()
        self.next_due = 0.0

    def due(self, mono: float, tolerance: float) -> bool:
        return bool(self.patterns) and mono + tolerance >= self.next_due

    def waiting(self, mono: float, tolerance: float) -> bool:
        """Due with nothing to send, for less than one of its periods: worth an early poll."""
        return self.due(mono, tolerance) and not self.pending and mono - self.next_due < 1.0 / self.rate_hz

    def offer(self, message: dict[str, Any]) -> None:
        """Queue without waiting; when full drop the oldest queued message and count it."""
        if self.queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
                self.dropped += 1
                self.dropped_total += 1
        self.queue.put_nowait(message)


class StreamHub:
    """Owns the producer task and the set of connected clients of one app."""

    def __init__(self, service: TelemetryService, queue_size: int, default_rate_hz: float) -> None:
        self._service = service
        self._queue_size = queue_size
        self._default_rate = default_rate_hz
        self._clients: set[Client] = set()
        self._latest: dict[str, Fragment] = {}
        self._seq = 0
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.dropped_total = 0  # messages dropped for clients that have since disconnected, plus live ones
        self.producer_errors = 0

    # ---- statistics -------------------------------------------------------------------------------------
    @property
    def client_count(self) -> int:
        return len(self._clients)

    def dropped_messages_total(self) -> int:
        return self.dropped_total + sum(c.dropped_total for c in self._clients)

    # ---- lifecycle --------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._produce(), name="ws-producer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # ---- producer ---------------------------------------------------------------------------------------
    def _period(self) -> float:
        rates = [c.rate_hz for c in self._clients if c.patterns]
        return 1.0 / max(rates) if rates else IDLE_PERIOD_S

    async def _produce(self) -> None:
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        while True:
            try:
                batch, now = await asyncio.to_thread(self._poll)
                self._seq = batch.seq
                self._fan_out(batch.updates, now, loop.time())
            except Exception:  # the service misbehaving must not kill streaming; count and go on
                self.producer_errors += 1
                log.exception("stream producer: service call failed")
            self._wake.clear()
            period, now_mono = self._period(), loop.time()
            if now_mono >= next_tick - _TICK_SLACK_S:  # a regular tick, not a subscription's wake-up or a retry
                # absolute tick times: a busy event loop delays a tick but does not slow the cadence
                next_tick = max(next_tick + period, now_mono - period)
            next_tick = min(next_tick, now_mono + period)  # a higher new rate takes effect at once
            wake_at = next_tick
            if any(c.waiting(now_mono, 0.5 * period) for c in self._clients):
                wake_at = min(wake_at, now_mono + period / WAIT_POLLS_PER_PERIOD)
            delay = max(0.0, wake_at - loop.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)

    def _poll(self) -> tuple[ChangeBatch, float]:
        return self._service.changes_since(self._seq), self._service.now()

    def _fan_out(self, updates: Iterable[SignalUpdate], now: float, mono: float) -> None:
        changed: list[tuple[str, Fragment]] = []
        for u in updates:
            entry = _DUMPS({u.key: [_json_value(float(u.t)), _json_value(u.value), bool(u.valid)]})[1:-1]
            self._latest[u.key] = entry
            changed.append((u.key, entry))
        tolerance = 0.5 * self._period()  # a tick a little early still counts, else the client loses a period
        for client in self._clients:
            if not client.patterns:
                continue
            for key, entry in changed:
                if client.matches(key):
                    client.pending[key] = entry
            if client.pending and client.due(mono, tolerance):  # due without data: stays due until data comes
                # keep a steady cadence, but never try to catch up after a stall
                client.next_due = max(client.next_due + 1.0 / client.rate_hz, mono + 0.5 / client.rate_hz)
                body = ",".join(client.pending.values())
                client.offer({"type": "update", "t": now, "seq": self._seq, "updates": body})
                client.pending = {}

    # ---- per connection ---------------------------------------------------------------------------------
    def add_client(self) -> Client:
        """A new subscriber with its own bounded queue (what `serve` sends from)."""
        client = Client(queue_size=self._queue_size, rate_hz=self._default_rate)
        self._clients.add(client)
        return client

    def remove_client(self, client: Client) -> None:
        self._clients.discard(client)
        self.dropped_total += client.dropped_total

    async def serve(self, websocket: WebSocket) -> None:
        """Run one accepted connection until it closes."""
        client = self.add_client()
        sender = asyncio.get_running_loop().create_task(self._send_loop(websocket, client), name="ws-sender")
        try:
            while True:
                text = await websocket.receive_text()
                self.handle_message(client, text)
        except WebSocketDisconnect:
            pass
        finally:
            self.remove_client(client)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender

    def handle_message(self, client: Client, text: str) -> None:
        """One client -> server text frame: a subscription (answered on the client's queue) or an error."""
        try:
            msg = json.loads(text)
            if not isinstance(msg, dict) or "subscribe" not in msg:
                raise ValueError('expected an object {"subscribe": [patterns], "rate_hz": number}')
            unknown = set(msg) - {"subscribe", "rate_hz"}
            if unknown:
                raise ValueError(f"unknown fields: {sorted(unknown)}")
            patterns = msg["subscribe"]
            if not isinstance(patterns, list) or not all(isinstance(p, str) and p for p in patterns):
                raise ValueError("subscribe must be a list of non-empty glob pattern strings")
            if len(patterns) > MAX_PATTERNS:
                raise ValueError(f"at most {MAX_PATTERNS} patterns")
            rate = clamp_rate(msg.get("rate_hz"), self._default_rate)
        except ValueError as exc:  # JSONDecodeError is a ValueError
            client.offer({"type": "error", "code": "bad_subscribe", "message": str(exc)})
            return
        client.subscribe(tuple(patterns), rate)
        # the service's keys now (a lock and a copy), not the producer's last poll, which may be up to
        # IDLE_PERIOD_S old: a client subscribing right after start-up still learns every key
        try:
            known = list(self._service.signal_keys())
        except Exception:  # the service misbehaving: fall back to what the producer has seen
            log.exception("stream: signal_keys failed")
            known = list(self._latest)
        keys = sorted(k for k in set(known).union(self._latest) if client.matches(k))
        client.offer({"type": "subscribed", "patterns": patterns, "rate_hz": rate, "keys": keys})
        # the first update carries the current state (keys the producer has not seen yet follow with its next poll)
        client.pending = {k: self._latest[k] for k in keys if k in self._latest}
        self._wake.set()

    @staticmethod
    async def _send_loop(websocket: WebSocket, client: Client) -> None:
        while True:
            message = await client.queue.get()
            if message["type"] == "update":
                text = (
                    f'{{"type":"update","t":{_DUMPS(message["t"])},"seq":{message["seq"]},'
                    f'"updates":{{{message["updates"]}}},"dropped":{client.dropped}}}'
                )
                client.dropped = 0
            else:
                text = _DUMPS(message)
            await websocket.send_text(text)
            client.sent += 1
