"""Service configuration: one pydantic-settings model read from a TOML file, the environment (``UNIROSS_*``,
nested with ``__``) and CLI overrides, in that order of increasing precedence.

The CAN bus keys are python-can's own (interface, channel, bitrate, fd, data_bitrate); when none is given, python-can's
config file and ``CAN_*`` environment are honoured (see ``firmware_bridge.can_bus.BusConfig``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from firmware_bridge.dbc_database import DEFAULT_DBC
from telemetry.api.settings import ApiSettings

CONFIG_ENV = "UNIROSS_CONFIG"


class BusSettings(BaseModel):
    interface: str | None = None
    channel: str | None = None
    bitrate: int | None = None
    fd: bool = False
    data_bitrate: int | None = None


class SerialSettings(BaseModel):
    url: str | None = Field(default=None, description="pyserial URL or device of the SSC firmware link; None = no link")
    baudrate: int = 921600
    link_timeout_s: float = 0.25
    required: bool = Field(default=True, description="a lost link is a stale safety-relevant input (-> SAFE)")


class ServerSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8000


class SimSettings(BaseModel):
    embedded: bool = Field(default=False, description="run the simulated vehicle inside the service (demo)")
    scenario: str = "remote"
    control_port: int | None = None


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="UNIROSS_", env_nested_delimiter="__", extra="ignore")

    dbc: Path = DEFAULT_DBC
    source_address: int = 0x27
    control_rate_hz: float = Field(20.0, gt=0, le=200)
    history_depth: int = Field(6000, ge=10, description="ring-buffer samples kept per signal")
    bus: BusSettings = Field(default_factory=BusSettings)
    serial: SerialSettings = Field(default_factory=SerialSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    sim: SimSettings = Field(default_factory=SimSettings)
    check_timeout_scale: float | None = Field(
        default=None, ge=1.0,
        description="multiplies the DBC reception timeouts; None: 1.0, or 3.0 with the embedded simulator, whose "
                    "Python sender shares the CPU (and the GIL) with the service and jitters far more than an ECU")
    dbc_filters: bool = Field(default=True, description="kernel-side CAN id filters from the DBC")
    record: Path | None = Field(default=None, description="record the raw bus here (.blf .asc .log .csv .db .mf4)")
    record_max_bytes: int = 0
    record_max_seconds: float = 0.0
    replay: Path | None = Field(default=None, description="feed this recording instead of a bus (paced)")
    replay_speed: float = Field(default=1.0, gt=0)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # precedence: explicit values (CLI) > environment > TOML file (model_config["toml_file"], if any)
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls)


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> ServiceSettings:
    """Settings from ``config_file`` (TOML) or ``$UNIROSS_CONFIG``, the environment, then ``overrides``."""
    path = config_file if config_file is not None else os.environ.get(CONFIG_ENV)
    if path is None:
        return ServiceSettings(**overrides)
    toml_file = Path(path)
    if not toml_file.is_file():
        raise FileNotFoundError(f"config file not found: {toml_file}")

    class FileSettings(ServiceSettings):
        model_config = SettingsConfigDict(**{**ServiceSettings.model_config, "toml_file": toml_file})

    return FileSettings(**overrides)
