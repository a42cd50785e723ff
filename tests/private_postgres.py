"""A PostgreSQL 15 server of the test's own, in a temporary folder, on a free loopback port.

Usage::

    with PrivatePostgres(TlsFiles.make(tmp_path / "tls")) as server:
        url = server.url("db", "sslrootcert=...")  # postgresql://postgres@127.0.0.1:PORT/db?...
        server.admin()                              # a psycopg connection over its socket file

TLS is negotiated inside the PostgreSQL protocol, so no proxy can put it in front of the shared
server (whose ``ssl`` is off, and which tests never reconfigure): this one is started with
``ssl=on`` and the test CA's server certificate (``expired=True``: the expired one). Its
``pg_hba.conf`` trusts TLS connections on 127.0.0.1 and the socket file, and rejects plain
TCP: whatever connects over TCP speaks TLS. ``initdb`` and ``postgres`` refuse to run as
root: under root they run as the ``postgres`` user, in a folder of ``tempfile.mkdtemp`` that
user owns (pytest's folders are root's, 0700), removed by :meth:`stop`.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import psycopg
from private_redis import free_port
from private_tls import TlsFiles

BIN = Path("/usr/lib/postgresql/15/bin")
START_SECONDS = 60.0
"""How long the server may take to accept a login after it is started."""
STOP_SECONDS = 30.0
SERVER_USER = "postgres"
"""The OS user the server runs as when the tests run as root (and its superuser's name)."""
HBA = """\
local all all trust
hostssl all all 127.0.0.1/32 trust
hostnossl all all 127.0.0.1/32 reject
"""


class PrivatePostgres:
    """A ``postgres`` child process on ``127.0.0.1``; a context manager (stops it)."""

    def __init__(self, tls: TlsFiles, *, expired: bool = False) -> None:
        if not (BIN / "initdb").exists():
            raise RuntimeError(f"{BIN}/initdb is needed by the TLS tests: install postgresql-15")
        self.tls = tls
        self.expired = expired
        self.port = free_port()
        self.folder = Path()
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> PrivatePostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def url(self, database: str, query: str = "", *, host: str = "127.0.0.1") -> str:
        """A warehouse URL on this server, as the superuser."""
        url = f"postgresql://{SERVER_USER}@{host}:{self.port}/{database}"
        return url + (f"?{query}" if query else "")

    def admin(self) -> psycopg.Connection:
        """A superuser connection with autocommit, over the socket file (no TLS needed)."""
        return psycopg.connect(
            host=str(self.folder),
            port=self.port,
            user=SERVER_USER,
            dbname="postgres",
            autocommit=True,
            connect_timeout=5,
        )

    def start(self) -> None:
        """Make the cluster, start the server and wait until it takes a login."""
        self.folder = Path(tempfile.mkdtemp(prefix="etl4all-pg-"))
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        data, log = self.folder / "data", self.folder / "postgres.log"
        as_user: list[str] = []
        if os.geteuid() == 0:
            as_user = ["setpriv", f"--reuid={SERVER_USER}", f"--regid={SERVER_USER}"]
            as_user += ["--init-groups", "--"]
            os.chown(self.folder, *_ids())
        initdb = [BIN / "initdb", "--no-sync", "-A", "trust", "-U", SERVER_USER, "-D", data]
        subprocess.run([*as_user, *initdb], check=True, capture_output=True)
        (data / "pg_hba.conf").write_text(HBA)
        settings = ["listen_addresses=127.0.0.1", f"port={self.port}", "fsync=off", "ssl=on"]
        settings += [f"unix_socket_directories={self.folder}", *self._certificates()]
        with log.open("wb") as said:
            self._process = subprocess.Popen(
                [*as_user, BIN / "postgres", "-D", data, *(f"-c{s}" for s in settings)],
                stdout=subprocess.DEVNULL,
                stderr=said,
            )
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                self.admin().close()
                return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline or self._process.poll() is not None:
                    raise RuntimeError(
                        f"postgres did not start:\n{log.read_text()[-2000:]}"
                    ) from exc
                time.sleep(0.05)

    def _certificates(self) -> list[str]:
        """The server's TLS settings, their files copied into the folder: the key must be
        0600 and the server user's."""
        copies = {"ca": self.tls.ca, "cert": self.tls.cert, "key": self.tls.key}
        if self.expired:  # one file: its key and certificate
            copies |= {"cert": self.tls.expired_cert, "key": self.tls.expired_cert}
        settings = []
        for name, source in copies.items():
            target = self.folder / f"server-{name}.pem"
            shutil.copyfile(source, target)
            target.chmod(0o600)
            if os.geteuid() == 0:
                os.chown(target, *_ids())
            settings.append(f"ssl_{name}_file={target}")
        return settings

    def stop(self) -> None:
        """Shut the server down (SIGINT: a fast shutdown) and remove its folder."""
        if self._process is not None:
            self._process.send_signal(signal.SIGINT)
            try:
                self._process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)
            self._process = None
        if self.folder != Path():
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = Path()


def _ids() -> tuple[int, int]:
    """The uid and gid of :data:`SERVER_USER`."""
    account = pwd.getpwnam(SERVER_USER)
    return account.pw_uid, account.pw_gid
