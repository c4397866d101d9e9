"""Firmware-side byte transports for the SSC firmware simulator: pty pair, TCP server, pyserial port.

Each transport exposes ``link_url`` (what ``SerialLink`` should open), a waiting ``read(timeout)``, a
non-blocking ``write(data) -> bytes accepted`` (bytes sent while nobody listens vanish, as on a real line), and
``unplug()`` / ``replug()`` to make the device disappear and come back at the same ``link_url``. The pty transport
publishes the slave behind a stable symlink, as udev does with ``/dev/serial/by-id/...``.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import socket
import tempfile
import time
import tty
from typing import Protocol

import serial

READ_SIZE = 4096


def open_pty_pair() -> tuple[int, str]:
    """Create a raw pty pair: return (master fd for the simulator, non-blocking; slave path for the link)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    os.close(slave)
    os.set_blocking(master, False)
    return master, path


class SimTransport(Protocol):
    link_url: str

    def read(self, timeout: float) -> bytes: ...

    def write(self, data: bytes) -> int: ...

    def unplug(self) -> None: ...

    def replug(self) -> None: ...

    def close(self) -> None: ...


class PtyTransport:
    """A pty pair whose slave the link opens through a stable symlink path."""

    def __init__(self) -> None:
        self._dir = tempfile.mkdtemp(prefix="ssc-pty-")
        self.link_url = os.path.join(self._dir, "ttySSC")
        self._master: int | None = None
        self._listener = False  # a process has the slave open (master reads do not fail with EIO)
        self.replug()

    def replug(self) -> None:
        if self._master is not None:
            return
        master, slave_path = open_pty_pair()
        tmp = self.link_url + ".new"
        os.symlink(slave_path, tmp)
        os.replace(tmp, self.link_url)
        self._master = master
        self._listener = False

    def unplug(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.link_url)
        if self._master is not None:
            os.close(self._master)
            self._master = None

    def read(self, timeout: float) -> bytes:
        master = self._master
        if master is None:
            time.sleep(timeout)
            return b""
        ready, _, _ = select.select([master], [], [], timeout)
        if not ready:
            self._listener = True  # would report EIO at once if no slave were open
            return b""
        try:
            data = os.read(master, READ_SIZE)
        except BlockingIOError:
            return b""
        except OSError:  # EIO: nobody has the slave open
            self._listener = False
            time.sleep(timeout)
            return b""
        self._listener = True
        return data

    def write(self, data: bytes) -> int:
        if self._master is None or not self._listener:
            return len(data)  # the line is not connected: the bytes vanish
        try:
            return os.write(self._master, data)
        except BlockingIOError:
            return 0
        except OSError:
            self._listener = False
            return len(data)

    def close(self) -> None:
        self.unplug()
        shutil.rmtree(self._dir, ignore_errors=True)


class TcpServerTransport:
    """A TCP server on ``host:port`` (0 = any free port) for the link's ``socket://`` URL; one client at a time."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._port = port
        self._server: socket.socket | None = None
        self._client: socket.socket | None = None
        self.replug()
        self.link_url = f"socket://{self._host}:{self._port}"

    def replug(self) -> None:
        if self._server is not None:
            return
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((self._host, self._port))
        server.listen(1)
        server.setblocking(False)
        self._port = server.getsockname()[1]
        self._server = server

    def unplug(self) -> None:
        self._drop_client()
        if self._server is not None:
            self._server.close()
            self._server = None

    def _drop_client(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def read(self, timeout: float) -> bytes:
        socks = [s for s in (self._server, self._client) if s is not None]
        if not socks:
            time.sleep(timeout)
            return b""
        ready, _, _ = select.select(socks, [], [], timeout)
        data = b""
        for sock in ready:
            if sock is self._server:
                client, _ = sock.accept()
                client.setblocking(False)
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._drop_client()
                self._client = client
            else:
                try:
                    data = sock.recv(READ_SIZE)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    self._drop_client()
        return data

    def write(self, data: bytes) -> int:
        if self._client is None:
            return len(data)
        try:
            return self._client.send(data)
        except BlockingIOError:
            return 0
        except OSError:
            self._drop_client()
            return len(data)

    def close(self) -> None:
        self.unplug()


class SerialPortTransport:
    """Any pyserial URL or device (e.g. a USB-RS485 adapter wired to the link's port)."""

    def __init__(self, url: str, baudrate: int = 921600) -> None:
        self.link_url = url
        self._port = serial.serial_for_url(url, baudrate=baudrate, timeout=0, write_timeout=0)

    def read(self, timeout: float) -> bytes:
        if not self._port.is_open:
            time.sleep(timeout)
            return b""
        self._port.timeout = timeout
        return bytes(self._port.read(READ_SIZE))

    def write(self, data: bytes) -> int:
        if not self._port.is_open:
            return len(data)
        try:
            return int(self._port.write(data) or 0)
        except serial.SerialTimeoutException:
            return 0

    def unplug(self) -> None:
        self._port.close()

    def replug(self) -> None:
        if not self._port.is_open:
            self._port.open()

    def close(self) -> None:
        self._port.close()


def open_transport(port_or_url: str) -> SimTransport:
    """``"pty"`` -> :class:`PtyTransport`; ``"tcp://HOST:PORT"`` -> :class:`TcpServerTransport`; else pyserial."""
    if port_or_url == "pty":
        return PtyTransport()
    if port_or_url.startswith("tcp://"):
        host, _, port = port_or_url.removeprefix("tcp://").rpartition(":")
        return TcpServerTransport(host or "127.0.0.1", int(port or 0))
    return SerialPortTransport(port_or_url)
