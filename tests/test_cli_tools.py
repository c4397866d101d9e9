"""The field-engineer commands through their entry points (typer CliRunner and the installed console script)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import can
import pytest
import typer
from can.interfaces.virtual import channels as virtual_channels
from typer.testing import CliRunner

from firmware_bridge.dbc_database import default_database
from uniross import cli_tools
from uniross.log_reader import read_frame_batch
from uniross.synthetic_trial import TrialPlan, trial_messages

REPO = Path(__file__).resolve().parent.parent
UNIROSS = REPO / ".venv" / "bin" / "uniross"
PLAN = TrialPlan(duration=6.0, sweeper_from=1.0, sweeper_to=5.0, clog_from=2.0, clog_to=4.5, dtc_from=1.5)

app = typer.Typer()
cli_tools.register(app)
runner = CliRunner()


@pytest.fixture(scope="module")
def trial_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "trial.log"
    with can.Logger(path) as writer:
        for msg in trial_messages(default_database(), PLAN):
            writer.on_message_received(msg)
    return path


def test_every_command_has_help() -> None:
    for name in ("monitor", "mode", "record", "replay", "decode", "report"):
        result = runner.invoke(app, [name, "--help"])
        assert result.exit_code == 0, result.output
        assert "--help" in result.output


def test_decode_csv(trial_log: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["decode", str(trial_log), "-o", str(tmp_path), "--format", "csv", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "SSC_Suction.csv").read_text().splitlines()[0].startswith("timestamp,source_address,")
    assert "rejects none" in result.output


def test_report_command(trial_log: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", str(trial_log), "-o", str(tmp_path), "--no-plots"])
    assert result.exit_code == 0, result.output
    assert "clog events 1" in result.output
    assert json.loads((tmp_path / "report.json").read_text())["dtcs"][0]["spn"] == PLAN.dtc_spn


def test_bad_log_exits_2_with_located_message_through_console_script(tmp_path: Path) -> None:
    bad = tmp_path / "bad.log"
    bad.write_text("(1.0) can0 18FEF100#0000\n(2.0) can0 nonsense\n")
    proc = subprocess.run([str(UNIROSS), "decode", str(bad), "-o", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "line 2" in proc.stderr and "Traceback" not in proc.stderr


def test_record_from_virtual_bus_then_replay_to_bus(tmp_path: Path) -> None:
    channel = "clirec7"
    msgs = list(trial_messages(default_database(), TrialPlan(duration=0.5)))
    out = tmp_path / "rec.blf"
    with can.Bus(interface="virtual", channel=channel) as tx:
        def send_later() -> None:
            for _ in range(1000):  # until the recorder's bus has joined the virtual channel
                if len(virtual_channels.get(channel, ())) >= 2:
                    break
                threading.Event().wait(0.01)
            for msg in msgs:
                tx.send(msg)

        sender = threading.Thread(target=send_later)
        sender.start()
        result = runner.invoke(app, ["record", "-o", str(out), "-i", "virtual", "-c", channel, "--duration", "1.5"])
        sender.join()
    assert result.exit_code == 0, result.output
    assert f"recorded {len(msgs)} frames" in result.output
    assert len(read_frame_batch(out)) == len(msgs)

    with can.Bus(interface="virtual", channel="clirep7") as rx:
        result = runner.invoke(app, ["replay", str(out), "--to-bus", "-i", "virtual", "-c", "clirep7", "--speed", "0"])
        assert result.exit_code == 0, result.output
        got = [rx.recv(0.5) for _ in msgs]
    assert [m.arbitration_id for m in got if m] == [m.arbitration_id for m in msgs]


def test_monitor_once_shows_valid_messages() -> None:
    channel = "climon7"
    msgs = list(trial_messages(default_database(), TrialPlan(duration=1.0)))
    stop = threading.Event()
    with can.Bus(interface="virtual", channel=channel) as tx:
        def pump() -> None:
            while not stop.is_set():
                for msg in msgs[:40]:
                    tx.send(msg)
                stop.wait(0.01)

        sender = threading.Thread(target=pump)
        sender.start()
        try:
            result = runner.invoke(app, ["monitor", "-i", "virtual", "-c", channel, "--once", "--duration", "0.5"])
        finally:
            stop.set()
            sender.join()
    assert result.exit_code == 0, result.output
    assert "SSC_Suction" in result.output and "valid" in result.output


class _ModeApi(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.headers.get("Authorization") != "Bearer sesame":
            answer: dict[str, object] = {"detail": "bad token"}
            code = 401
        elif body["target"] == "SWEEPER" and body["acknowledge"] is False:
            code, answer = 409, {"detail": {"reasons": ["speed above 5 km/h", "hopper raised"]}}
        else:
            code, answer = 200, {"accepted": True, "target": body["target"]}
        data = json.dumps(answer).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def test_mode_accepted_refused_and_unauthorised() -> None:
    server = HTTPServer(("127.0.0.1", 0), _ModeApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        refused = runner.invoke(app, ["mode", "sweeper", "--url", url, "--token", "sesame"])
        accepted = runner.invoke(app, ["mode", "TRANSPORT", "--url", url, "--token", "sesame", "--ack"])
        denied = runner.invoke(app, ["mode", "SNOW", "--url", url, "--token", "wrong"])
    finally:
        server.shutdown()
    assert refused.exit_code == 1 and "hopper raised" in refused.output and "refused" in refused.output
    assert accepted.exit_code == 0 and "accepted" in accepted.output
    assert denied.exit_code == 2


def test_console_script_lists_the_tools() -> None:
    proc = subprocess.run([str(UNIROSS), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    for name in ("monitor", "record", "replay", "decode", "report", "mode"):
        assert name in proc.stdout
    assert sys.executable
