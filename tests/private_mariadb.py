"""A MariaDB server of the test's own, in a temporary folder, on a free loopback port.

Usage::

    with PrivateMariaDb(tmp_path, tls=TlsFiles.make(tmp_path / "tls")) as server:
        url = server.url("db", "ssl_ca=...")   # mysql://root@127.0.0.1:PORT/db?ssl_ca=...
        server.admin()                          # a plain PyMySQL connection (autocommit)

TLS is negotiated inside the MySQL protocol, so no proxy can put it in front of the shared
server: this one is started with ``--ssl-ca/--ssl-cert/--ssl-key`` (``tls=None``: without
TLS). ``mariadb-install-db`` makes its system tables (root without a password, as on the
development machine), it allows ``LOAD DATA LOCAL`` and keeps no binary log; stopping it
(SIGTERM) shuts it down cleanly, and the folder goes with the test's ``tmp_path``.
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
from pathlib import Path

import pymysql
from private_server import PrivateServer
from private_tls import TlsFiles


class PrivateMariaDb(PrivateServer):
    """A ``mariadbd`` child process on ``127.0.0.1``, ready once it takes a login."""

    name = "mariadbd"
    log_name = "mariadb.err"  # its --log-error
    start_seconds = 60.0
    stop_seconds = 60.0  # SIGTERM: a clean shutdown

    def __init__(self, folder: Path, *, tls: TlsFiles | None) -> None:
        binary = shutil.which("mariadbd") or shutil.which("mariadbd", path="/usr/sbin")
        installer = shutil.which("mariadb-install-db")
        if binary is None or installer is None:
            raise RuntimeError("mariadbd and mariadb-install-db are needed by the TLS tests")
        super().__init__(folder)
        self.binary, self.installer = binary, installer
        self.tls = tls
        self.user = getpass.getuser()
        self.data = folder / "data"
        # its own temporary folder: a server starting removes every #sql* file of its tmpdir,
        # and in /tmp those are the shared server's temporary tables
        self.tmp = folder / "tmp"

    def url(self, database: str, query: str = "") -> str:
        """A warehouse URL on this server, as root."""
        return f"mysql://root@127.0.0.1:{self.port}/{database}" + (f"?{query}" if query else "")

    def admin(self) -> pymysql.Connection:
        """A root connection with autocommit (over the server's socket file)."""
        return pymysql.connect(
            unix_socket=str(self.folder / "mariadb.sock"), user="root", autocommit=True
        )

    def environment(self) -> dict[str, str]:
        return {**os.environ, "TMPDIR": str(self.tmp)}

    def prepare(self) -> None:
        """Make the data folder (its system tables)."""
        self.tmp.mkdir(exist_ok=True)
        subprocess.run(
            [
                *(self.installer, "--no-defaults", f"--datadir={self.data}", f"--user={self.user}"),
                *("--auth-root-authentication-method=normal", "--skip-test-db"),
            ],
            check=True,
            capture_output=True,
            env=self.environment(),
        )

    def command(self) -> list[str]:
        tls = []
        if self.tls is not None:
            tls = [f"--ssl-ca={self.tls.ca}", f"--ssl-cert={self.tls.cert}"]
            tls += [f"--ssl-key={self.tls.key}"]
        return [
            *(self.binary, "--no-defaults", f"--datadir={self.data}", f"--user={self.user}"),
            *(f"--port={self.port}", "--bind-address=127.0.0.1"),
            *(f"--socket={self.folder / 'mariadb.sock'}", f"--pid-file={self.folder / 'pid'}"),
            *("--local-infile=1", "--skip-log-bin", "--innodb-buffer-pool-size=16M"),
            *(f"--log-error={self.log}", f"--tmpdir={self.tmp}", *tls),
        ]

    def ready(self) -> bool:
        try:
            self.admin().close()
            return True
        except pymysql.err.OperationalError:
            return False
