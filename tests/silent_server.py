"""A TCP listener on loopback that never answers: a server that hangs, on demand.

``SilentServer()`` accepts every connection and never sends a byte: a stuck MySQL, a RabbitMQ
node that takes connections but never speaks, an FTP daemon or HTTP API behind a broken load
balancer. What the client sends is read and thrown away, so its writes never block on a full
buffer. ``SilentServer(accept=False)`` does not even accept: its backlog is full, so the
kernel drops new connection attempts and a client's connect waits (a firewall that drops
packets, a host that is gone). Usage::

    with SilentServer() as server:
        url = server.url("mysql", "/x", "root")  # mysql://root@127.0.0.1:PORT/x
        ...

``accepted`` counts the connections accepted so far. Leaving the block closes every socket.

:func:`bounded` runs a call in a thread and fails the test if it has not returned within a
bound (the configured timeouts plus slack), so a regression fails the test instead of hanging
the suite; no test asserts on the wall clock otherwise.
"""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Callable
from types import TracebackType
from typing import TypeVar

T = TypeVar("T")

TICK = 0.05
"""Seconds the serving thread waits for events before it looks at its stop flag again."""
FILL_TIMEOUT = 0.2
"""Seconds a connection that fills the backlog may take before the backlog counts as full."""


class SilentServer:
    """Listens on ``host:port`` (a free loopback port by default) and answers nothing.

    Args:
        accept: accept connections (and read what comes); False: fill the backlog instead,
            so a new connection attempt is never answered.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, accept: bool = True) -> None:
        self._listener = socket.create_server((host, port), backlog=None if accept else 0)
        self.host, self.port = self._listener.getsockname()[:2]
        self.accepted = 0
        self._accept = accept
        self._sockets: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="silent-server", daemon=True)

    def url(self, scheme: str, path: str = "/", userinfo: str = "") -> str:
        """``scheme://[userinfo@]host:port{path}``."""
        at = f"{userinfo}@" if userinfo else ""
        return f"{scheme}://{at}{self.host}:{self.port}{path}"

    def __enter__(self) -> SilentServer:
        if self._accept:
            self._thread.start()
        else:
            self._fill_backlog()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        for sock in (*self._sockets, self._listener):
            sock.close()

    def _fill_backlog(self) -> None:
        """Connect until a connection attempt is no longer answered (Linux: one is enough)."""
        while True:
            filler = socket.socket(self._listener.family, socket.SOCK_STREAM)
            filler.settimeout(FILL_TIMEOUT)
            try:
                filler.connect((self.host, self.port))
            except TimeoutError:
                filler.close()
                return
            self._sockets.append(filler)

    def _serve(self) -> None:
        while not self._stop.is_set():
            readable, _, _ = select.select([self._listener, *self._sockets], [], [], TICK)
            for sock in readable:
                if sock is self._listener:
                    conn, _ = self._listener.accept()
                    self._sockets.append(conn)
                    self.accepted += 1
                    continue
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                if not data:  # the client gave up: forget its socket
                    self._sockets.remove(sock)
                    sock.close()


def bounded(seconds: float, call: Callable[[], T]) -> T:
    """``call()``, run in a thread; fail the test if it is still running after ``seconds``.

    Whatever ``call`` raises is raised here. The thread is a daemon: a call that hangs is
    left behind (the test fails at once) rather than holding up the suite.
    """
    outcome: list[T] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:  # handed to the test's thread as it is
            error.append(exc)

    thread = threading.Thread(target=run, name="bounded-call", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise AssertionError(f"still running after {seconds} s: a timeout did not apply")
    if error:
        raise error[0]
    return outcome[0]
