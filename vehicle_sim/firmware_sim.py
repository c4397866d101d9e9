"""SSC firmware simulator: the firmware side of the serial protocol, in real time, with fault injection.

:class:`FirmwareSimulator` streams SAMPLE_BATCH frames (default 1 kHz per channel, 20 samples every 20 ms) built
from ``truth()`` (the vehicle simulator's current physical values, linearly interpolated between two calls) plus
Gaussian sensor noise, sends HEARTBEATs, answers HELLO and COMMANDs (ACK, NAK for unknown commands, retried tokens
answered again without executing twice), and forwards LOG/FAULT records. Fault injection keeps exact counts in
:meth:`FirmwareSimulator.injected` so that tests can compare them with the link's counters:

- ``drop_frames(n)``: the next n sample batches consume a sequence number but are never sent;
- ``corrupt_crc(n)``: the next n sample batches are sent with a wrong CRC;
- ``inject_noise_bytes(n)``: n random bytes between two frames;
- ``stall(seconds)``: the firmware hangs: sends nothing, reads nothing, samples of that time are lost;
- ``ignore_commands(n)``: the next n COMMAND frames are neither executed nor answered;
- ``unplug()`` / ``replug()``: the device disappears and comes back; ``protocol_major``: version mismatch.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping

import numpy as np
from cobs import cobs

from firmware_bridge.serial_link import (
    CHANNELS,
    PROTOCOL_MAJOR,
    PROTOCOL_MINOR,
    Command,
    CommandId,
    CommandReply,
    CommandStatus,
    FirmwareRecord,
    Frame,
    Heartbeat,
    Hello,
    HelloReply,
    Message,
    SampleBatchMessage,
    SampleEncoding,
    Severity,
    StreamParser,
    decode_message,
    encode_message,
)
from firmware_bridge.serial_link.framing import DELIMITER, ProtocolError

from .serial_transport import SimTransport, open_pty_pair, open_transport

__all__ = ["FirmwareSimulator", "default_truth", "open_pty_pair"]

Truth = Callable[[], Mapping[str, float]]
#: Standard deviation of the sensor noise per channel, physical units.
NOISE_STD: dict[str, float] = {
    "suction_pressure": 20.0,
    "fan_speed": 3.0,
    "fan_drive_pressure": 0.4,
    "nozzle_dp": 4.0,
}
MAX_TX_BACKLOG = 64 * 1024
_REPLAY_TOKENS = 32


def default_truth(clock: Callable[[], float] = time.monotonic) -> Truth:
    """A plausible sweeper working point: fan near 2600 rpm, pressures following the fan affinity laws."""

    def truth() -> dict[str, float]:
        t = clock()
        rpm = 2600.0 + 40.0 * math.sin(2 * math.pi * 0.2 * t)
        load = (rpm / 2600.0) ** 2
        return {
            "suction_pressure": -4200.0 * load + 100.0 * math.sin(2 * math.pi * 0.5 * t),
            "fan_speed": rpm,
            "fan_drive_pressure": 150.0 * load,
            "nozzle_dp": 600.0 * load,
        }

    return truth


class FirmwareSimulator:
    """Firmware end of the serial link on ``port_or_url``: ``"pty"``, ``"tcp://HOST:PORT"`` or a pyserial URL.

    ``link_url`` is what the host's ``SerialLink`` must open. Runs its own thread; ``close()`` joins it.
    """

    def __init__(
        self,
        port_or_url: str = "pty",
        truth: Truth | None = None,
        sample_rate_hz: int = 1000,
        batch_samples: int = 20,
        seed: int = 0,
        *,
        protocol_major: int = PROTOCOL_MAJOR,
        protocol_minor: int = PROTOCOL_MINOR,
        heartbeat_period: float = 0.05,
        encoding: SampleEncoding = SampleEncoding.INT16_SCALED,
        noise_std: Mapping[str, float] | None = None,
        firmware_name: str = "ssc-sim",
        start: bool = True,
    ) -> None:
        self._transport: SimTransport = open_transport(port_or_url)
        self.link_url = self._transport.link_url
        self._truth = truth or default_truth()
        self._rate = sample_rate_hz
        self._batch = batch_samples
        self._period = batch_samples / sample_rate_hz
        self._rng = np.random.default_rng(seed)
        self._major, self._minor = protocol_major, protocol_minor
        self._hb_period = heartbeat_period
        self._encoding = encoding
        std = {**NOISE_STD, **(noise_std or {})}
        self._noise_std = np.array([std[spec.name] for spec in CHANNELS])
        self._channel_ids = tuple(spec.id for spec in CHANNELS)
        self._firmware_name = firmware_name
        self._parser = StreamParser()
        self._seq = 0
        self._tx_backlog = bytearray()
        self._prev_truth: np.ndarray | None = None
        self._streaming = True
        self._replies: OrderedDict[int, CommandReply] = OrderedDict()
        self._lock = threading.Lock()
        self._outbox: list[bytes | Message] = []  # noise bytes and records queued by other threads
        self._pending = {"drop": 0, "corrupt": 0, "ignore": 0}
        self._stall_window = (0.0, 0.0)
        self._injected = dict.fromkeys(
            (
                "dropped_frames",
                "dropped_samples",
                "corrupted_frames",
                "corrupted_samples",
                "noise_bytes",
                "noise_nonzero_bytes",
                "stalls",
                "stall_lost_samples",
                "ignored_commands",
            ),
            0,
        )
        self._stats = dict.fromkeys(
            (
                "batches_sent",
                "samples_sent",
                "heartbeats_sent",
                "hello_replies",
                "acks",
                "naks",
                "host_heartbeats",
                "rx_version_errors",
                "rx_malformed",
                "tx_dropped_bytes",
                "commands_replayed",
                "truth_errors",
            ),
            0,
        )
        self.executed_commands: list[tuple[int, bytes]] = []
        self._start_time = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if start:
            self.start()

    # ------------------------------------------------------------------ control
    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="firmware-sim", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 1.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._transport.close()

    def __enter__(self) -> FirmwareSimulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def injected(self) -> dict[str, int]:
        """Exact counts of the faults actually injected so far."""
        with self._lock:
            return dict(self._injected)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self._stats)

    def pending_faults(self) -> int:
        """Frame faults requested but not yet applied (drop, corrupt, ignore) plus queued noise/records."""
        with self._lock:
            return sum(self._pending.values()) + len(self._outbox)

    # ------------------------------------------------------------------ fault injection
    def drop_frames(self, n: int) -> None:
        with self._lock:
            self._pending["drop"] += n

    def corrupt_crc(self, n: int) -> None:
        with self._lock:
            self._pending["corrupt"] += n

    def ignore_commands(self, n: int) -> None:
        with self._lock:
            self._pending["ignore"] += n

    def inject_noise_bytes(self, n: int) -> None:
        noise = self._rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        with self._lock:
            self._outbox.append(noise)

    def stall(self, seconds: float) -> None:
        now = time.monotonic()
        with self._lock:
            start, end = self._stall_window
            self._stall_window = (start if now < end else now, max(end, now + seconds))
            self._injected["stalls"] += 1

    def log(self, text: str, code: int = 0, severity: Severity = Severity.INFO) -> None:
        self._queue_record(FirmwareRecord(False, severity, code, self._uptime_ms(), text))

    def fault(self, code: int, text: str, active: bool = True, severity: Severity = Severity.ERROR) -> None:
        self._queue_record(FirmwareRecord(True, severity, code, self._uptime_ms(), text, active))

    def unplug(self) -> None:
        """The device disappears (USB adapter pulled): the link's port fails."""
        with self._lock:
            self._transport.unplug()

    def replug(self) -> None:
        with self._lock:
            self._transport.replug()

    def _queue_record(self, record: FirmwareRecord) -> None:
        with self._lock:
            self._outbox.append(record)

    def _uptime_ms(self) -> int:
        return int((time.monotonic() - self._start_time) * 1000) & 0xFFFFFFFF

    # ------------------------------------------------------------------ firmware loop
    def _run(self) -> None:
        t0 = time.monotonic()
        batch_no = 0
        next_hb = t0
        while not self._stop.is_set():
            now = time.monotonic()
            with self._lock:
                stall_start, stall_end = self._stall_window
            if now < stall_end:
                self._stop.wait(min(stall_end - now, 0.02))
                continue
            due = t0 + (batch_no + 1) * self._period
            data = self._transport.read(max(0.0, min(due, next_hb) - now, 0.0))
            if data:
                for frame in self._parser.feed(data):
                    self._on_frame(frame)
            now = time.monotonic()
            while t0 + (batch_no + 1) * self._period <= now:
                due = t0 + (batch_no + 1) * self._period
                if stall_start <= due < stall_end:
                    self._bump(self._injected, "stall_lost_samples", self._batch)
                    self._prev_truth = None
                else:
                    self._send_batch(batch_no * self._batch)
                batch_no += 1
            if now >= next_hb:
                next_hb = now + self._hb_period
                self._send(Heartbeat(self._uptime_ms()))
                self._bump(self._stats, "heartbeats_sent")
            self._flush_outbox()

    def _bump(self, table: dict[str, int], key: str, n: int = 1) -> None:
        with self._lock:
            table[key] += n

    def _flush_outbox(self) -> None:
        with self._lock:
            items, self._outbox = self._outbox, []
        for item in items:
            if isinstance(item, bytes):
                with self._lock:
                    self._injected["noise_bytes"] += len(item)
                    self._injected["noise_nonzero_bytes"] += len(item) - item.count(0)
                self._emit(item)
            else:
                self._send(item)

    def _truth_block(self) -> np.ndarray:
        try:
            values = self._truth()
        except Exception:  # the vehicle model failed: send invalid samples, keep the firmware running
            self._bump(self._stats, "truth_errors")
            values = {}
        cur = np.array([float(values.get(spec.name, math.nan)) for spec in CHANNELS])
        prev = cur if self._prev_truth is None else self._prev_truth
        self._prev_truth = cur
        frac = np.arange(1, self._batch + 1) / self._batch
        block = prev[:, None] + (cur - prev)[:, None] * frac[None, :]
        return block + self._rng.normal(size=block.shape) * self._noise_std[:, None]

    def _send_batch(self, first_index: int) -> None:
        samples = self._truth_block()
        if not self._streaming:
            return
        msg = SampleBatchMessage.from_physical(self._channel_ids, first_index, samples, self._encoding)
        with self._lock:
            action = next((k for k in ("drop", "corrupt") if self._pending[k]), None)
            if action is not None:
                self._pending[action] -= 1
                prefix = "dropped" if action == "drop" else "corrupted"
                self._injected[f"{prefix}_frames"] += 1
                self._injected[f"{prefix}_samples"] += self._batch
            else:
                self._stats["batches_sent"] += 1
                self._stats["samples_sent"] += self._batch
        wire = self._encode(msg)
        if action == "drop":
            return
        if action == "corrupt":
            body = bytearray(cobs.decode(wire[1:-1]))
            body[-1] ^= 0x5A
            wire = DELIMITER + cobs.encode(bytes(body)) + DELIMITER
        self._emit(wire)

    def _encode(self, msg: Message) -> bytes:
        seq, self._seq = self._seq, (self._seq + 1) & 0xFFFF
        return encode_message(msg, seq, from_firmware=True, major=self._major, minor=self._minor)

    def _send(self, msg: Message) -> None:
        self._emit(self._encode(msg))

    def _emit(self, data: bytes) -> None:
        backlog = self._tx_backlog
        backlog += data
        written = self._transport.write(bytes(backlog))
        del backlog[:written]
        if len(backlog) > MAX_TX_BACKLOG:
            self._bump(self._stats, "tx_dropped_bytes", len(backlog))
            backlog.clear()

    def _on_frame(self, frame: Frame) -> None:
        if frame.from_firmware:
            return  # our own echo
        try:
            msg = decode_message(frame)
        except ProtocolError:
            self._bump(self._stats, "rx_malformed")
            return
        if isinstance(msg, Hello):
            self._bump(self._stats, "hello_replies")
            self._send(HelloReply(self._rate, self._channel_ids, f"{self._firmware_name} {self._major}.{self._minor}"))
        elif frame.major != self._major:
            self._bump(self._stats, "rx_version_errors")
        elif isinstance(msg, Heartbeat):
            self._bump(self._stats, "host_heartbeats")
        elif isinstance(msg, Command):
            self._on_command(msg)

    def _on_command(self, cmd: Command) -> None:
        with self._lock:
            if self._pending["ignore"]:
                self._pending["ignore"] -= 1
                self._injected["ignored_commands"] += 1
                return
        previous = self._replies.get(cmd.token)
        if previous is not None and previous.command_id == cmd.command_id:
            self._bump(self._stats, "commands_replayed")
            self._send(previous)  # a retry of a command already executed: answer again, do not execute twice
            return
        reply = self._execute(cmd)
        self._replies[cmd.token] = reply
        while len(self._replies) > _REPLAY_TOKENS:
            self._replies.popitem(last=False)
        self._bump(self._stats, "acks" if reply.acked else "naks")
        self._send(reply)

    def _execute(self, cmd: Command) -> CommandReply:
        def answer(status: CommandStatus, data: bytes = b"") -> CommandReply:
            return CommandReply(cmd.token, cmd.command_id, status, status == CommandStatus.OK, data)

        if cmd.command_id not in CommandId._value2member_map_:
            return answer(CommandStatus.UNKNOWN_COMMAND)
        expected_len = 1 if cmd.command_id == CommandId.SET_STREAMING else 0
        if len(cmd.data) != expected_len:
            return answer(CommandStatus.BAD_PAYLOAD)
        self.executed_commands.append((cmd.command_id, cmd.data))
        if cmd.command_id == CommandId.SET_STREAMING:
            self._streaming = bool(cmd.data[0])
        elif cmd.command_id == CommandId.PING:
            return answer(CommandStatus.OK, self._uptime_ms().to_bytes(4, "little"))
        return answer(CommandStatus.OK)
