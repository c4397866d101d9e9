"""Shared rig of the HIL scenarios: the simulated vehicle (``uniross sim``) and the service (``uniross run``) as
separate OS processes on the HIL bus, talking over the real serial link (TCP), driven through their HTTP APIs.

`Rig` owns the two processes, an engineer token, an ``httpx`` client and the waits the scenarios need. It is
built once per test session (process start-up is the expensive part in the UML guest) by ``started_rig``; each
scenario brings the service back to TRANSPORT with ``Rig.back_to_transport`` before it starts.

`RigTiming` holds the service's supervision timeouts for the runner: the UML guest shares ONE slow CPU between the
simulator, the service and pytest, and its scheduling jitter makes 20 ms messages miss their 70 ms DBC reception
timeout, which (correctly) drives SAFE. There the rig scales every DBC reception timeout by
``check_timeout_scale`` and gives the serial link ``link_timeout_s``; the fault scenarios assert against the
scaled values.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import can
import httpx

from hil_tests.harness import ManagedProcess

_T = TypeVar("_T")
REPO = Path(__file__).resolve().parent.parent
UNIROSS = [sys.executable, "-m", "uniross.cli"]
#: cyclic messages the simulated vehicle sends (event messages TP_CM_BAM / TP_DT_BAM only with several DTCs)
EVENT_MESSAGES = frozenset({"TP_CM_BAM", "TP_DT_BAM"})
#: start-up of a Python process importing the whole stack: seconds on the host, tens of seconds in the UML guest
START_TIMEOUT_S = 120.0
OBC_SOURCE = 0x27
#: python-can's udp_multicast loops a process's own frames back to it: the service's reader counts its own frames
OWN_FRAMES_LOOP_BACK = frozenset({"udp_multicast"})
#: the service's reader counts a frame when it flushes its batch: at the latest when ``recv`` times out (CanReader's
#: ``recv_timeout``, 20 ms) after the last frame of a burst; a count read this long after a burst includes it
READER_FLUSH_S = 0.03
#: simulator counters of frames it received and rejected that are not frames (a failed ``recv``)
_NOT_FRAMES = frozenset({"bus_error"})


#: runner (``UNIROSS_HIL_RUNNER``) -> (check_timeout_scale, serial link_timeout_s); others get the service defaults
RUNNER_TIMING = {"uml-guest": (4.0, 1.0)}
DEFAULT_TIMING = (1.0, 0.25)


@dataclass(frozen=True)
class RigTiming:
    """Supervision timeouts the rig gives the service (``UNIROSS_CHECK_TIMEOUT_SCALE``,
    ``UNIROSS_SERIAL__LINK_TIMEOUT_S``); overridable with ``UNIROSS_HIL_CHECK_TIMEOUT_SCALE`` and
    ``UNIROSS_HIL_LINK_TIMEOUT_S``."""

    runner: str
    check_timeout_scale: float
    link_timeout_s: float

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RigTiming:
        runner = env.get("UNIROSS_HIL_RUNNER", "host")
        scale, link = RUNNER_TIMING.get(runner, DEFAULT_TIMING)
        scale = float(env.get("UNIROSS_HIL_CHECK_TIMEOUT_SCALE") or scale)
        link = float(env.get("UNIROSS_HIL_LINK_TIMEOUT_S") or link)
        if scale < 1.0 or link <= 0:
            raise ValueError(f"check_timeout_scale must be >= 1 and link_timeout_s > 0 (got {scale}, {link})")
        return cls(runner, scale, link)

    def reception_timeout(self, message: str) -> float:
        """The service's reception timeout of ``message``: its DBC timeout times the scale."""
        from firmware_bridge.dbc_database import default_database, timeout_s

        base = timeout_s(default_database().get_message_by_name(message))
        if base is None:
            raise ValueError(f"{message} has no reception timeout in the DBC")
        return base * self.check_timeout_scale

    def service_env(self) -> dict[str, str]:
        return {"UNIROSS_CHECK_TIMEOUT_SCALE": str(self.check_timeout_scale),
                "UNIROSS_SERIAL__LINK_TIMEOUT_S": str(self.link_timeout_s)}

    def describe(self) -> str:
        return (f"HIL timing: check_timeout_scale={self.check_timeout_scale:g} "
                f"serial link_timeout_s={self.link_timeout_s:g} (runner={self.runner})")


