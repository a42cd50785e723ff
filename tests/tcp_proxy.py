"""A TCP proxy on loopback that a test can cut and restore: a backend outage on demand.

Usage::

    with TcpProxy.to_url(SERVICE_URLS["redis"]) as proxy:
        url = proxy.url(SERVICE_URLS["redis"])  # the same URL (user, password, path), proxied
        ...
        proxy.cut()      # the service "goes down": open connections are reset, new ones too
        proxy.restore()  # it is back: new connections are forwarded again
        proxy.pause()    # a network partition: connections stay open but nothing moves
        proxy.resume()   # the partition heals: what was held back flows on, nothing is lost

``cut()`` returns once every connection open before it is closed, so a test knows its client
has lost its connection. ``pause()`` stops reading from both sides (a chunk being forwarded at
that moment still arrives); the kernel buffers the rest, as a real partition would until the
TCP timeouts, and new connections are accepted but not forwarded until ``resume()``.
``accepted`` counts the connections accepted so far and ``open`` those forwarding now.

FTP: only the control connection goes through the proxy (passive data connections go to the
address the server announces), which is enough to take a server "down".
"""

from __future__ import annotations

import select
import socket
import struct
import threading
from types import TracebackType
from urllib.parse import urlsplit, urlunsplit

TICK = 0.05
"""Seconds a pump waits for data before it looks at the cut and stop flags again."""
DEFAULT_PORTS = {"redis": 6379, "amqp": 5672, "mysql": 3306, "ftp": 21, "http": 80, "https": 443}
"""Ports assumed by :meth:`TcpProxy.to_url` when the URL names none."""


class _Link:
    """One proxied connection: the client's socket and the service's."""

    def __init__(self, client: socket.socket, generation: int) -> None:
        self.client = client
        self.upstream: socket.socket | None = None
        self.generation = generation
        self.thread: threading.Thread | None = None

    def drop(self) -> None:
        """Reset both sockets (RST, not FIN); wakes a pump blocked on them."""
        for sock in (self.client, self.upstream):
            if sock is None:
                continue
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class TcpProxy:
    """Forwards ``host:port`` (loopback, a free port by default) to ``target_host:target_port``.

    Every method may be called from any thread. A context manager: started on entry, stopped
    (every connection reset) on exit.
    """

    def __init__(
        self, target_host: str, target_port: int, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server((host, port))
        self._listener.settimeout(TICK)
        self.host, self.port = self._listener.getsockname()[:2]
        self.accepted = 0
        self._lock = threading.Lock()
        self._links: set[_Link] = set()
        self._generation = 0
        self._cut = False
        self._flowing = threading.Event()
        self._flowing.set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="tcp-proxy", daemon=True)

    @classmethod
    def to_url(cls, url: str) -> TcpProxy:
        """A proxy to the host and port of ``url`` (its scheme's usual port when it has none)."""
        parts = urlsplit(url)
        port = parts.port or DEFAULT_PORTS[parts.scheme]
        return cls(parts.hostname or "127.0.0.1", port)

    def url(self, url: str) -> str:
        """``url`` with its host and port replaced by the proxy's (credentials and path kept)."""
        parts = urlsplit(url)
        userinfo, at, _ = parts.netloc.rpartition("@")
        return urlunsplit(parts._replace(netloc=f"{userinfo}{at}{self.host}:{self.port}"))

    @property
    def open(self) -> int:
        """Connections being forwarded now."""
        with self._lock:
            return len(self._links)

    def start(self) -> TcpProxy:
        """Start accepting connections."""
        self._thread.start()
        return self

    def cut(self) -> None:
        """Reset every open connection and every new one until :meth:`restore`."""
        with self._lock:
            self._cut = True
            self._generation += 1
            links = list(self._links)
        self._drop(links)

    def restore(self) -> None:
        """Forward new connections again (after :meth:`cut`)."""
        with self._lock:
            self._cut = False

    def pause(self) -> None:
        """Stop moving bytes both ways, keeping connections open (a network partition)."""
        self._flowing.clear()

    def resume(self) -> None:
        """Move bytes again (after :meth:`pause`)."""
        self._flowing.set()

    def stop(self) -> None:
        """Stop accepting and reset every connection."""
        self._stop.set()
        self._flowing.set()
        self._thread.join(timeout=5)
        self._listener.close()
        with self._lock:
            links = list(self._links)
        self._drop(links)

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- threads ----------------------------------------------------------------------------

    def _drop(self, links: list[_Link]) -> None:
        """Reset ``links`` and wait until their pumps have closed them."""
        for link in links:
            link.drop()
        for link in links:
            if link.thread is not None and link.thread is not threading.current_thread():
                link.thread.join(timeout=5)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                cut, generation = self._cut, self._generation
                link = _Link(client, generation)
                if not cut:
                    self._links.add(link)
            if cut:
                link.drop()
                client.close()
                continue
            link.thread = threading.Thread(
                target=self._pump, args=(link,), name="tcp-proxy-link", daemon=True
            )
            link.thread.start()

    def _live(self, link: _Link) -> bool:
        return not self._stop.is_set() and link.generation == self._generation

    def _pump(self, link: _Link) -> None:
        """Forward the bytes of one connection both ways until either side or the proxy ends
        it."""
        try:
            while not self._flowing.wait(TICK):  # connected during a partition: wait
                if not self._live(link):
                    return
            if not self._live(link):
                return
            try:
                link.upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                link.drop()  # the service itself is down: so is the proxy
                return
            link.upstream.settimeout(None)
            if not self._live(link):  # cut while connecting
                link.drop()
                return
            peers = {link.client: link.upstream, link.upstream: link.client}
            while self._live(link):
                if not self._flowing.wait(TICK):
                    continue
                readable, _, _ = select.select(list(peers), [], [], TICK)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
            link.drop()
        except OSError:
            link.drop()
        finally:
            with self._lock:
                self._links.discard(link)
            for sock in (link.client, link.upstream):
                if sock is not None:
                    sock.close()
