"""The service records the raw bus while it runs, and a recording replays through the live service (paced, with
the API's view in the recording's time) with the same decoded values as the offline replay."""

from __future__ import annotations

import time
from itertools import pairwise
from pathlib import Path

import pytest

from firmware_bridge.dbc_database import default_database
from uniross.config import load_settings
from uniross.log_reader import read_frame_batch
from uniross.recording import read_sample_file
from uniross.replay import replay_pipeline
from uniross.service import Service
from uniross.service_view import ServiceView


@pytest.mark.parametrize("suffix", [".log", ".blf"])
def test_record_while_running_then_replay_through_the_live_service(tmp_path: Path, suffix: str) -> None:
    trial = tmp_path / f"trial{suffix}"
    settings = load_settings()
    settings.sim.embedded = True
    settings.record = trial
    with Service(settings) as svc:
        time.sleep(2.5)
    recorded = svc.recorder.counters() if svc.recorder else {}
    assert recorded["dropped_items"] == 0 and recorded["written_items"] > 300
    assert recorded["written_items"] == svc.pipeline.frames_in  # every frame the pipeline saw is in the file
    assert len(read_frame_batch(trial)) == recorded["written_items"]
    # the serial sample stream beside it: contiguous 1 kHz batches of the four channels
    assert svc.sample_recorder is not None
    batches = list(read_sample_file(trial.with_suffix(".usmp")))
    assert sum(b.samples.shape[1] for b in batches) == svc.sample_recorder.counters()["written_items"] // 4 > 1500
    assert all(b.first_index == a.first_index + a.samples.shape[1] for a, b in pairwise(batches)
               if not b.gap_before)

    offline = replay_pipeline(trial, default_database())

    replay = load_settings()
    replay.replay, replay.replay_speed = trial, 4.0
    with Service(replay) as live:
        view = ServiceView(live)
        deadline = time.time() + 10
        while not (live.reader.finished and live.reader.counters()["queue_depth"] == 0) and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        snap = {s.key: s for s in view.snapshot()}
        assert live.reader.error is None
        assert live.pipeline.frames_in == offline.frames == recorded["written_items"]
        for key in ("CCVS1.WheelBasedVehicleSpeed", "EEC1.EngSpeed", "SSC_Suction.SuctionPressure",
                    "SSC_HopperWater.HopperFillLevel", "SSC_Diag.FanRunHours"):
            assert snap[key].value == offline.final_signals[key], key
        # the service lives in the recording's time: ages are small, not "since the recording was made"
        assert 0 <= snap["EEC1.EngSpeed"].age_s < 3.0
        assert live.gate.counters()["sent"]["OBC_Heartbeat"] > 0  # the loop ran; its frames went nowhere
        assert live.reader.counters()["replay_discarded_tx"] > 0
