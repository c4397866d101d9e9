"""Offline decode/export: CSV, Parquet and MF4 tables per message, equal to cantools' per-frame decode."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import can
import numpy as np
import pytest

from firmware_bridge.dbc_database import default_database
from uniross.export import collect_columns, export_log
from uniross.synthetic_trial import TrialPlan, trial_messages


@pytest.fixture(scope="module")
def trial_log(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[can.Message]]:
    msgs = list(trial_messages(default_database(), TrialPlan(duration=2.0)))
    path = tmp_path_factory.mktemp("exp") / "trial.blf"
    with can.Logger(path) as writer:
        for msg in msgs:
            writer.on_message_received(msg)
    return path, msgs


def _cantools_rows(msgs: list[can.Message], name: str) -> list[dict[str, float]]:
    db = default_database()
    message = db.get_message_by_name(name)
    return [dict(db.decode_message(m.arbitration_id, m.data, decode_choices=False))  # type: ignore[arg-type]
            for m in msgs if message.frame_id & 0x3FFFF00 == m.arbitration_id & 0x3FFFF00]


def test_csv_one_file_per_message_matches_cantools(trial_log: tuple[Path, list[can.Message]], tmp_path: Path) -> None:
    path, msgs = trial_log
    seen: list[int] = []
    result = export_log(path, tmp_path, default_database(), "csv", chunk=100, progress=seen.append)
    assert sum(seen) == len(msgs) == result.stats.frames
    assert result.stats.decoded == len(msgs)
    names = {p.stem for p in result.files}
    assert {"SSC_Suction", "CCVS1", "SSC_Status", "OBC_ModeCommand"} <= names
    with (tmp_path / "SSC_Suction.csv").open() as f:
        rows = list(csv.DictReader(f))
    expected = _cantools_rows(msgs, "SSC_Suction")
    assert len(rows) == len(expected) == result.stats.per_message["SSC_Suction"]
    for row, want in zip(rows, expected, strict=True):
        assert int(row["source_address"]) == 0x80
        for key, value in want.items():
            assert float(row[key]) == pytest.approx(float(value)), key


def test_parquet_matches_cantools(trial_log: tuple[Path, list[can.Message]], tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    path, msgs = trial_log
    result = export_log(path, tmp_path, default_database(), "parquet", chunk=64)
    table = pq.read_table(tmp_path / "CCVS1.parquet").to_pydict()
    expected = _cantools_rows(msgs, "CCVS1")
    assert [r["WheelBasedVehicleSpeed"] for r in expected] == pytest.approx(table["WheelBasedVehicleSpeed"])
    assert table["timestamp"][0] == pytest.approx(msgs[0].timestamp)
    assert len(result.files) == len(result.stats.per_message)


def test_mf4_has_one_group_per_message(trial_log: tuple[Path, list[can.Message]], tmp_path: Path) -> None:
    asammdf = pytest.importorskip("asammdf")
    path, msgs = trial_log
    result = export_log(path, tmp_path, default_database(), "mf4")
    assert result.files == [tmp_path / "trial.mf4"]
    with asammdf.MDF(result.files[0]) as mdf:
        sig = mdf.get("SSC_Suction.SuctionPressure")
        want = [r["SuctionPressure"] for r in _cantools_rows(msgs, "SSC_Suction")]
        np.testing.assert_allclose(sig.samples, want)
        assert sig.unit == "Pa"


def test_na_values_are_nan_and_unknown_format_refused(tmp_path: Path) -> None:
    log = tmp_path / "na.log"
    log.write_text("(1.0) can0 18FEEE00#FFFFFFFFFFFFFFFF\n(2.0) can0 18FEEE00#78FFFFFFFFFFFFFF\n")
    cols = collect_columns(log, default_database())["ET1"]
    assert math.isnan(cols["EngCoolantTemp"][0]) and cols["EngCoolantTemp"][1] == 80.0
    with pytest.raises(ValueError, match="unknown export format"):
        export_log(log, tmp_path, default_database(), "xlsx")