#: measured numbers the scenarios report; printed in the suite summary (conftest.pytest_terminal_summary)
MEASUREMENTS: list[str] = []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(probe: Callable[[], _T | None], timeout: float, what: str, interval: float = 0.2) -> _T:
    """Poll ``probe`` until it returns something other than None/False; AssertionError naming ``what``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        with contextlib.suppress(httpx.TransportError):
            last = probe()
            if last is not None and last is not False:
                return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")
        time.sleep(interval)


class BusTotals(NamedTuple):
    """Counters of one instant (`Rig.quiet_totals`)."""

    sim_sent: int  # frames the simulated vehicle sent
    counted: int  # frames the service's reader counted (``frames_total``)
    own: int  # frames of the service the simulator received (the service counts them too where they loop back)


@dataclass
class Rig:
    """The simulated vehicle and the service on one bus; see the module docstring."""

    bus: dict[str, str]
    workdir: Path
    timing: RigTiming = field(default_factory=lambda: RigTiming.from_env(os.environ))
    sim_port: int = field(default_factory=free_port)
    serial_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    sim: ManagedProcess | None = None
    service: ManagedProcess | None = None
    processes: list[ManagedProcess] = field(default_factory=list)
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10.0))
    _service_runs: int = 0
    boot_events: list[dict[str, Any]] = field(default_factory=list)

    # ---- processes -------------------------------------------------------------------------------------------
    def _spawn(self, argv: list[str], name: str, env: dict[str, str] | None = None) -> ManagedProcess:
        proc = ManagedProcess(argv, env=env, name=name, log_path=self.workdir / f"{name}.log", cwd=REPO)
        self.processes.append(proc)
        return proc.start()

    def start_sim(self, scenario: str = "remote") -> ManagedProcess:
        self.sim = self._spawn(
            [*UNIROSS, "sim", "--interface", self.bus["interface"], "--channel", self.bus["channel"],
             "--control-port", str(self.sim_port), "--serial", f"tcp://127.0.0.1:{self.serial_port}",
             "--scenario", scenario],
            name="sim",
        )
        self.sim.wait_for_log(r"^serial: ", timeout=START_TIMEOUT_S)
        return self.sim

    def start_service(self) -> ManagedProcess:
        self._service_runs += 1
        env = {"UNIROSS_API__ENGINEER_TOKEN_HASHES": json.dumps([hashlib.sha256(self.token.encode()).hexdigest()]),
               **self.timing.service_env()}
        self.service = self._spawn(
            [*UNIROSS, "run", "-i", self.bus["interface"], "-c", self.bus["channel"],
             "--serial", f"socket://127.0.0.1:{self.serial_port}", "--port", str(self.api_port)],
            name=f"service{self._service_runs}", env=env,
        )
        self.service.wait_for_http(self.api("/healthz"), timeout=START_TIMEOUT_S)
        return self.service

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()
        self.http.close()

    # ---- the service's API -----------------------------------------------------------------------------------
    def api(self, path: str) -> str:
        return f"http://127.0.0.1:{self.api_port}{path}"

    def get(self, path: str) -> Any:
        response = self.http.get(self.api(path))
        response.raise_for_status()
        return response.json()

    def request_mode(self, target: str, acknowledge: bool = False) -> httpx.Response:
        return self.http.post(self.api("/api/v1/mode"), json={"target": target, "acknowledge": acknowledge},
                              headers={"Authorization": f"Bearer {self.token}"})

    def health(self) -> dict[str, Any]:
        return dict(self.get("/api/v1/health"))

    def messages(self) -> dict[str, dict[str, Any]]:
        return {m["name"]: m for m in self.health()["bus"]["messages"]}

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {s["key"]: s for s in self.get("/api/v1/snapshot")["signals"]}

    def values(self) -> dict[str, Any]:
        return {k: s["value"] for k, s in self.snapshot().items()}

    def state(self) -> str:
        return str(self.get("/api/v1/mode")["state"])

    def events(self, limit: int = 100) -> list[dict[str, Any]]:
        return list(self.get(f"/api/v1/mode/events?limit={limit}")["events"])

    def wait_state(self, state: str, timeout: float = 30.0) -> float:
        """Wait until the service's mode is ``state``; returns the seconds it took."""
        start = time.monotonic()
        mode: dict[str, Any] = {}

        def reached() -> bool:
            mode.update(self.get("/api/v1/mode"))
            return mode["state"] == state

        try:
            wait_until(reached, timeout, f"mode {state}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; mode status: {mode}") from None
        return time.monotonic() - start

    def wait_inputs_valid(self, timeout: float = 30.0) -> None:
        """Every cyclic message valid (event messages excepted)."""
        wait_until(lambda: not self.invalid_messages() or None, timeout, "every cyclic message valid")

    def invalid_messages(self) -> set[str]:
        return {name for name, m in self.messages().items() if not m["valid"]} - EVENT_MESSAGES

    def back_to_transport(self, timeout: float = 40.0) -> None:
        """From wherever the service is (after a scenario): inputs valid, TRANSPORT (acknowledging SAFE)."""
        self.wait_inputs_valid(timeout)
        if self.state() == "TRANSPORT":
            return
        wait_until(lambda: self.request_mode("TRANSPORT", acknowledge=True).status_code == 200, timeout,
                   "TRANSPORT accepted")
        self.wait_state("TRANSPORT", timeout)

    # ---- the simulated vehicle's control server --------------------------------------------------------------
    def sim_url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.sim_port}{path}"

    def sim_set(self, **settings: Any) -> None:
        self.http.post(self.sim_url("/set"), json=settings).raise_for_status()

    def sim_fault(self, kind: str, **spec: Any) -> None:
        self.http.post(self.sim_url("/fault"), json={"kind": kind, **spec}).raise_for_status()

    def sim_stall_serial(self, seconds: float) -> None:
        """The serial firmware simulator sends and reads nothing for ``seconds`` (a hung firmware)."""
        self.http.post(self.sim_url("/serial/stall"), json={"seconds": seconds}).raise_for_status()

    def sim_serial(self) -> dict[str, Any]:
        return dict(self.http.get(self.sim_url("/serial")).json())

    def sim_counters(self) -> dict[str, Any]:
        return dict(self.http.get(self.sim_url("/counters")).json())

    def sim_state(self) -> dict[str, Any]:
        return dict(self.http.get(self.sim_url("/state")).json())

    def sim_own_received(self) -> int:
        """Frames of the service (the OBC's messages) the simulated vehicle received, accepted or rejected."""
        counters = self.sim_counters()
        rejects = {k: v for k, v in counters["rx_rejects"].items() if k not in _NOT_FRAMES}
        return sum(counters["rx"].values()) + sum(rejects.values())

    def quiet_totals(self, quiet_s: float = 0.6, hold_s: float = 0.6) -> BusTotals:
        """Silence the simulated vehicle for a moment and read the `BusTotals` of one instant while none of its
        frames is in flight. The silence lasts at least ``hold_s`` after the reads.

        The service keeps sending its three frames every control cycle. Where they loop back to its own reader
        (`OWN_FRAMES_LOOP_BACK`) its count includes them, so ``own`` must be read at the same instant: between
        two of its bursts, `READER_FLUSH_S` after one (so the reader has counted it), with no frame of the
        service arriving at the simulator while the count is read; otherwise tried again at the next burst."""
        self.sim_fault("silent", duration=quiet_s + hold_s)
        time.sleep(quiet_s)  # frames in flight when the silence began are received and counted by now
        sent = sum(self.sim_counters()["sent"].values())
        if self.bus["interface"] not in OWN_FRAMES_LOOP_BACK:
            return BusTotals(sent, int(self.health()["bus"]["frames_total"]), self.sim_own_received())
        deadline = time.monotonic() + hold_s / 2
        while time.monotonic() < deadline:
            last = self.sim_own_received()
            while self.sim_own_received() == last and time.monotonic() < deadline:
                time.sleep(0.002)  # until a burst of the service arrives
            time.sleep(READER_FLUSH_S)
            own = self.sim_own_received()
            received = int(self.health()["bus"]["frames_total"])
            if self.sim_own_received() == own:
                return BusTotals(sent, received, own)
        raise AssertionError(f"no gap between the service's bursts in {hold_s / 2} s to read its count in")


