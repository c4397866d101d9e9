"""Trial report over the synthetic trial: mode times, DTC, SSC fault, clog event, statistics, files."""

from __future__ import annotations

import json
from pathlib import Path

import can
import pytest

from firmware_bridge.dbc_database import default_database
from uniross.report import write_report
from uniross.synthetic_trial import TrialPlan, trial_messages

PLAN = TrialPlan(duration=20.0, sweeper_from=4.0, sweeper_to=16.0, clog_from=8.0, clog_to=11.0, dtc_from=6.0)


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    base = tmp_path_factory.mktemp("rep")
    log = base / "trial.blf"
    with can.Logger(log) as writer:
        for msg in trial_messages(default_database(), PLAN):
            writer.on_message_received(msg)
    out = base / "report"
    return out, write_report(log, out, default_database())


def test_mode_times_follow_the_trial(report_dir: tuple[Path, object]) -> None:
    _out, report = report_dir
    ssc = report.mode_time_s["SSC_Status.SscActiveMode"]  # type: ignore[attr-defined]
    assert ssc["SWEEPER"] == pytest.approx(12.0, abs=0.15)
    assert ssc["TRANSPORT"] == pytest.approx(8.0, abs=0.25)
    assert set(report.mode_time_s["OBC_ModeCommand.RequestedMode"]) == {"SWEEPER", "TRANSPORT"}  # type: ignore[attr-defined]


def test_faults_and_clog_events(report_dir: tuple[Path, object]) -> None:
    _out, report = report_dir
    assert [(d["spn"], d["fmi"]) for d in report.dtcs] == [(PLAN.dtc_spn, PLAN.dtc_fmi)]  # type: ignore[attr-defined]
    assert report.dtcs[0]["first_s"] == pytest.approx(6.0, abs=1.01)  # type: ignore[attr-defined]
    (fault,) = report.ssc_faults  # type: ignore[attr-defined]
    assert fault.value == "7" and fault.start == pytest.approx(8.0, abs=0.11)
    (clog,) = report.clog_events  # type: ignore[attr-defined]
    assert clog.start == pytest.approx(8.0, abs=0.03) and clog.end == pytest.approx(11.0, abs=0.03)


def test_statistics_and_files(report_dir: tuple[Path, object]) -> None:
    out, report = report_dir
    fan = report.stats["SSC_Suction.SuctionFanSpeed"]  # type: ignore[attr-defined]
    assert (fan.minimum, fan.maximum, fan.unit) == (0.0, 2400.0, "rpm")
    assert report.stats["VEP1.BatteryPotential_PowerInput1"].mean == pytest.approx(27.5)  # type: ignore[attr-defined]
    for name in ("report.md", "report.html", "report.json", "signals.png"):
        assert (out / name).stat().st_size > 100
    assert (out / "signals.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((out / "report.json").read_text())
    assert data["clog_events"][0]["value"] == "clog"
    assert "| SWEEPER |" in (out / "report.md").read_text()
    assert "<table>" in (out / "report.html").read_text()
