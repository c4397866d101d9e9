#!/usr/bin/env python3
"""Run one command where a real SocketCAN ``vcan0`` exists: on the host if its kernel can make one, otherwise
inside a User-Mode Linux guest booted for the purpose.

Owns the host side of the HIL bus: deciding host vs guest, writing the guest's command file, booting
``linux.uml`` (Debian package ``user-mode-linux``) with ``hil_tests/uml/guest_init.sh`` as PID 1, streaming the
guest console (CR stripped), reading the exit status the guest writes to a host file, killing every guest
process on timeout or interruption, and removing its temp dir. Standard library only, so that it runs before
any project dependency is installed.

    python hil_tests/uml/run_in_guest.py --cwd . -- .venv/bin/python -m pytest hil_tests -q --color=no

Exit status: the command's own; 124 when the timeout expired; 125 when the guest could not be set up or
reported nothing; 128+N when this runner was stopped by signal N.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import re
import selectors
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
GUEST_INIT = HERE / "guest_init.sh"
XSTATE_SHIM_SOURCE = HERE / "xstate_shim.c"

READY_MARKER = b"uniross-guest: ready"
EXIT_TIMEOUT = 124
EXIT_INFRASTRUCTURE = 125
DEFAULT_TIMEOUT_S = 900.0
DEFAULT_KERNEL = "linux.uml"
DEFAULT_MEM = "1G"
VCAN_CHANNEL = "vcan0"

STANDARD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
GUEST_TMPDIR = "/run/tmp"
FORWARDED_PREFIXES = ("UNIROSS_", "PYTEST_", "PYTHON", "HYPOTHESIS_", "LC_")
FORWARDED_NAMES = frozenset({"CI", "HOME", "LANG", "LOGNAME", "TZ", "USER"})
XSTATE_SHIM_ENV = "UNIROSS_UML_XSTATE_SHIM"

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KERNEL_WORD = re.compile(r"[!-~]+")  # printable ASCII without space: what a kernel command line word can carry


class RunnerError(RuntimeError):
    """The guest could not be prepared or booted (exit status 125)."""


class Interrupted(BaseException):
    """This runner received a termination signal; the guest is killed on the way out."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@dataclass(frozen=True)
class GuestResult:
    """What one guest run produced."""

    exit_status: int
    boot_seconds: float | None  # host time from exec of linux.uml to the guest's ready marker (vcan0 up)
    total_seconds: float
    timed_out: bool


# ----------------------------------------------------------------------------------------------- pure pieces
def venv_dir(repo_root: Path) -> Path | None:
    """The project venv of this checkout (``<repo>/.venv``), wherever the checkout lives."""
    venv = repo_root / ".venv"
    return venv if (venv / "bin").is_dir() else None


