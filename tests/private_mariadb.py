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
import time
from pathlib import Path
from types import TracebackType

import pymysql
from private_redis import free_port
from private_tls import TlsFiles

START_SECONDS = 60.0
"""How long the server may take to accept a login after it is started."""


class PrivateMariaDb:
    """A ``mariadbd`` child process on ``127.0.0.1``; a context manager (stops it)."""

    def __init__(self, folder: Path, *, tls: TlsFiles | None) -> None:
        binary = shutil.which("mariadbd") or shutil.which("mariadbd", path="/usr/sbin")
        installer = shutil.which("mariadb-install-db")
        if binary is None or installer is None:
            raise RuntimeError("mariadbd and mariadb-install-db are needed by the TLS tests")
        self.binary, self.installer = binary, installer
        self.folder = folder
        self.tls = tls
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> PrivateMariaDb:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def url(self, database: str, query: str = "") -> str:
        """A warehouse URL on this server, as root."""
        return f"mysql://root@127.0.0.1:{self.port}/{database}" + (f"?{query}" if query else "")

    def admin(self) -> pymysql.Connection:
        """A root connection with autocommit (over the server's socket file)."""
        return pymysql.connect(
            unix_socket=str(self.folder / "mariadb.sock"), user="root", autocommit=True
        )

    def start(self) -> None:
        """Make the data folder, start the server and wait until it takes a login."""
        data, user = self.folder / "data", getpass.getuser()
        # its own temporary folder: a server starting removes every #sql* file of its tmpdir,
        # and in /tmp those are the shared server's temporary tables
        tmp = self.folder / "tmp"
        tmp.mkdir(exist_ok=True)
        env = {**os.environ, "TMPDIR": str(tmp)}
        subprocess.run(
            [
                *(self.installer, "--no-defaults", f"--datadir={data}", f"--user={user}"),
                *("--auth-root-authentication-method=normal", "--skip-test-db"),
            ],
            check=True,
            capture_output=True,
            env=env,
        )
        tls = []
        if self.tls is not None:
            tls = [f"--ssl-ca={self.tls.ca}", f"--ssl-cert={self.tls.cert}"]
            tls += [f"--ssl-key={self.tls.key}"]
        log = self.folder / "mariadb.err"
        self._process = subprocess.Popen(
            [
                *(self.binary, "--no-defaults", f"--datadir={data}", f"--user={user}"),
                *(f"--port={self.port}", "--bind-address=127.0.0.1"),
                *(f"--socket={self.folder / 'mariadb.sock'}", f"--pid-file={self.folder / 'pid'}"),
                *("--local-infile=1", "--skip-log-bin", "--innodb-buffer-pool-size=16M"),
                *(f"--log-error={log}", f"--tmpdir={tmp}", *tls),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                self.admin().close()
                return
            except pymysql.err.OperationalError as exc:
                if time.monotonic() > deadline or self._process.poll() is not None:
                    said = log.read_text()[-2000:] if log.exists() else ""
                    raise RuntimeError(f"mariadbd did not start:\n{said}") from exc
                time.sleep(0.05)

    def stop(self) -> None:
        """Shut the server down (SIGTERM: a clean shutdown)."""
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(60)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(10)
        self._process = None
