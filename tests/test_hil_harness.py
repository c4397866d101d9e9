"""hil_tests/harness.py on the host: readiness waits, and that no process outlives a test or the test process."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import ModuleType

import pytest

HARNESS_PATH = Path(__file__).resolve().parents[1] / "hil_tests" / "harness.py"


def _load_harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hil_harness", HARNESS_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


harness = _load_harness()


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie is dead, it only waits to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _wait_dead(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def test_wait_for_log_sees_a_line_written_later(tmp_path: Path) -> None:
    code = """
        import time
        print("booting", flush=True)
        time.sleep(0.3)
        print("listening on 4242", flush=True)
        time.sleep(60)
    """
    with harness.ManagedProcess(_python(code), name="svc", log_path=tmp_path / "svc.log") as proc:
        match = proc.wait_for_log(r"^listening on (\d+)$", timeout=10)
        assert match.group(1) == "4242"
        offset = proc.log_size()
        with pytest.raises(harness.ProcessFailed, match="no log line"):
            proc.wait_for_log(r"listening", timeout=0.3, start=offset)
    assert proc.returncode == -signal.SIGTERM


def test_wait_for_log_fails_fast_when_the_process_dies(tmp_path: Path) -> None:
    code = "import sys; print('config error: no bus', flush=True); sys.exit(3)"
    with harness.ManagedProcess(_python(code), name="svc", log_path=tmp_path / "svc.log") as proc:
        started = time.monotonic()
        with pytest.raises(harness.ProcessFailed, match="exited with 3") as failure:
            proc.wait_for_log("ready", timeout=30)
        assert time.monotonic() - started < 10
        assert "config error: no bus" in str(failure.value)


def test_wait_for_http(tmp_path: Path) -> None:
    code = """
        import http.server, socketserver
        server = socketserver.TCPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
        print("PORT", server.server_address[1], flush=True)
        server.serve_forever()
    """
    with harness.ManagedProcess(_python(code), name="http", log_path=tmp_path / "http.log", cwd=tmp_path) as proc:
        port = proc.wait_for_log(r"^PORT (\d+)$", timeout=10).group(1)
        assert proc.wait_for_http(f"http://127.0.0.1:{port}/", timeout=10) == 200
        with pytest.raises(harness.ProcessFailed, match="no HTTP answer"):
            proc.wait_for_http(f"http://127.0.0.1:{port}/absent", timeout=0.5)  # 404 is not in `accept`


def test_stop_kills_a_group_that_ignores_sigterm(tmp_path: Path) -> None:
    code = """
        import signal, subprocess, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        child = subprocess.Popen(["sleep", "300"])
        print("CHILD", child.pid, flush=True)
        time.sleep(300)
    """
    proc = harness.ManagedProcess(_python(code), name="stubborn", log_path=tmp_path / "s.log").start()
    child = int(proc.wait_for_log(r"^CHILD (\d+)$", timeout=10).group(1))
    started = time.monotonic()
    assert proc.stop(timeout=0.5) == -signal.SIGKILL
    assert time.monotonic() - started < 5
    assert _wait_dead(child)
    assert not proc.running


def test_stop_reaches_the_group_after_its_leader_exited(tmp_path: Path) -> None:
    code = """
        import subprocess
        child = subprocess.Popen(["sleep", "300"])
        print("CHILD", child.pid, flush=True)
    """
    proc = harness.ManagedProcess(_python(code), name="leader", log_path=tmp_path / "l.log").start()
    child = int(proc.wait_for_log(r"^CHILD (\d+)$", timeout=10).group(1))
    assert proc.wait(timeout=10) == 0
    assert _alive(child)
    proc.stop()
    assert _wait_dead(child)


SCRIPT_THAT_LEAVES = """
    import importlib.util, os, signal, sys, time
    spec = importlib.util.spec_from_file_location("h", {harness!r})
    h = importlib.util.module_from_spec(spec); spec.loader.exec_module(h)
    proc = h.ManagedProcess(["sleep", "300"], name="sleeper", log_path={log!r}).start()
    print(proc.pid, flush=True)
    {ending}
"""


@pytest.mark.parametrize(
    "ending",
    [
        "sys.exit(1)",  # the atexit hook stops it
        "os.kill(os.getpid(), signal.SIGKILL)",  # no atexit: PR_SET_PDEATHSIG does it
    ],
)
def test_no_process_outlives_the_test_process(tmp_path: Path, ending: str) -> None:
    script = SCRIPT_THAT_LEAVES.format(harness=str(HARNESS_PATH), log=str(tmp_path / "x.log"), ending=ending)
    done = subprocess.run(_python(script), capture_output=True, text=True, timeout=30, check=False)
    sleeper = int(done.stdout.split()[0])
    assert _wait_dead(sleeper), f"pid {sleeper} survived: {ending}"


def test_argv_must_not_be_empty() -> None:
    with pytest.raises(ValueError):
        harness.ManagedProcess([], name="nothing")


def test_env_is_added_or_exact(tmp_path: Path) -> None:
    code = "import os; print('V=' + os.environ.get('UNIROSS_T', '-') + ' P=' + str('PATH' in os.environ), flush=True)"
    added = harness.ManagedProcess(_python(code), env={"UNIROSS_T": "1"}, name="a", log_path=tmp_path / "a.log")
    exact = harness.ManagedProcess(
        _python(code), env={"UNIROSS_T": "2"}, name="b", log_path=tmp_path / "b.log", inherit_env=False
    )
    for proc, expected in ((added, "V=1 P=True"), (exact, "V=2 P=False")):
        with proc:
            assert proc.wait(timeout=10) == 0
            assert proc.log_text().strip() == expected
    assert os.environ.get("UNIROSS_T") is None
