"""A server process of the test's own on a free loopback port (Redis, MariaDB, PostgreSQL,
vsftpd, sshd): one owner for the port, the folder and log, the start with a deadline and the
stop, so each subclass says only how its server starts (:meth:`PrivateServer.command`) and
when it is ready (:meth:`PrivateServer.ready`, by default its :attr:`PrivateServer.banner`).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Self

KILL_SECONDS = 10.0
"""How long a server may take to go after SIGKILL."""


def free_port() -> int:
    """A TCP port nobody listens on now (loopback)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrivateServer:
    """A foreground server process on ``127.0.0.1:port``; a context manager (stops it)."""

    name = "server"
    """The server's name in errors."""
    banner: bytes = b""
    """What the server sends first on a new connection once it is ready (default ready())."""
    log_name = "server.log"
    start_seconds = 10.0
    """How long the server may take to be ready after it is started."""
    stop_signal = signal.SIGTERM
    stop_group = True
    """Whether the stop signal goes to the whole process group (else to the server only,
    which stops its children itself); SIGKILL, after ``stop_seconds``, goes to the group."""
    stop_seconds = 10.0

    def __init__(self, folder: Path | None) -> None:
        """``folder``: the server's files and log (None: :meth:`prepare` sets it)."""
        self.folder = folder or Path()
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        """The server's output (``folder/log_name``)."""
        return self.folder / self.log_name

    def command(self) -> list[str]:
        """The command line of the server (in the foreground)."""
        raise NotImplementedError

    def environment(self) -> dict[str, str] | None:
        """The server's environment (None: this process's)."""
        return None

    def prepare(self) -> None:
        """What each start does before the server process starts (nothing)."""

    def ready(self) -> bool:
        """Whether the server takes connections now: by default, whether a new connection
        gets :attr:`banner`."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as conn:
                return conn.recv(len(self.banner)) == self.banner
        except OSError:
            return False

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start the server and wait until it is ready; stopped again when it is not."""
        try:
            self.prepare()
            with open(self.log, "ab") as log:
                self._process = process = subprocess.Popen(
                    self.command(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self.environment(),
                    start_new_session=True,  # its forked processes die with it in stop()
                )
            deadline = time.monotonic() + self.start_seconds
            while not self.ready():
                if process.poll() is not None or time.monotonic() > deadline:
                    said = self.log.read_text(errors="replace").strip()[-2000:]
                    raise RuntimeError(f"{self.name} did not start on port {self.port}:\n{said}")
                time.sleep(0.02)  # a real process, bounded by the deadline
        except BaseException:
            self.stop()
            raise

    def running(self) -> bool:
        """Whether the server was started and not stopped."""
        return self._process is not None

    def stop(self) -> None:
        """Stop the server (connections are refused until :meth:`start`) and what it forked."""
        process, self._process = self._process, None
        if process is None:
            return
        _send(process, self.stop_signal, group=self.stop_group)
        try:
            process.wait(self.stop_seconds)
        except subprocess.TimeoutExpired:
            _send(process, signal.SIGKILL, group=True)
            process.wait(KILL_SECONDS)


def _send(process: subprocess.Popen[bytes], sig: int, *, group: bool) -> None:
    """Send ``sig`` to the process, or to its process group; gone already is fine."""
    try:
        if group:
            os.killpg(process.pid, sig)
        else:
            process.send_signal(sig)
    except ProcessLookupError:
        pass
