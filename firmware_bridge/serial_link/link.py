"""Runtime of the serial firmware link: port, reader thread, handshake, heartbeats, commands, reconnect.

:class:`SerialLink` opens anything ``serial.serial_for_url`` opens (a tty, a pty path, ``loop://``,
``socket://host:port``). One daemon reader thread reads chunks, parses them (:mod:`.framing`), accounts them
(:mod:`.receiver`), sends the host heartbeat and HELLO, supervises the firmware's liveness and reopens the port
with exponential backoff when the device disappears. The caller (the CAN side) never blocks on it: it polls
:meth:`SerialLink.drain_samples` and :meth:`SerialLink.drain_events`. Only :meth:`SerialLink.send_command`
waits, for at most ``timeout * (retries + 1)``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import serial

from .framing import PROTOCOL_MAJOR, PROTOCOL_MINOR, SEQ_MODULO, StreamParser
from .messages import Command, CommandReply, Heartbeat, Hello, HelloReply, Message, encode_message
from .receiver import (
    Event,
    LinkEvent,
    LinkEventKind,
    LinkState,
    RxTracker,
    SampleBatch,
)

READ_SIZE = 4096
log = logging.getLogger(__name__)
_PORT_ERRORS = (serial.SerialException, OSError)


class CommandOutcome(StrEnum):
    ACK = "ack"
    NAK = "nak"
    TIMEOUT = "timeout"  # no reply after all attempts
    LINK_DOWN = "link_down"  # not sent: the link is not up


@dataclass(frozen=True, slots=True)
class CommandResult:
    outcome: CommandOutcome
    command_id: int
    status: int | None  # CommandStatus value from the ACK/NAK, None without a reply
    data: bytes
    attempts: int
    latency_s: float

    @property
    def ok(self) -> bool:
        return self.outcome is CommandOutcome.ACK


class _Pending:
    __slots__ = ("command_id", "done", "reply")

    def __init__(self, command_id: int) -> None:
        self.command_id = command_id
        self.done = threading.Event()
        self.reply: CommandReply | None = None


class SerialLink:
    """Host side of the SSC serial protocol on one port; thread-safe public methods.

    ``link_timeout``: the link is lost when no valid firmware frame arrived for that long. ``heartbeat_period``:
    period of the host's own HEARTBEAT. ``hello_period``: HELLO repetition while waiting for the handshake.
    ``reconnect_backoff``: (first, max) delay between open attempts, doubled after each failure.
    """

    def __init__(
        self,
        url: str,
        baudrate: int = 921600,
        *,
        link_timeout: float = 0.25,
        heartbeat_period: float = 0.05,
        hello_period: float = 0.1,
        incompatible_retry: float = 1.0,
        max_batches: int = 1000,
        max_events: int = 256,
        reconnect_backoff: tuple[float, float] = (0.05, 1.0),
        read_timeout: float = 0.005,
        write_timeout: float = 0.1,
        software: str = "uniross-obc",
        clock: Callable[[], float] = time.monotonic,
        start: bool = True,
    ) -> None:
        serial.serial_for_url(url, do_not_open=True)  # raises ValueError on a malformed URL now, not in the thread
        self.url = url
        self._baudrate = baudrate
        self._link_timeout = link_timeout
        self._heartbeat_period = heartbeat_period
        self._hello_period = hello_period
        self._incompatible_retry = incompatible_retry
        self._backoff = reconnect_backoff
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._software = software
        self._clock = clock
        self._parser = StreamParser()
        self._rx = RxTracker(max_batches=max_batches, max_events=max_events)
        self._port: serial.SerialBase | None = None
        self._port_lock = threading.Lock()  # guards _port and every write
        self._tx_seq = 0
        self._state = LinkState.DISCONNECTED
        self._error: str | None = None
        self._started_at = clock()
        self._next_heartbeat = 0.0
        self._next_hello = 0.0
        self._pending: dict[int, _Pending] = {}
        self._pending_lock = threading.Lock()
        self._token = 0
        self._stats_lock = threading.Lock()
        self._stats = dict.fromkeys(
            (
                "rx_bytes",
                "tx_frames",
                "tx_errors",
                "heartbeats_tx",
                "opens",
                "reconnects",
                "open_failures",
                "disconnects",
                "link_up",
                "link_lost",
                "cmd_sent",
                "cmd_retries",
                "cmd_acks",
                "cmd_naks",
                "cmd_timeouts",
                "unmatched_replies",
                "internal_errors",
            ),
            0,
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if start:
            self.start()

    # ------------------------------------------------------------------ public API
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"serial-link {self.url}", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 1.0) -> None:
        """Stop the reader thread (joined with ``timeout``) and close the port."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._close_port()

    def __enter__(self) -> SerialLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def state(self) -> LinkState:
        return self._state

    @property
    def error(self) -> str | None:
        """Why the link is refused or down (incompatible version, last open/read error)."""
        return self._error

    @property
    def firmware(self) -> HelloReply | None:
        """The firmware's last compatible HELLO_REPLY."""
        return self._rx.firmware

    def is_alive(self, now: float | None = None) -> bool:
        now = self._clock() if now is None else now
        last = self._rx.last_rx
        return self._state is LinkState.UP and last is not None and now - last <= self._link_timeout

    def drain_samples(self) -> list[SampleBatch]:
        return self._rx.batches.drain()

    def drain_events(self) -> list[Event]:
        return self._rx.events.drain()

    def counters(self) -> dict[str, int]:
        with self._stats_lock:
            stats = dict(self._stats)
        return {**self._parser.counters(), **self._rx.counters.as_dict(), **stats}

    def send_command(self, cmd_id: int, payload: bytes = b"", timeout: float = 0.1, retries: int = 2) -> CommandResult:
        """Send a COMMAND and wait for its ACK/NAK; resend the same token on timeout, ``retries`` times."""
        start = self._clock()
        if self._state is not LinkState.UP:
            return CommandResult(CommandOutcome.LINK_DOWN, cmd_id, None, b"", 0, 0.0)
        pending = _Pending(cmd_id)
        with self._pending_lock:
            self._token = (self._token + 1) % SEQ_MODULO
            token = self._token
            self._pending[token] = pending
        try:
            for attempt in range(1, retries + 2):
                self._count("cmd_sent" if attempt == 1 else "cmd_retries")
                self._send(Command(token, cmd_id, payload))
                if pending.done.wait(timeout):
                    reply = pending.reply
                    assert reply is not None
                    self._count("cmd_acks" if reply.acked else "cmd_naks")
                    outcome = CommandOutcome.ACK if reply.acked else CommandOutcome.NAK
                    return CommandResult(outcome, cmd_id, reply.status, reply.data, attempt, self._clock() - start)
            self._count("cmd_timeouts")
            return CommandResult(CommandOutcome.TIMEOUT, cmd_id, None, b"", retries + 1, self._clock() - start)
        finally:
            with self._pending_lock:
                self._pending.pop(token, None)

    def write_raw(self, data: bytes) -> bool:
        """Write pre-framed bytes as they are (replay of a capture, diagnostics, loopback tests)."""
        with self._port_lock:
            if self._port is None:
                return False
            try:
                self._port.write(data)
            except _PORT_ERRORS:
                self._count("tx_errors")
                return False
        return True

    # ------------------------------------------------------------------ reader thread
    def _run(self) -> None:
        backoff = self._backoff[0]
        while not self._stop.is_set():
            port = self._port
            if port is None:
                if self._open():
                    backoff = self._backoff[0]
                else:
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, self._backoff[1])
                continue
            try:
                data = port.read(READ_SIZE)
            except _PORT_ERRORS as exc:
                self._lose_port(f"device disconnected: {exc}")
                continue
            now = self._clock()
            try:
                if data:
                    self._on_bytes(data, now)
                self._service(now)
            except Exception:  # a bug must not silently kill the reader: count it, log it, keep the link running
                self._count("internal_errors")
                log.exception("serial link %s: unexpected error in the reader thread", self.url)

    def _open(self) -> bool:
        try:
            port = serial.serial_for_url(
                self.url, baudrate=self._baudrate, timeout=self._read_timeout, write_timeout=self._write_timeout
            )
        except _PORT_ERRORS as exc:
            self._count("open_failures")
            self._error = f"cannot open {self.url}: {exc}"
            return False
        with self._port_lock:
            self._port = port
        self._parser.reset()
        self._rx.reset_session()
        if self._stats["opens"]:
            self._count("reconnects")
        self._count("opens")
        self._state = LinkState.CONNECTING
        self._next_hello = self._next_heartbeat = self._clock()
        return True

    def _close_port(self) -> None:
        with self._port_lock:
            port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(*_PORT_ERRORS):
                port.close()

    def _lose_port(self, reason: str) -> None:
        self._close_port()
        self._count("disconnects")
        self._error = reason
        self._set_down(LinkState.DISCONNECTED, reason, self._clock())

    def _set_down(self, state: LinkState, reason: str, now: float) -> None:
        if self._state is LinkState.UP:
            self._count("link_lost")
            self._rx.push_event(LinkEvent(LinkEventKind.LINK_LOST, now, reason))
        self._state = state

    def _on_bytes(self, data: bytes, now: float) -> None:
        self._count("rx_bytes", len(data))
        for frame in self._parser.feed(data):
            answer = self._rx.process(frame, now)
            if isinstance(answer, HelloReply):
                self._on_hello_reply(answer, frame.major, frame.minor, now)
            elif isinstance(answer, CommandReply):
                self._on_reply(answer)

    def _on_hello_reply(self, reply: HelloReply, major: int, minor: int, now: float) -> None:
        if major != PROTOCOL_MAJOR:
            self._error = (
                f"incompatible firmware protocol {major}.{minor} ({reply.firmware!r}); this host speaks "
                f"{PROTOCOL_MAJOR}.{PROTOCOL_MINOR}: major versions differ, link refused"
            )
            if self._state is not LinkState.INCOMPATIBLE:
                self._set_down(LinkState.INCOMPATIBLE, self._error, now)
                self._rx.push_event(LinkEvent(LinkEventKind.INCOMPATIBLE, now, self._error))
            return
        if self._state is not LinkState.UP:
            self._state = LinkState.UP
            self._error = None
            self._count("link_up")
            reason = f"handshake with {reply.firmware!r}, protocol {major}.{minor}"
            self._rx.push_event(LinkEvent(LinkEventKind.LINK_UP, now, reason))

    def _on_reply(self, reply: CommandReply) -> None:
        with self._pending_lock:
            pending = self._pending.get(reply.token)
            if pending is None or pending.command_id != reply.command_id or pending.done.is_set():
                pending = None
            else:
                pending.reply = reply
                pending.done.set()
        if pending is None:
            self._count("unmatched_replies")

    def _service(self, now: float) -> None:
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + self._heartbeat_period
            if self._send(Heartbeat(int((now - self._started_at) * 1000) & 0xFFFFFFFF)):
                self._count("heartbeats_tx")
        state = self._state
        if state is LinkState.UP:
            last = self._rx.last_rx
            if last is None or now - last > self._link_timeout:
                silent = "ever" if last is None else f"{now - last:.3f} s"
                self._set_down(LinkState.CONNECTING, f"no frame from the firmware for {silent}", now)
                self._next_hello = now
        elif now >= self._next_hello:
            retry = self._incompatible_retry if state is LinkState.INCOMPATIBLE else self._hello_period
            self._next_hello = now + retry
            self._send(Hello(self._software))

    def _send(self, msg: Message) -> bool:
        with self._port_lock:
            port = self._port
            if port is None:
                return False
            data = encode_message(msg, self._tx_seq, from_firmware=False)
            self._tx_seq = (self._tx_seq + 1) % SEQ_MODULO
            try:
                port.write(data)
            except _PORT_ERRORS:
                self._count("tx_errors")
                return False
        self._count("tx_frames")
        return True

    def _count(self, name: str, n: int = 1) -> None:
        with self._stats_lock:
            self._stats[name] += n
