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
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

import redis
from private_tls import TlsFiles

START_SECONDS = 10.0
"""How long the server may take to answer PING after it is started."""


def free_port() -> int:
    """A TCP port nobody listens on now (loopback)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrivateRedis:
    """A ``redis-server`` child process on ``127.0.0.1``; a context manager (stops it)."""

    def __init__(
        self, folder: Path, *, tls: TlsFiles | None = None, client_certs: bool = False
    ) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: the restart tests need it")
        self.binary = binary
        self.folder = folder
        self.tls = tls
        self.client_certs = client_certs
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> PrivateRedis:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

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

    def start(self) -> None:
        """Start the server (empty) and wait until it answers."""
        listen = ["--port", str(self.port)]
        if self.tls is not None:
            asked = "yes" if self.client_certs else "no"
            listen = ["--port", "0", "--tls-port", str(self.port), "--tls-auth-clients", asked]
            listen += ["--tls-cert-file", str(self.tls.cert), "--tls-key-file", str(self.tls.key)]
            listen += ["--tls-ca-cert-file", str(self.tls.ca)]
        self._process = subprocess.Popen(
            [
                self.binary,
                *listen,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                with self.client() as client:
                    client.ping()
                return
            except redis.ConnectionError as exc:
                if time.monotonic() > deadline or self._process.poll() is not None:
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from exc
                time.sleep(0.02)

    def running(self) -> bool:
        """Whether the server was started and not stopped."""
        return self._process is not None

    def stop(self) -> None:
        """Stop the server; connections to it are refused until :meth:`start`."""
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(10)
        self._process = None
