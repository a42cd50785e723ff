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
from pathlib import Path

import psycopg
from private_server import PrivateServer
from private_tls import TlsFiles

BIN = Path("/usr/lib/postgresql/15/bin")
SERVER_USER = "postgres"
"""The OS user the server runs as when the tests run as root (and its superuser's name)."""
HBA = """\
local all all trust
hostssl all all 127.0.0.1/32 trust
hostnossl all all 127.0.0.1/32 reject
"""


class PrivatePostgres(PrivateServer):
    """A ``postgres`` child process on ``127.0.0.1``, ready once it takes a login."""

    name = "postgres"
    log_name = "postgres.log"
    start_seconds = 60.0
    stop_signal = signal.SIGINT  # a fast shutdown
    stop_group = False  # the postmaster stops its own processes
    stop_seconds = 30.0

    def __init__(self, tls: TlsFiles, *, expired: bool = False) -> None:
        if not (BIN / "initdb").exists():
            raise RuntimeError(f"{BIN}/initdb is needed by the TLS tests: install postgresql-15")
        super().__init__(None)  # a new folder at each start: prepare()
        self.tls = tls
        self.expired = expired
        self._tls_settings: list[str] = []

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

    def _as_user(self) -> list[str]:
        """The command prefix that runs as :data:`SERVER_USER` under root (none otherwise)."""
        if os.geteuid() != 0:
            return []
        setpriv = ["setpriv", f"--reuid={SERVER_USER}", f"--regid={SERVER_USER}"]
        return [*setpriv, "--init-groups", "--"]

    def prepare(self) -> None:
        """Make the folder (the server user's) and the cluster."""
        self.folder = Path(tempfile.mkdtemp(prefix="etl4all-pg-"))
        if os.geteuid() == 0:
            os.chown(self.folder, *_ids())
        data = self.folder / "data"
        initdb = [BIN / "initdb", "--no-sync", "-A", "trust", "-U", SERVER_USER, "-D", data]
        subprocess.run([*self._as_user(), *initdb], check=True, capture_output=True)
        (data / "pg_hba.conf").write_text(HBA)
        self._tls_settings = self._certificates()

    def command(self) -> list[str]:
        settings = ["listen_addresses=127.0.0.1", f"port={self.port}", "fsync=off", "ssl=on"]
        settings += [f"unix_socket_directories={self.folder}", *self._tls_settings]
        postgres = [str(BIN / "postgres"), "-D", str(self.folder / "data")]
        return [*self._as_user(), *postgres, *(f"-c{s}" for s in settings)]

    def ready(self) -> bool:
        try:
            self.admin().close()
            return True
        except psycopg.OperationalError:
            return False

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
        super().stop()
        if self.folder != Path():
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = Path()


def _ids() -> tuple[int, int]:
    """The uid and gid of :data:`SERVER_USER`."""
    account = pwd.getpwnam(SERVER_USER)
    return account.pw_uid, account.pw_gid
