"""A redis-server of the test's own, on a free loopback port: restart it, flush its scripts.

Usage::

    with PrivateRedis(tmp_path) as server:
        url = server.url("etl4all-test-x:")  # redis://127.0.0.1:PORT/0?prefix=...
        ...
        server.client().script_flush()       # the script cache is gone
        server.stop()                         # down: connections refused
        server.start()                        # back on the same port, empty (no persistence)

``PrivateRedis(tmp_path, tls=TlsFiles.make(...))`` listens with TLS only (``--tls-port``,
the test CA's server certificate, a client certificate asked only with ``client_certs=True``);
its :meth:`url` is then a ``rediss://`` URL trusting the test CA.

The shared Redis of the development machine is never restarted or flushed: other tests run
against it. This one keeps nothing on disk (``--save "" --appendonly no``), so a restart
forgets every key and script, as a failover to an empty replica would.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import redis
from private_server import PrivateServer
from private_tls import TlsFiles


class PrivateRedis(PrivateServer):
    """A ``redis-server`` child process on ``127.0.0.1``, ready once it answers PING."""

    name = "redis-server"

    def __init__(
        self, folder: Path, *, tls: TlsFiles | None = None, client_certs: bool = False
    ) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: the restart tests need it")
        super().__init__(folder)
        self.binary = binary
        self.tls = tls
        self.client_certs = client_certs

    def url(self, prefix: str = "etl4all-test:") -> str:
        """A state URL on this server (``rediss://``, trusting the test CA, with TLS)."""
        if self.tls is not None:
            return f"rediss://127.0.0.1:{self.port}/0?prefix={prefix}&ssl_ca={self.tls.ca}"
        return f"redis://127.0.0.1:{self.port}/0?prefix={prefix}"

    def client(self) -> redis.Redis:
        """A plain client (for checks and faults); close it after use."""
        if self.tls is not None:
            return redis.Redis(
                host="127.0.0.1",
                port=self.port,
                decode_responses=True,
                ssl=True,
                ssl_ca_certs=str(self.tls.ca),
                ssl_certfile=str(self.tls.client_cert) if self.client_certs else None,
            )
        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True)

    def command(self) -> list[str]:
        """An empty server that keeps nothing on disk."""
        listen = ["--port", str(self.port)]
        if self.tls is not None:
            asked = "yes" if self.client_certs else "no"
            listen = ["--port", "0", "--tls-port", str(self.port), "--tls-auth-clients", asked]
            listen += ["--tls-cert-file", str(self.tls.cert), "--tls-key-file", str(self.tls.key)]
            listen += ["--tls-ca-cert-file", str(self.tls.ca)]
        return [
            self.binary,
            *listen,
            *("--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
            *("--daemonize", "no", "--dir", str(self.folder)),
        ]

    def ready(self) -> bool:
        try:
            with self.client() as client:
                client.ping()
            return True
        except redis.ConnectionError:
            return False
