"""pytest wiring of the HIL suite: the bus choice, the process fixture, and which bus a run used.

The bus is one setting: ``UNIROSS_HIL_INTERFACE`` / ``UNIROSS_HIL_CHANNEL`` (python-can interface and channel,
default ``socketcan`` / ``vcan0``). Tests take it from the ``can_bus_config`` fixture and never know how the
bus was made (vcan0 on the host, in a UML guest, or udp_multicast inside a private network namespace).
"""

from __future__ import annotations

import os
import platform
import socket
from collections.abc import Collection, Generator, Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from hil_tests.harness import ManagedProcess, SpawnFn

DEFAULT_INTERFACE = "socketcan"
DEFAULT_CHANNEL = "vcan0"


def bus_config_from_env(env: Mapping[str, str]) -> dict[str, str]:
    return {
        "interface": env.get("UNIROSS_HIL_INTERFACE") or DEFAULT_INTERFACE,
        "channel": env.get("UNIROSS_HIL_CHANNEL") or DEFAULT_CHANNEL,
    }


def network_interfaces() -> set[str]:
    """Interfaces of this process's network namespace (sysfs may show another namespace's)."""
    return {name for _, name in socket.if_nameindex()}


def bus_problem(config: Mapping[str, str], interfaces: Collection[str]) -> str | None:
    """Why the configured bus cannot carry this suite (given the namespace's interfaces), or None if it can."""
    interface, channel = config["interface"], config["channel"]
    if interface == "socketcan" and channel not in interfaces:
        return (
            f"no network interface {channel!r}: run the suite through "
            "`python hil_tests/uml/run_in_guest.py -- ...` (see docs/hil.md)"
        )
    if interface == "udp_multicast":
        others = sorted(set(interfaces) - {"lo"})
        if others:
            return (
                f"refusing udp_multicast with network interfaces {others}: its datagrams could leave the "
                "machine; run the suite through scripts/netns_run.sh (a private network namespace)"
            )
    if interface == "virtual":
        return "python-can's 'virtual' bus does not cross processes; the HIL suite needs a real bus"
    return None


def _bus_line(config: Mapping[str, str]) -> str:
    runner = os.environ.get("UNIROSS_HIL_RUNNER", "host")
    return (
        f"HIL bus: interface={config['interface']} channel={config['channel']} "
        f"(runner={runner}, kernel {platform.release()})"
    )


def pytest_report_header(config: pytest.Config) -> str:
    return _bus_line(bus_config_from_env(os.environ))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from hil_tests.scenario_support import MEASUREMENTS, RigTiming

    terminalreporter.write_line(_bus_line(bus_config_from_env(os.environ)))
    terminalreporter.write_line(RigTiming.from_env(os.environ).describe())
    for line in MEASUREMENTS:
        terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def can_bus_config() -> dict[str, str]:
    """python-can's ``interface`` and ``channel`` of the bus under test."""
    config = bus_config_from_env(os.environ)
    problem = bus_problem(config, network_interfaces())
    if problem:
        pytest.fail(problem, pytrace=False)
    return config


@pytest.fixture
def spawn(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SpawnFn]:
    """Start a ManagedProcess logging to the test's tmp dir; all are stopped when the test ends."""
    started: list[ManagedProcess] = []
    request.node.hil_processes = started

    def start(
        argv: Sequence[str],
        name: str,
        env: Mapping[str, str] | None = None,
        *,
        cwd: Path | str | None = None,
        inherit_env: bool = True,
    ) -> ManagedProcess:
        proc = ManagedProcess(
            argv, env=env, name=name, log_path=tmp_path / f"{name}.log", cwd=cwd, inherit_env=inherit_env
        )
        started.append(proc)
        return proc.start()

    yield start
    for proc in reversed(started):
        proc.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed test's report carries the log tail of each process it started."""
    report = yield
    if report.failed:
        for proc in getattr(item, "hil_processes", []):
            report.sections.append((f"log of {proc.name} ({proc.log_path})", proc.log_tail(60)))
    return report


@pytest.fixture(scope="session")
def rig(can_bus_config: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The simulated vehicle and the service as processes on the HIL bus, shared by every scenario of the session
    (``hil_tests.scenario_support.Rig``; started once: start-up costs ~14 s in the UML guest), in TRANSPORT with
    every input valid. Each scenario starts with ``rig.back_to_transport()``."""
    from hil_tests.scenario_support import started_rig

    with started_rig(can_bus_config, tmp_path_factory.mktemp("rig")) as started:
        yield started


@pytest.fixture(autouse=True)
def _rig_logs(request: pytest.FixtureRequest) -> None:
    """A failing scenario's report shows the rig's process logs too."""
    if "rig" in request.fixturenames:
        rig = request.getfixturevalue("rig")
        request.node.hil_processes = [*getattr(request.node, "hil_processes", []), *rig.processes]
