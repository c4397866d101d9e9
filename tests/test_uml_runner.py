"""Host-side pieces of hil_tests/uml/run_in_guest.py that need no guest: the command file, the exit status,
the kernel command line, the guest environment, process-tree killing, and the whole host flow driven by a
stand-in kernel (a script that plays the guest's part: reads the command file, runs it, writes the status)."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]


def _load_runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("run_in_guest", REPO / "hil_tests" / "uml" / "run_in_guest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


rig = _load_runner()

ECHO_PROGRAM = (
    "import json, os, sys; print(json.dumps({'argv': sys.argv[1:], 'cwd': os.getcwd(), 'env': dict(os.environ)}))"
)


def _run_command_file(path: Path) -> subprocess.CompletedProcess[str]:
    """Run it the way guest_init.sh does: with an empty environment."""
    return subprocess.run(["env", "-i", "/bin/sh", str(path)], capture_output=True, text=True, timeout=30, check=False)


# ------------------------------------------------------------------------------------------- command file
def test_command_file_carries_argv_cwd_and_env_verbatim(tmp_path: Path) -> None:
    awkward = ["two words", "it's", '"quoted"', "$HOME", "`id`", "back\\slash", "new\nline", "ünïcode", "*", ""]
    env = {"UNIROSS_X": "a b'c\"$d", "PATH": os.environ["PATH"], "EMPTY": ""}
    workdir = tmp_path / "dir with space"
    workdir.mkdir()
    command = tmp_path / "command.sh"
    rig.write_command_file(command, [sys.executable, "-c", ECHO_PROGRAM, *awkward], workdir, env)

    done = _run_command_file(command)

    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["argv"] == awkward
    assert seen["cwd"] == str(workdir)
    assert {k: seen["env"].get(k) for k in env} == env


def test_command_file_passes_the_exit_status_through(tmp_path: Path) -> None:
    command = tmp_path / "command.sh"
    rig.write_command_file(command, ["sh", "-c", "exit 42"], tmp_path, {"PATH": "/usr/bin:/bin"})
    assert _run_command_file(command).returncode == 42


def test_command_file_refuses_a_missing_working_directory(tmp_path: Path) -> None:
    command = tmp_path / "command.sh"
    rig.write_command_file(command, ["true"], tmp_path / "absent", {"PATH": "/usr/bin:/bin"})
    assert _run_command_file(command).returncode == rig.EXIT_INFRASTRUCTURE


@pytest.mark.parametrize(("argv", "env"), [([], {}), (["true"], {"BAD-NAME": "x"}), (["true"], {"1X": "x"})])
def test_command_file_rejects_what_it_cannot_express(argv: list[str], env: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        rig.render_command_file(argv, Path("/"), env)


# -------------------------------------------------------------------------------------------- exit status
@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("0\n", 0),
        ("42", 42),
        (" 5 \n", 5),
        ("255\n", 255),
        ("256\n", None),
        ("-1\n", None),
        ("", None),
        ("ok\n", None),
        ("1 2\n", None),
        ("\u0663\n", None),  # a non-ASCII digit
        (None, None),
    ],
)
def test_exit_status_parsing(text: str | None, status: int | None) -> None:
    assert rig.parse_exit_status(text) == status


def test_missing_status_file_reads_as_none(tmp_path: Path) -> None:
    assert rig.read_exit_status(tmp_path / "status") is None
    (tmp_path / "status").write_text("3\n")
    assert rig.read_exit_status(tmp_path / "status") == 3


# -------------------------------------------------------------------------------- kernel line, environment
def test_kernel_command_line_hands_over_the_files(tmp_path: Path) -> None:
    words = rig.kernel_command_line(tmp_path / "init.sh", tmp_path / "c.sh", tmp_path / "st", tmp_path / "u")
    assert f"init={tmp_path / 'init.sh'}" in words
    assert f"UNIROSS_GUEST_COMMAND={tmp_path / 'c.sh'}" in words
    assert f"UNIROSS_GUEST_STATUS={tmp_path / 'st'}" in words
    assert f"uml_dir={tmp_path / 'u'}" in words
    assert all(" " not in word for word in words)


def test_kernel_command_line_refuses_paths_with_spaces() -> None:
    with pytest.raises(rig.RunnerError):
        rig.kernel_command_line(Path("/a b/init"), Path("/c"), Path("/s"), Path("/u"))


def test_guest_environment_forwards_an_allow_list_and_puts_the_venv_first(tmp_path: Path) -> None:
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    host = {"UNIROSS_HIL_CHANNEL": "vcan0", "PYTEST_ADDOPTS": "-x", "CI": "true", "SECRET_TOKEN": "s", "PATH": "/x"}

    env = rig.guest_environment(host, tmp_path, {"EXTRA": "1", "CI": "false"})

    assert env["UNIROSS_HIL_CHANNEL"] == "vcan0" and env["PYTEST_ADDOPTS"] == "-x"
    assert "SECRET_TOKEN" not in env
    assert env["PATH"].split(":")[0] == str(tmp_path / ".venv" / "bin")
    assert "/x" not in env["PATH"].split(":")
    assert env["VIRTUAL_ENV"] == str(tmp_path / ".venv")
    assert env["TMPDIR"] == rig.GUEST_TMPDIR
    assert (env["EXTRA"], env["CI"]) == ("1", "false")


def test_guest_environment_without_a_venv(tmp_path: Path) -> None:
    env = rig.guest_environment({}, tmp_path)
    assert env["PATH"] == rig.STANDARD_PATH and "VIRTUAL_ENV" not in env


@pytest.mark.parametrize(
    ("cpuinfo", "override", "needed"),
    [
        ("flags\t\t: fpu sse avx512f amx_bf16 amx_tile amx_int8\n", None, True),
        ("flags\t\t: fpu sse avx2 avx512f\n", None, False),
        ("flags\t\t: fpu amx_tile\n", "0", False),
        ("flags\t\t: fpu\n", "1", True),
    ],
)
def test_xstate_shim_is_used_on_amx_hosts(cpuinfo: str, override: str | None, needed: bool) -> None:
    assert rig.xstate_shim_needed(cpuinfo, override) is needed


@pytest.mark.parametrize("cut", range(len(b"xx" + rig.READY_MARKER)))
def test_ready_marker_is_found_across_any_chunk_boundary(cut: int) -> None:
    stream = b"boot noise\nxx" + rig.READY_MARKER + b" after 1.9 s\n"
    watch = rig.MarkerWatch(rig.READY_MARKER)
    hits = [watch.feed(stream[: 11 + cut]), watch.feed(stream[11 + cut :]), watch.feed(rig.READY_MARKER)]
    assert hits.count(True) == 1


def test_ready_marker_absent() -> None:
    watch = rig.MarkerWatch(rig.READY_MARKER)
    assert not any(watch.feed(chunk) for chunk in (b"uniross-guest: rea", b"\ndy", b"uniross-guest: setup failed"))


# ------------------------------------------------------------------------------------------ process trees
def test_kill_tree_reaches_children_that_left_the_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    script = (
        "import subprocess, time; p = subprocess.Popen(['setsid', 'sleep', '300']); "
        f"open({str(pid_file)!r}, 'w').write(str(p.pid)); time.sleep(300)"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    deadline = time.monotonic() + 10
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    child = int(pid_file.read_text())
    while os.getpgid(child) == proc.pid:  # until `setsid` has left the group that a killpg reaches
        assert time.monotonic() < deadline
        time.sleep(0.01)

    rig.kill_tree(proc)

    assert proc.returncode is not None
    assert not rig.is_running(child)


# ----------------------------------------------------------------------- the host flow with a fake kernel
FAKE_KERNEL = textwrap.dedent(
    """\
    #!{python}
    import os, subprocess, sys, time
    args = dict(word.split("=", 1) for word in sys.argv[1:] if "=" in word)
    behaviour = os.environ["FAKE_KERNEL"]
    sys.stdout.write("boot noise\\r\\nuniross-guest: ready after 0.1 s\\r\\n"); sys.stdout.flush()
    if behaviour == "hang":
        child = subprocess.Popen(["sleep", "300"])
        open(os.environ["FAKE_KERNEL_CHILD"], "w").write(str(child.pid))
        time.sleep(300)
    status = subprocess.run(["env", "-i", "/bin/sh", args["UNIROSS_GUEST_COMMAND"]]).returncode
    if behaviour != "no-status":
        open(args["UNIROSS_GUEST_STATUS"], "w").write(f"{{status}}\\n")
    """
)


@pytest.fixture
def fake_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    kernel = tmp_path / "fake-linux.uml"
    kernel.write_text(FAKE_KERNEL.format(python=sys.executable))
    kernel.chmod(0o755)
    monkeypatch.setenv(rig.XSTATE_SHIM_ENV, "0")
    return str(kernel)


def _leftover_workdirs() -> set[str]:
    return {p.name for p in Path(os.environ.get("TMPDIR", "/tmp")).glob("uniross-uml-*")}


def test_host_flow_returns_the_guest_status_and_strips_cr(
    fake_kernel: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_KERNEL", "normal")
    before = _leftover_workdirs()
    out = io.BytesIO()
    result = rig.run_guest(["sh", "-c", "echo out; exit 3"], tmp_path, {}, 30, kernel=fake_kernel, out=out)
    assert result.exit_status == 3 and not result.timed_out
    assert result.boot_seconds is not None and result.boot_seconds <= result.total_seconds
    assert out.getvalue() == b"boot noise\nuniross-guest: ready after 0.1 s\nout\n"
    assert _leftover_workdirs() == before


def test_host_flow_without_a_status_reports_125(
    fake_kernel: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_KERNEL", "no-status")
    result = rig.run_guest(["true"], tmp_path, {}, 30, kernel=fake_kernel, out=io.BytesIO())
    assert result.exit_status == rig.EXIT_INFRASTRUCTURE


def test_host_flow_timeout_kills_the_guest(fake_kernel: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_KERNEL", "hang")
    child_pid_file = tmp_path / "child.pid"
    monkeypatch.setenv("FAKE_KERNEL_CHILD", str(child_pid_file))
    before = _leftover_workdirs()
    started = time.monotonic()
    result = rig.run_guest(["true"], tmp_path, {}, 1.0, kernel=fake_kernel, out=io.BytesIO())
    assert result.timed_out and result.exit_status == rig.EXIT_TIMEOUT
    assert time.monotonic() - started < 10
    alive = subprocess.run(["pgrep", "-f", fake_kernel], capture_output=True, text=True, check=False).stdout
    assert alive == ""
    assert not rig.is_running(int(child_pid_file.read_text()))
    assert _leftover_workdirs() == before


def test_missing_kernel_is_a_runner_error(tmp_path: Path) -> None:
    with pytest.raises(rig.RunnerError):
        rig.run_guest(["true"], tmp_path, {}, 5, kernel=str(tmp_path / "no-such-kernel"), out=io.BytesIO())


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_xstate_shim_builds_once_and_loads(tmp_path: Path) -> None:
    shim = rig.build_xstate_shim(tmp_path)
    built_at = shim.stat().st_mtime_ns
    assert rig.build_xstate_shim(tmp_path) == shim and shim.stat().st_mtime_ns == built_at
    done = subprocess.run(["true"], env={**os.environ, "LD_PRELOAD": str(shim)}, capture_output=True, check=False)
    assert done.returncode == 0 and b"cannot be preloaded" not in done.stderr


# ---------------------------------------------------------------------------------------------------- CLI
def test_cli_direct_mode_returns_the_status_and_marks_the_runner(tmp_path: Path) -> None:
    out = tmp_path / "env.txt"
    script = f'echo "$UNIROSS_HIL_RUNNER $EXTRA $(pwd)" > {out}; exit 4'
    handlers = {sig: signal.getsignal(sig) for sig in rig._STOP_SIGNALS}
    status = rig.main(["--mode", "direct", "--cwd", str(tmp_path), "--env", "EXTRA=x y", "--", "sh", "-c", script])
    assert status == 4
    assert out.read_text().split() == ["direct", "x", "y", str(tmp_path)]
    assert {sig: signal.getsignal(sig) for sig in rig._STOP_SIGNALS} == handlers


def test_cli_direct_mode_timeout_is_124(tmp_path: Path) -> None:
    started = time.monotonic()
    assert rig.main(["--mode", "direct", "--timeout", "0.5", "--", "sleep", "30"]) == rig.EXIT_TIMEOUT
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("argv", [[], ["--"], ["--env", "NOEQUALS", "--", "true"], ["--env", "1X=y", "--", "true"]])
def test_cli_usage_errors(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        rig.main(argv)
    assert exit_info.value.code == 2
