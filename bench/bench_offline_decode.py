"""Offline decode of a 1,000,000-frame candump recording: our path vs cantools per frame, same log, same run.

Ours: read log -> FrameBatch (vectorised candump parser) -> BatchDecoder. Baseline: python-can's reader ->
``db.decode_message`` per frame. The recording (realistic mix: every DBC message at its cycle time) is generated
with python-can's writer into a temp dir (one 60 s synthetic trial repeated with shifted timestamps). cantools can
be timed on a subset (``--baseline-frames``, default all) to bound the run; the count is printed. The read vs decode
split is printed for both paths.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

import can

from firmware_bridge.batch_decoder import BatchDecoder
from firmware_bridge.dbc_database import default_database
from uniross.log_reader import iter_frame_batches, iter_messages
from uniross.synthetic_trial import TrialPlan, trial_messages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=1_000_000)
    parser.add_argument("--baseline-frames", type=int, default=1_000_000)
    args = parser.parse_args()
    db = default_database()
    plan = TrialPlan()
    base = list(trial_messages(db, plan))  # one synthetic trial, repeated with shifted timestamps
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "trial.log"
        t = time.perf_counter()
        with can.Logger(log) as writer:
            for i in range(args.frames):
                msg = base[i % len(base)]
                msg.timestamp = plan.t0 + (i // len(base)) * plan.duration + (msg.timestamp - plan.t0) % plan.duration
                writer.on_message_received(msg)
        print(f"generated {args.frames:,} frames ({log.stat().st_size / 1e6:.0f} MB candump) "
              f"in {time.perf_counter() - t:.1f} s")

        decoder = BatchDecoder(db)
        t_read = t_decode = 0.0
        frames = decoded = 0
        t = time.perf_counter()
        for batch in iter_frame_batches(log):
            t1 = time.perf_counter()
            t_read += t1 - t
            result = decoder.decode(batch)
            t = time.perf_counter()
            t_decode += t - t1
            frames += len(batch)
            decoded += result.n_decoded
        ours = frames / (t_read + t_decode)
        print(f"ours:     {frames:,} frames in {t_read + t_decode:.2f} s = {ours:,.0f} frames/s "
              f"(read {t_read:.2f} s = {frames / t_read:,.0f}/s, decode {t_decode:.2f} s = {frames / t_decode:,.0f}/s;"
              f" {decoded:,} decoded)")

        n = min(args.baseline_frames, frames)
        t_read_b = t_decode_b = 0.0
        t = time.perf_counter()
        messages = list(itertools.islice(iter_messages(log), n))
        t_read_b = time.perf_counter() - t
        t = time.perf_counter()
        ok = 0
        for msg in messages:
            try:
                db.decode_message(msg.arbitration_id, bytes(msg.data), decode_choices=False)
                ok += 1
            except KeyError:
                pass
        t_decode_b = time.perf_counter() - t
        baseline = n / (t_read_b + t_decode_b)
        subset = " (subset)" if n < frames else ""
        print(f"cantools: {n:,} frames{subset} in {t_read_b + t_decode_b:.2f} s = {baseline:,.0f} frames/s "
              f"(read {n / t_read_b:,.0f}/s, decode {n / t_decode_b:,.0f}/s; {ok:,} decoded)")
        decode_ratio = (frames / t_decode) / (n / t_decode_b)
        print(f"ratio ours / cantools: {ours / baseline:.1f}x end to end, {decode_ratio:.1f}x decode only")


if __name__ == "__main__":
    main()
