"""Service settings: TOML file < environment < explicit overrides; python-can bus keys; clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from uniross.config import load_settings

TOML = """
control_rate_hz = 25
[bus]
interface = "socketcan"
channel = "can1"
bitrate = 500000
[serial]
url = "/dev/ttyS1"
[server]
port = 9000
[api]
read_requires_auth = true
"""


def test_toml_file_then_environment_then_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "uniross.toml"
    cfg.write_text(TOML)
    s = load_settings(cfg)
    assert (s.bus.interface, s.bus.channel, s.bus.bitrate) == ("socketcan", "can1", 500000)
    assert s.serial.url == "/dev/ttyS1" and s.server.port == 9000 and s.control_rate_hz == 25
    assert s.api.read_requires_auth
    monkeypatch.setenv("UNIROSS_BUS__CHANNEL", "vcan0")
    monkeypatch.setenv("UNIROSS_CONTROL_RATE_HZ", "50")
    s = load_settings(cfg)
    assert s.bus.channel == "vcan0" and s.bus.bitrate == 500000 and s.control_rate_hz == 50
    s = load_settings(cfg, bus={"interface": "virtual", "channel": "x"})
    assert (s.bus.interface, s.bus.channel) == ("virtual", "x")


def test_config_file_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[server]\nport = 8123\n")
    monkeypatch.setenv("UNIROSS_CONFIG", str(cfg))
    assert load_settings().server.port == 8123


def test_defaults_and_clear_errors(tmp_path: Path) -> None:
    s = load_settings()
    assert s.bus.interface is None  # python-can's own config decides (default virtual)
    assert s.control_rate_hz == 20 and s.check_timeout_scale is None
    with pytest.raises(FileNotFoundError, match="config file not found"):
        load_settings(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("control_rate_hz = -1\n")
    with pytest.raises(ValidationError, match="control_rate_hz"):
        load_settings(bad)
    with pytest.raises(ValidationError, match="check_timeout_scale"):
        load_settings(check_timeout_scale=0.5)
