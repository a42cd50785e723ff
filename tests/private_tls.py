"""Certificates made by the test (trustme), and a TLS-terminating proxy on loopback.

Usage::

    files = TlsFiles.make(tmp_path)   # ca.pem, server.pem + server.key for 127.0.0.1,
                                      # other-ca.pem (a CA that signed nothing), expired.pem
    with TlsProxy(files.server_context(), ("127.0.0.1", 5672)) as proxy:
        url = f"amqps://guest:guest@127.0.0.1:{proxy.port}/?ssl_ca={files.ca}"

The proxy speaks TLS with the server certificate on a free loopback port and forwards the
decrypted bytes to the target (RabbitMQ's plain port): what a client sees is a TLS server.
A client that refuses the certificate never reaches the target.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import ssl
import threading
from pathlib import Path
from types import TracebackType

import trustme

SERVER_HOST = "127.0.0.1"
"""The one name the server certificates hold: ``localhost`` is thus a host name mismatch."""


@dataclasses.dataclass(frozen=True)
class TlsFiles:
    """PEM files of a test CA, a server certificate it signed, and a CA that signed nothing."""

    ca: Path
    cert: Path
    key: Path
    other_ca: Path
    expired_cert: Path
    """A certificate for :data:`SERVER_HOST` by ``ca`` whose validity ended yesterday."""
    client_cert: Path
    """A client certificate and its key, one file, by ``ca``."""

    @classmethod
    def make(cls, folder: Path) -> TlsFiles:
        folder.mkdir(parents=True, exist_ok=True)
        ca, other = trustme.CA(), trustme.CA()
        server = ca.issue_cert(SERVER_HOST)
        now = dt.datetime.now(dt.UTC)
        expired = ca.issue_cert(
            SERVER_HOST, not_before=now - dt.timedelta(days=3), not_after=now - dt.timedelta(days=1)
        )
        files = cls(
            ca=folder / "ca.pem",
            cert=folder / "server.pem",
            key=folder / "server.key",
            other_ca=folder / "other-ca.pem",
            expired_cert=folder / "expired.pem",
            client_cert=folder / "client.pem",
        )
        ca.cert_pem.write_to_path(str(files.ca))
        other.cert_pem.write_to_path(str(files.other_ca))
        files.cert.write_bytes(b"".join(pem.bytes() for pem in server.cert_chain_pems))
        server.private_key_pem.write_to_path(str(files.key))
        expired.private_key_and_cert_chain_pem.write_to_path(str(files.expired_cert))
        client = ca.issue_cert("etl4all-test-client")
        client.private_key_and_cert_chain_pem.write_to_path(str(files.client_cert))
        return files

    def server_context(
        self, *, expired: bool = False, client_certs: bool = False
    ) -> ssl.SSLContext:
        """A server's context with the server (or the expired) certificate; with
        ``client_certs``, a client must show a certificate by ``ca``."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        if expired:
            context.load_cert_chain(self.expired_cert)
        else:
            context.load_cert_chain(self.cert, self.key)
        if client_certs:
            context.load_verify_locations(self.ca)
            context.verify_mode = ssl.CERT_REQUIRED
        return context


class TlsProxy:
    """TLS on ``127.0.0.1:port`` (a free port), the plain bytes forwarded to ``target``; a
    context manager, in an event loop thread of its own."""

    def __init__(self, context: ssl.SSLContext, target: tuple[str, int]) -> None:
        self.context = context
        self.target = target
        self.port = 0
        self._loop = asyncio.new_event_loop()
        # a refused handshake is what the tests provoke: not worth a log line
        self._loop.set_exception_handler(lambda loop, details: None)
        self._thread = threading.Thread(target=self._loop.run_forever, name="tls-proxy")
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.Task[None]] = set()

    def __enter__(self) -> TlsProxy:
        self._thread.start()
        start = asyncio.start_server(self._serve, SERVER_HOST, 0, ssl=self.context)
        self._server = asyncio.run_coroutine_threadsafe(start, self._loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._links):
            task.cancel()
        await asyncio.gather(*self._links, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._links.add(task)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            self._links.discard(task)
            return
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self._links.discard(task)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy ``reader`` to ``writer`` until either side ends."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, ssl.SSLError, RuntimeError):
            writer.close()