def guest_environment(
    host_env: Mapping[str, str], repo_root: Path, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The command's environment in the guest: an allow-list of host variables, the venv first on PATH,
    TMPDIR on a guest tmpfs, then ``extra`` (which wins)."""
    env = {k: v for k, v in host_env.items() if k in FORWARDED_NAMES or k.startswith(FORWARDED_PREFIXES)}
    venv = venv_dir(repo_root)
    env["PATH"] = f"{venv / 'bin'}:{STANDARD_PATH}" if venv else STANDARD_PATH
    if venv:
        env["VIRTUAL_ENV"] = str(venv)
    env.update(TMPDIR=GUEST_TMPDIR, TERM="dumb", UNIROSS_HIL_RUNNER="uml-guest")
    env.update(extra or {})
    return env


def render_command_file(argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> str:
    """The POSIX shell script the guest runs (with an empty environment) to execute ``argv``."""
    if not argv:
        raise ValueError("empty command")
    lines = ["# Written by hil_tests/uml/run_in_guest.py; run by guest_init.sh as: env -i sh <this file>"]
    for name in sorted(env):
        if not _ENV_NAME.fullmatch(name):
            raise ValueError(f"invalid environment variable name: {name!r}")
        lines.append(f"export {name}={shlex.quote(env[name])}")
    lines.append(f"cd {shlex.quote(str(cwd))} || exit {EXIT_INFRASTRUCTURE}")
    lines.append("exec " + shlex.join(argv))
    return "\n".join(lines) + "\n"


def write_command_file(path: Path, argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> None:
    path.write_text(render_command_file(argv, cwd, env), encoding="utf-8")


def parse_exit_status(text: str | None) -> int | None:
    """The guest's exit status from the status file's text; None if absent or not a status (0-255)."""
    if text is None:
        return None
    word = text.strip()
    if not word.isdigit() or not word.isascii():
        return None
    status = int(word)
    return status if status <= 255 else None


def read_exit_status(path: Path) -> int | None:
    try:
        return parse_exit_status(path.read_text(encoding="ascii", errors="replace"))
    except FileNotFoundError:
        return None


def kernel_command_line(
    init: Path, command_file: Path, status_file: Path, uml_dir: Path, mem: str = DEFAULT_MEM
) -> list[str]:
    """Arguments of ``linux.uml``. Every path must be a single kernel word (no spaces, ASCII)."""
    for value in (init, command_file, status_file, uml_dir, mem):
        if not _KERNEL_WORD.fullmatch(str(value)):
            raise RunnerError(f"cannot pass {str(value)!r} on the kernel command line (spaces or non-ASCII)")
    return [
        f"mem={mem}",
        "rootfstype=hostfs",
        "rootflags=/",
        "rw",
        "quiet",
        "loglevel=2",
        "con=null",
        "con0=fd:0,fd:1",
        f"init={init}",
        f"uml_dir={uml_dir}",
        f"UNIROSS_GUEST_COMMAND={command_file}",
        f"UNIROSS_GUEST_STATUS={status_file}",
    ]


def xstate_shim_needed(cpuinfo: str, override: str | None) -> bool:
    """UML 6.1 cannot restore FPU state on hosts whose XSAVE area includes AMX (see xstate_shim.c)."""
    if override in ("0", "1"):
        return override == "1"
    return any(line.startswith("flags") and " amx_tile" in line for line in cpuinfo.splitlines())


class MarkerWatch:
    """Finds a byte marker in a stream that arrives in arbitrary chunks."""

    def __init__(self, marker: bytes) -> None:
        self._marker = marker
        self._tail = b""
        self.found = False

    def feed(self, chunk: bytes) -> bool:
        """True on the chunk that completes the marker (once)."""
        if self.found:
            return False
        window = self._tail + chunk
        if self._marker in window:
            self.found = True
            return True
        self._tail = window[-(len(self._marker) - 1) :] if len(self._marker) > 1 else b""
        return False


# ------------------------------------------------------------------------------------------ host processes
def descendants(pid: int) -> list[int]:
    """All live descendants of ``pid`` (read from /proc), children first."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process, its process group and every descendant, even ones that left the group."""
    stragglers = descendants(proc.pid)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.kill()
    for pid in stragglers:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    proc.wait()
    _wait_until_dead(stragglers, timeout=2.0)


def is_running(pid: int) -> bool:
    """False once ``pid`` is gone or a zombie (dead, only waiting for its new parent to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _wait_until_dead(pids: Sequence[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(is_running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.01)


def build_xstate_shim(cache_dir: Path) -> Path:
    """Compile xstate_shim.c once per source version into ``cache_dir``; returns the shared object."""
    source = XSTATE_SHIM_SOURCE.read_bytes()
    target = cache_dir / f"xstate_shim-{hashlib.sha256(source).hexdigest()[:16]}.so"
    if target.exists():
        return target
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if compiler is None:
        raise RunnerError("this CPU needs hil_tests/uml/xstate_shim.c for linux.uml, but no C compiler found")
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.tmp")
    done = subprocess.run(
        [compiler, "-shared", "-fPIC", "-O2", "-o", str(partial), str(XSTATE_SHIM_SOURCE), "-ldl"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RunnerError(f"compiling {XSTATE_SHIM_SOURCE} failed:\n{done.stderr}")
    os.replace(partial, target)
    return target


def kernel_environment() -> dict[str, str]:
    """Host environment of linux.uml itself (not of the guest): plus the xstate shim where needed."""
    env = dict(os.environ)
    cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
    if xstate_shim_needed(cpuinfo, env.get(XSTATE_SHIM_ENV)):
        cache = Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "uniross" / "uml"
        env["LD_PRELOAD"] = str(build_xstate_shim(cache))
    return env


def note(message: str) -> None:
    print(f"[uml] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------- the guest
def _stream(proc: subprocess.Popen[bytes], out: BinaryIO, deadline: float, started: float) -> tuple[float | None, bool]:
    """Copy the console to ``out`` until EOF or the deadline. Returns (boot seconds, timed out)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    watch = MarkerWatch(READY_MARKER)
    boot: float | None = None
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return boot, True
            if not selector.select(timeout=min(remaining, 1.0)):
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                return boot, False
            if watch.feed(chunk):
                boot = time.monotonic() - started
            out.write(chunk.replace(b"\r", b""))
            out.flush()


def run_guest(
    argv: Sequence[str],
    cwd: Path,
    extra_env: Mapping[str, str],
    timeout: float,
    kernel: str = DEFAULT_KERNEL,
    mem: str = DEFAULT_MEM,
    out: BinaryIO | None = None,
) -> GuestResult:
    """Boot a UML guest with vcan0, run ``argv`` in ``cwd`` there and return its exit status."""
    kernel_path = shutil.which(kernel)
    if kernel_path is None:
        raise RunnerError(f"{kernel} not found: apt-get install user-mode-linux")
    sink = out if out is not None else sys.stdout.buffer
    work = Path(tempfile.mkdtemp(prefix="uniross-uml-"))
    try:
        init = work / "init.sh"
        shutil.copyfile(GUEST_INIT, init)
        init.chmod(0o755)
        command_file = work / "command.sh"
        write_command_file(command_file, argv, cwd, guest_environment(os.environ, REPO_ROOT, extra_env))
        status_file = work / "status"
        uml_dir = work / "uml"
        uml_dir.mkdir()
        args = kernel_command_line(init, command_file, status_file, uml_dir, mem)
        started = time.monotonic()
        proc = subprocess.Popen(
            [kernel_path, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=kernel_environment(),
        )
        try:
            boot, timed_out = _stream(proc, sink, started + timeout, started)
            if not timed_out:
                try:
                    proc.wait(timeout=max(5.0, started + timeout - time.monotonic()))
                except subprocess.TimeoutExpired:
                    timed_out = True
        finally:
            kill_tree(proc)
        total = time.monotonic() - started
        if timed_out:
            return GuestResult(EXIT_TIMEOUT, boot, total, True)
        status = read_exit_status(status_file)
        return GuestResult(EXIT_INFRASTRUCTURE if status is None else status, boot, total, False)
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ------------------------------------------------------------------------------------------- the host path
def host_has_vcan(channel: str = VCAN_CHANNEL) -> bool:
    """True when ``channel`` exists on the host, or can be created now (root and a kernel with vcan)."""
    if not hasattr(socket, "AF_CAN"):
        return False
    try:
        socket.socket(socket.AF_CAN, socket.SOCK_RAW, socket.CAN_RAW).close()
    except OSError:
        return False
    if Path("/sys/class/net", channel).exists():
        return True
    ip = shutil.which("ip")
    if ip is None or os.geteuid() != 0:
        return False
    created = subprocess.run([ip, "link", "add", "dev", channel, "type", "vcan"], capture_output=True, check=False)
    if created.returncode != 0:
        return False
    return subprocess.run([ip, "link", "set", "up", channel], capture_output=True, check=False).returncode == 0


def run_direct(argv: Sequence[str], cwd: Path, extra_env: Mapping[str, str], timeout: float) -> int:
    """Run ``argv`` on the host (its kernel has vcan0), with the venv first on PATH like in the guest."""
    env = dict(os.environ)
    venv = venv_dir(REPO_ROOT)
    if venv:
        env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', STANDARD_PATH)}"
        env["VIRTUAL_ENV"] = str(venv)
    env["UNIROSS_HIL_RUNNER"] = "direct"
    env.update(extra_env)
    proc = subprocess.Popen(list(argv), cwd=cwd, env=env, start_new_session=True)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return EXIT_TIMEOUT
    finally:
        kill_tree(proc)


# ------------------------------------------------------------------------------------------------------ CLI
def parse_env_assignments(items: Iterable[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not _ENV_NAME.fullmatch(name):
            raise argparse.ArgumentTypeError(f"--env wants NAME=VALUE, got {item!r}")
        env[name] = value
    return env


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cwd", type=Path, default=Path.cwd(), help="working directory of the command")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds, then kill (124)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="extra variable")
    parser.add_argument(
        "--mode",
        choices=("auto", "guest", "direct"),
        default="auto",
        help="auto: on the host if it has vcan0 (or can create it), else in a UML guest",
    )
    parser.add_argument("--kernel", default=DEFAULT_KERNEL, help="UML kernel binary")
    parser.add_argument("--mem", default=DEFAULT_MEM, help="guest memory")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- command [args...]")
    return parser


def _raise_interrupted(signum: int, _frame: object) -> None:
    raise Interrupted(signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        build_parser().error("no command given (put it after --)")
    try:
        extra_env = parse_env_assignments(args.env)
    except argparse.ArgumentTypeError as exc:
        build_parser().error(str(exc))
    cwd = args.cwd.resolve()
    previous = {signum: signal.signal(signum, _raise_interrupted) for signum in _STOP_SIGNALS}
    try:
        return _run(args, command, cwd, extra_env)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _run(args: argparse.Namespace, command: Sequence[str], cwd: Path, extra_env: Mapping[str, str]) -> int:
    try:
        if args.mode == "direct" or (args.mode == "auto" and host_has_vcan()):
            note(f"running directly on the host ({VCAN_CHANNEL} available or --mode direct)")
            return run_direct(command, cwd, extra_env, args.timeout)
        note("host kernel has no vcan: booting a User-Mode Linux guest")
        result = run_guest(command, cwd, extra_env, args.timeout, args.kernel, args.mem)
    except RunnerError as exc:
        note(f"error: {exc}")
        return EXIT_INFRASTRUCTURE
    except Interrupted as exc:
        note(f"stopped by signal {exc.signum}; guest killed")
        return 128 + exc.signum
    boot = "never became ready" if result.boot_seconds is None else f"ready in {result.boot_seconds:.2f} s"
    if result.timed_out:
        note(f"timeout after {result.total_seconds:.1f} s: guest killed ({boot})")
    elif result.exit_status == EXIT_INFRASTRUCTURE:
        note(f"guest reported no usable exit status or failed its setup ({boot})")
    note(
        f"guest {boot} (boot + CAN modules + vcan0); exit status {result.exit_status}; "
        f"total {result.total_seconds:.2f} s"
    )
    return result.exit_status


if __name__ == "__main__":
    sys.exit(main())
