"""A real FTP server (pyftpdlib) on 127.0.0.1 in a background thread, for tests.

Usage::

    with FtpTestServer(root) as server:
        url = server.url            # ftp://user:password@127.0.0.1:PORT/
        (server.root / "a.txt").write_text("...")

Listings use GMT times (pyftpdlib's default, matching ftputil's UTC assumption). Uploads are
written unbuffered, so a listing shows a file being uploaded as far as it has arrived.
"""

from __future__ import annotations

import logging
import threading
import warnings
from pathlib import Path
from types import TracebackType

with warnings.catch_warnings():
    # pyftpdlib still imports asyncore/asynchat, deprecated since Python 3.11.
    warnings.simplefilter("ignore", DeprecationWarning)
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.filesystems import AbstractedFS
    from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler
    from pyftpdlib.servers import FTPServer


class _UnbufferedFS(AbstractedFS):  # type: ignore[misc]
    """Files opened without a write buffer: what a client sent is on disk at once."""

    def open(self, filename: str, mode: str):  # type: ignore[no-untyped-def]
        return open(filename, mode, buffering=0)  # pyftpdlib opens files in binary mode only


USER = "user"
PASSWORD = "password"


class FtpTestServer:
    """Serves ``root`` to ``USER``/``PASSWORD`` with full permissions on a free port."""

    def __init__(
        self, root: Path, *, user: str = USER, password: str = PASSWORD, cert: Path | None = None
    ) -> None:
        """``cert``: a PEM file of the server's key and certificate chain, to serve FTPS
        (explicit TLS, required on the control and the data connections) instead of FTP."""
        self.scheme = "ftp" if cert is None else "ftps"
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.user = user
        self.password = password
        authorizer = DummyAuthorizer()
        authorizer.add_user(user, password, str(self.root), perm="elradfmwMT")
        # A handler class per server, so that two servers never share an authorizer.
        tls = (
            {}
            if cert is None
            else {
                "certfile": str(cert),
                "tls_control_required": True,
                "tls_data_required": True,
            }
        )
        handler = type(
            "TestFTPHandler",
            (FTPHandler if cert is None else TLS_FTPHandler,),
            {
                **tls,
                "authorizer": authorizer,
                "abstracted_fs": _UnbufferedFS,
                "use_gmt_times": True,
                "banner": "etl4all test FTP",
                "auth_failed_timeout": 0.05,  # answer a wrong password at once, not after 3 s
            },
        )
        logging.getLogger("pyftpdlib").setLevel(logging.WARNING)
        self._server = FTPServer(("127.0.0.1", 0), handler)
        self.port: int = self._server.address[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="ftp-test-server", daemon=True)

    @property
    def url(self) -> str:
        """``ftp://user:password@127.0.0.1:PORT/`` (``ftps://`` with a ``cert``)."""
        return f"{self.scheme}://{self.user}:{self.password}@127.0.0.1:{self.port}/"

    def start(self) -> FtpTestServer:
        """Start serving in the background."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and disconnect every client."""
        self._stop.set()
        self._thread.join(timeout=5)

    def _serve(self) -> None:
        try:
            while not self._stop.is_set():
                self._server.serve_forever(timeout=0.05, blocking=False, handle_exit=False)
        finally:
            self._server.close_all()

    def __enter__(self) -> FtpTestServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
