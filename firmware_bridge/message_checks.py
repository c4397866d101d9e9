"""ValidityTracker: per-message validity kept beside the decoded values (rolling counter, checksum, timeout).

Rules (docs/can_protocol.md), opendbc style:
- Checksum: CRC-8/SAE-J1850 over the PGN data id and bytes 0..6, checked for a whole message column at once with
  :func:`firmware_bridge.checksum.batch_checksums`. Frames with a bad checksum are counted and removed from the
  batch (their values never reach the store); they feed a leaky bucket (+1 bad, -1 good, floor 0, cap
  ``bucket_max``) and the message is checksum-invalid while that bucket is above 1.
- Rolling counter: per (message, source address), so two senders of one PGN are two sequences. A step other than
  +1 (mod 16) adds 1 to that sender's bucket, a good step removes 1; counter-invalid while above 1: one dropped
  frame is tolerated, a frozen or jumping counter is not. The first frame after start or a timeout re-synchronises.
- Timeout: ``max(3 * cycle, cycle + 50 ms)`` without a good frame (``check_timeouts(now)``). Reception time is
  the ``now`` passed to ``update`` (bus timestamps may be on another clock).
- Hysteresis: a message that never arrived or timed out becomes valid again only after ``recover_frames`` good
  frames; counter/checksum faults clear only when their bucket has drained.
Messages sent by ``own_node`` (our own transmissions, not received back) are not tracked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
from cantools.database.can import Database

from firmware_bridge.batch_decoder import DecodedBatch, DecodedMessage
from firmware_bridge.checksum import CHECKSUM_BYTE, batch_checksums
from firmware_bridge.dbc_database import MessageInfo, all_message_info

COUNTER_MODULO = 16
BUCKET_LIMIT = 1  # invalid while the bucket is above this


@dataclass
class MessageValidity:
    """Validity of one message (docs/architecture.md). ``last_rx`` is -inf until a good frame arrived."""

    valid: bool = False
    timed_out: bool = True
    counter_ok: bool = True
    checksum_ok: bool = True
    last_rx: float = -math.inf
    counter_errors: int = 0
    checksum_errors: int = 0
    timeouts: int = 0


def leaky_bucket(bucket: int, fails: npt.NDArray[np.bool_], cap: int) -> int:
    """Bucket after a sequence of checks: +1 per failure (up to ``cap``), -1 per pass (floor 0)."""
    if not fails.any():
        return max(0, bucket - int(fails.shape[0]))
    for failed in fails.tolist():
        bucket = min(cap, bucket + 1) if failed else max(0, bucket - 1)
    return bucket


@dataclass
class _SenderCounter:
    last: int | None = None
    bucket: int = 0


class _Tracked:
    def __init__(self, info: MessageInfo) -> None:
        self.info = info
        self.validity = MessageValidity()
        self.senders: dict[int, _SenderCounter] = {}
        self.checksum_bucket = 0
        self.good_since_timeout = 0


class ValidityTracker:
    """Counter, checksum and timeout checks for every received message of a database."""

    def __init__(self, db: Database, *, own_node: str | None = None, recover_frames: int = 3,
                 bucket_max: int = 5, timeout_scale: float = 1.0) -> None:
        if timeout_scale < 1.0:
            raise ValueError("timeout_scale must be >= 1 (the DBC timeouts are the tightest allowed)")
        self.timeout_scale = timeout_scale
        self._recover = recover_frames
        self._cap = bucket_max
        self._tracked = {
            name: _Tracked(info) for name, info in all_message_info(db).items()
            if own_node is None or own_node not in info.message.senders
        }
        self._errors = {"counter_jump": 0, "checksum": 0, "timeout": 0}

    @property
    def error_counts(self) -> dict[str, int]:
        """Totals per reason: ``counter_jump``, ``checksum``, ``timeout``."""
        return dict(self._errors)

    def update(self, decoded: DecodedBatch, now: float) -> DecodedBatch:
        """Check a decoded batch; returns it without the frames that failed their checksum."""
        messages: dict[str, DecodedMessage] = {}
        for name, msg in decoded.messages.items():
            tracked = self._tracked.get(name)
            messages[name] = msg if tracked is None else self._check(tracked, msg, now)
        return DecodedBatch({k: v for k, v in messages.items() if len(v)}, decoded.rejects)

    def _check(self, t: _Tracked, msg: DecodedMessage, now: float) -> DecodedMessage:
        info, v = t.info, t.validity
        if info.checksum_signal is not None and info.pgn is not None and len(msg):
            good = batch_checksums(info.pgn, msg.raw_data) == msg.raw_data[:, CHECKSUM_BYTE]
            bad = ~good
            n_bad = int(bad.sum())
            t.checksum_bucket = leaky_bucket(t.checksum_bucket, bad, self._cap)
            if n_bad:
                v.checksum_errors += n_bad
                self._errors["checksum"] += n_bad
                msg = msg.select(good)
        if info.counter_signal is not None and len(msg):
            self._check_counters(t, msg)
        if len(msg):
            v.last_rx = now
            v.timed_out = False
            t.good_since_timeout += len(msg)
        self._refresh(t)
        return msg

    def _check_counters(self, t: _Tracked, msg: DecodedMessage) -> None:
        assert t.info.counter_signal is not None
        counters = msg.signals[t.info.counter_signal].astype(np.int64)
        sources = msg.source_address
        first = int(sources[0])
        groups = [(first, counters)] if (sources == first).all() else [
            (int(sa), counters[sources == sa]) for sa in np.unique(sources)]
        for sa, seq in groups:
            sender = t.senders.setdefault(sa, _SenderCounter())
            prev = seq[:-1] if sender.last is None else np.concatenate(([sender.last], seq[:-1]))
            cur = seq[1:] if sender.last is None else seq
            jumps = (cur - prev) % COUNTER_MODULO != 1
            n_jumps = int(jumps.sum())
            if n_jumps:
                t.validity.counter_errors += n_jumps
                self._errors["counter_jump"] += n_jumps
            sender.bucket = leaky_bucket(sender.bucket, jumps, self._cap)
            sender.last = int(seq[-1])

    def _refresh(self, t: _Tracked) -> None:
        v = t.validity
        v.counter_ok = all(s.bucket <= BUCKET_LIMIT for s in t.senders.values())
        v.checksum_ok = t.checksum_bucket <= BUCKET_LIMIT
        v.valid = (not v.timed_out and v.counter_ok and v.checksum_ok and t.good_since_timeout >= self._recover)

    def check_timeouts(self, now: float) -> None:
        """Declare messages timed out that had no good frame for their timeout."""
        for t in self._tracked.values():
            timeout = None if t.info.timeout_s is None else t.info.timeout_s * self.timeout_scale
            v = t.validity
            if timeout is None or v.timed_out or now - v.last_rx <= timeout:
                continue
            v.timed_out = True
            v.timeouts += 1
            self._errors["timeout"] += 1
            t.good_since_timeout = 0
            for sender in t.senders.values():
                sender.last = None  # the first frame after a timeout re-synchronises
            self._refresh(t)

    def states(self) -> dict[str, MessageValidity]:
        """Snapshot per tracked message name."""
        return {name: replace(t.validity) for name, t in self._tracked.items()}

    def stale_safety_relevant(self, now: float) -> frozenset[str]:
        """Safety-relevant messages that are not valid now (timeouts checked first)."""
        self.check_timeouts(now)
        return frozenset(name for name, t in self._tracked.items()
                         if t.info.safety_relevant and not t.validity.valid)