@contextlib.contextmanager
def started_rig(bus: dict[str, str], workdir: Path, *, service: bool = True) -> Iterator[Rig]:
    rig = Rig(bus=dict(bus), workdir=workdir)
    try:
        rig.start_sim()
        if service:
            service_proc = rig.start_service()
            rig.wait_inputs_valid(START_TIMEOUT_S)
            # on the UML guest's one slow CPU the service may enter SAFE once while everything starts (see
            # boot_events); the scenarios begin from an acknowledged TRANSPORT
            rig.boot_events = rig.events(50)
            rig.back_to_transport(60.0)
            service_proc.wait_for_http(rig.api("/readyz"), timeout=START_TIMEOUT_S, accept=(200,))
    except BaseException as exc:
        tails = "\n".join(f"--- log of {p.name}:\n{p.log_tail(40)}" for p in rig.processes)
        rig.stop()
        raise AssertionError(f"the rig did not start: {exc}\n{tails}") from exc
    try:
        yield rig
    finally:
        rig.stop()


class BusTap:
    """An independent listener on the HIL bus (a thread in the test process) counting frames by source address:
    ``own`` = the service's (source address 0x27), ``others`` = everyone else's."""

    def __init__(self, bus: dict[str, str], own_source: int = OBC_SOURCE) -> None:
        self._bus = can.Bus(interface=bus["interface"], channel=bus["channel"])
        self.own_source = own_source
        self.own = 0
        self.others = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bus-tap", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            msg = self._bus.recv(0.05)
            if msg is None or msg.is_error_frame:
                continue
            if msg.is_extended_id and msg.arbitration_id & 0xFF == self.own_source:
                self.own += 1
            else:
                self.others += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        self._bus.shutdown()

    def __enter__(self) -> BusTap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
