"""A server binary of the test's own (vsftpd, OpenSSH's sshd) as a child process on a free
loopback port: started in its own process group, ready once it sends its banner, stopped
with every session process it forked.

Subclasses give :meth:`PrivateDaemon.command` and :attr:`PrivateDaemon.banner`; the
server's output goes to ``folder/server.log`` (shown when it does not start).
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

START_SECONDS = 10.0
"""How long a server may take to send its banner after it is started."""


def free_port() -> int:
    """A TCP port nobody listens on now (loopback)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrivateDaemon:
    """A foreground server process on ``127.0.0.1:port``; a context manager (stops it)."""

    banner: bytes = b""
    """What the server sends first on a new connection once it is ready."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log = folder / "server.log"
        self._process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        """The command line of the server (in the foreground)."""
        raise NotImplementedError

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
        """Start the server and wait until a connection gets its banner."""
        with open(self.log, "ab") as log:
            self._process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its sessions' processes die with it in stop()
            )
        deadline = time.monotonic() + START_SECONDS
        while not self._greets():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"{self.command()[0]} did not start on port {self.port}: "
                    f"{self.log.read_text(errors='replace').strip()[-2000:]}"
                )
            time.sleep(0.02)

    def _greets(self) -> bool:
        """Whether a new connection gets the banner now."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as conn:
                return conn.recv(len(self.banner)) == self.banner
        except OSError:
            return False

    def stop(self) -> None:
        """Stop the server and the session processes it forked."""
        process, self._process = self._process, None
        if process is None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(10)
                break
            except subprocess.TimeoutExpired:
                continue
