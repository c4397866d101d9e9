"""Process harness for the HIL suite: runs the service, the simulator and bus peers as real OS processes.

Owns the lifetime of every process a HIL test starts: each runs in its own session (process group), writes
stdout+stderr to a log file, can be waited on for a log line or an HTTP answer, and is stopped with SIGTERM
then SIGKILL of its whole group. Nothing is left behind when a test fails or times out: pytest fixture
finalizers stop what a test started, an ``atexit`` hook stops whatever is still registered, and on Linux each
child gets ``PR_SET_PDEATHSIG`` so that it is killed even if the test process itself dies by SIGKILL.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Container, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self, TypeVar

POLL_INTERVAL_S = 0.02
PR_SET_PDEATHSIG = 1
_T = TypeVar("_T")


class ProcessFailed(RuntimeError):
    """A managed process exited, or never became ready, while a test waited for it."""


def _die_with_parent() -> None:
    """preexec_fn: SIGKILL this child when the thread that started it dies (Linux prctl)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class ManagedProcess:
    """One OS process in its own session, logging to ``log_path``; a context manager that stops it on exit.

    ``env`` is added to this process's environment (``inherit_env=False`` gives exactly ``env``).
    """

    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        name: str | None = None,
        log_path: Path | str | None = None,
        *,
        cwd: Path | str | None = None,
        inherit_env: bool = True,
    ) -> None:
        if not argv:
            raise ValueError("empty argv")
        self.argv = [str(arg) for arg in argv]
        self.name = name or Path(self.argv[0]).name
        self.log_path = Path(log_path) if log_path else Path(f"{self.name}.log")
        self.cwd = cwd
        self.env = {**os.environ, **(env or {})} if inherit_env else dict(env or {})
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    # ------------------------------------------------------------------------------------------ lifecycle
    def start(self) -> Self:
        if self._proc is not None:
            raise RuntimeError(f"{self.name} already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        try:
            self._proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                env=self.env,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        except BaseException:
            self._log.close()
            raise
        _LIVE.add(self)
        return self

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM the process group, wait up to ``timeout``, then SIGKILL it. Returns the exit code."""
        proc = self._proc
        if proc is None:
            return None
        try:
            if proc.poll() is None:
                self._signal_group(signal.SIGTERM)
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self._signal_group(signal.SIGKILL)
                    proc.wait()
            # The leader may be gone while members of its group live on: they go too.
            self._signal_group(signal.SIGKILL)
        finally:
            _LIVE.discard(self)
            if self._log is not None:
                self._log.close()
        return proc.returncode

    def _signal_group(self, signum: int) -> None:
        assert self._proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, signum)

    def __enter__(self) -> Self:
        return self if self._proc is not None else self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------------------------------- queries
    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError(f"{self.name} not started")
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_text(self, start: int = 0) -> str:
        """The log from byte offset ``start`` (see ``log_size``)."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(start)
                return log.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_size(self) -> int:
        """Current log length: pass it as ``start`` to wait only for lines written from now on."""
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    # --------------------------------------------------------------------------------------------- waits
    def wait(self, timeout: float) -> int:
        """Wait for the process to exit by itself; ProcessFailed (with the log tail) on timeout."""
        if self._proc is None:
            raise RuntimeError(f"{self.name} not started")
        try:
            return self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ProcessFailed(self._explain(f"still running after {timeout} s")) from None

    def wait_for_log(self, pattern: str | re.Pattern[str], timeout: float, start: int = 0) -> re.Match[str]:
        """Wait until the log (from byte ``start``) matches ``pattern`` (re.MULTILINE for str patterns)."""
        regex = re.compile(pattern, re.MULTILINE) if isinstance(pattern, str) else pattern

        def probe() -> re.Match[str] | None:
            return regex.search(self.log_text(start))

        return self._until(probe, timeout, f"log line /{regex.pattern}/")

    def wait_for_http(self, url: str, timeout: float, accept: Container[int] = range(200, 400)) -> int:
        """Wait until ``url`` answers with a status in ``accept``; returns that status."""

        def probe() -> int | None:
            try:
                with urllib.request.urlopen(url, timeout=1.0) as response:
                    status = int(response.status)
            except urllib.error.HTTPError as exc:
                status = exc.code
            except (urllib.error.URLError, OSError):
                return None
            return status if status in accept else None

        return self._until(probe, timeout, f"HTTP answer from {url}")

    def _until(self, probe: Callable[[], _T | None], timeout: float, what: str) -> _T:
        deadline = time.monotonic() + timeout
        while True:
            found = probe()
            if found is not None:
                return found
            if not self.running:
                found = probe()  # the last words before exit may be the ones awaited
                if found is not None:
                    return found
                raise ProcessFailed(self._explain(f"exited with {self.returncode} before {what}"))
            if time.monotonic() >= deadline:
                raise ProcessFailed(self._explain(f"no {what} within {timeout} s"))
            time.sleep(POLL_INTERVAL_S)

    def _explain(self, problem: str) -> str:
        return f"{self.name} (pid {self._proc.pid if self._proc else '-'}) {problem}; log tail:\n{self.log_tail()}"

    def __repr__(self) -> str:
        return f"ManagedProcess({self.name!r}, pid={self._proc.pid if self._proc else None})"


_LIVE: set[ManagedProcess] = set()


SpawnFn = Callable[..., ManagedProcess]
"""Type of the ``spawn`` fixture: ``spawn(argv, name, env=None, *, cwd=None, inherit_env=True)``."""


@atexit.register
def stop_all() -> None:
    """Stop every process still registered (atexit, and fixture finalizers)."""
    for proc in list(_LIVE):
        proc.stop(timeout=2.0)


def need_can_utils(bus: Mapping[str, str], tools: Sequence[str] = ("candump", "cansend")) -> None:
    """Skip unless the run's bus is SocketCAN (can-utils speak nothing else); fail if a needed tool is missing."""
    import shutil

    import pytest

    if bus["interface"] != "socketcan":
        pytest.skip(f"can-utils speak SocketCAN only; this run's bus is {bus['interface']}")
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} not found: apt-get install can-utils", pytrace=False)
