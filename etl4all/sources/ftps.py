"""Coordinate files from an FTP server over explicit TLS (``AUTH TLS``), through ftputil.

URL: ``ftps://user:password@host:21/dir?ca=/etc/ssl/partner-ca.pem``

Everything of :mod:`etl4all.sources.ftp` holds (path rule, ``recursive``, ``timeout``,
``utc_offset``, keys, errors), plus:

- The control and the data connections are encrypted (``PROT P``); the data connections
  reuse the control connection's TLS session, as servers that require it (vsftpd's
  ``require_ssl_reuse``, FileZilla Server) expect.
- The server's certificate is verified against the system CA store and its host name;
  ``ca`` (path to a PEM bundle) trusts that CA instead, ``verify=no`` turns the check off
  (only when asked: anyone in between can then read the password).
- A failed check is a :class:`~etl4all.errors.SourceConfigError`, one line naming the host
  and what failed (unknown CA, wrong host name, expired), never retried.

Driver: ``ftplib.FTP_TLS`` under ftputil (``pip install 'etl4all[ftp]'``: nothing more).
"""

from __future__ import annotations

import contextlib
import ftplib
import logging
import socket
import ssl
from collections.abc import Iterator
from typing import Any, ClassVar

from etl4all import urls
from etl4all.errors import SourceConfigError, SourceError
from etl4all.sources import url_options
from etl4all.sources.ftp import OPTIONS, FtpSource, cause_in

log = logging.getLogger(__name__)

TLS_OPTIONS = ("ca", "verify")
"""Query options an ``ftps://`` URL may carry beside those of ``ftp://``."""


class FtpsSource(FtpSource):
    """Files of a folder (or one file) on an FTP server, over explicit TLS."""

    scheme: ClassVar[str] = "ftps"
    options: ClassVar[tuple[str, ...]] = OPTIONS + TLS_OPTIONS

    def _session_class(self, parsed: urls.Url) -> type[ftplib.FTP]:
        """``FTP_TLS`` with the verifying context of the URL's ``ca`` and ``verify``."""
        values = parsed.options
        context = ssl.create_default_context(
            cafile=url_options.file_path(values, "ca", parsed.shown)
        )
        if not url_options.flag(values, "verify", "yes", parsed.shown):
            log.warning("%s: verify=no: the server's certificate is not checked", parsed.shown)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE

        class Session(_ReusingTLS):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                kwargs.setdefault("context", context)
                super().__init__(*args, **kwargs)

        return Session

    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """As FTP's, but a failed certificate check is one line that says what failed."""
        try:
            with super()._errors(action):
                yield
        except SourceError as exc:
            failed = cause_in(exc, ssl.SSLCertVerificationError)
            if failed is None:
                raise
            raise SourceConfigError(
                f"FTPS certificate check of {self._hostname}:{self._port} failed: "
                f"{_what_failed(failed)} ({self._safe_url})"
            ) from exc


class _ReusingTLS(ftplib.FTP_TLS):
    """``FTP_TLS`` whose data connections resume the control connection's TLS session."""

    def ntransfercmd(
        self, cmd: str, rest: int | str | None = None
    ) -> tuple[socket.socket, int | None]:
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:  # type: ignore[attr-defined]
            session = self.sock.session if isinstance(self.sock, ssl.SSLSocket) else None
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=session)
        return conn, size


def _what_failed(error: ssl.SSLCertVerificationError) -> str:
    """What the check found, and what to do about it."""
    reason = error.verify_message or error.reason or str(error)
    if "local issuer" in reason or "self-signed" in reason or "self signed" in reason:
        return f"{reason} (unknown CA: give its bundle with ?ca=/path/ca.pem)"
    if "Hostname mismatch" in reason or "IP address mismatch" in reason:
        return f"{reason} (wrong host name: use the name the certificate is for)"
    return reason
