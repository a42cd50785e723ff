"""Coordinate files from an FTP server, through ftputil.

URL: ``ftp://user:password@host:21/dir?recursive=yes&timeout=30&utc_offset=0``: ``dir`` is
relative to the login folder (``%2F`` for an absolute path) and may name a single file.
Query options: ``recursive`` (default ``yes``), ``timeout`` (seconds, default 30: connecting,
the greeting, each reply and each transfer read), ``utc_offset`` (hours between the server's
listing times and UTC). Constructor option: ``pattern``. Driver: ``ftputil``
(``pip install 'etl4all[ftp]'``), passive mode, one connection per thread, a fresh listing
each call. A refused login or a missing folder is a ``SourceConfigError``, other errors a
retryable ``SourceError``. More: docs/backends.md (Sources).
"""

from __future__ import annotations

import contextlib
import ftplib
import logging
import posixpath
import re
import shutil
import stat
import warnings
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote

with warnings.catch_warnings():
    # ftputil warns on import that its default path encoding will change; we always pass one.
    warnings.simplefilter("ignore", DeprecationWarning)
    import ftputil
    import ftputil.error
    import ftputil.session

from etl4all import urls
from etl4all.errors import ConfigError, SourceConfigError, SourceError
from etl4all.perthread import PerThread
from etl4all.sources import url_options
from etl4all.sources.base import Downloading, FileRef, Writes
from etl4all.sources.settle import name_matches
from etl4all.timeouts import timed_out

log = logging.getLogger(__name__)

_E = TypeVar("_E", bound=BaseException)

OPTIONS = ("recursive", "timeout", "utc_offset")
"""Query options an ``ftp://`` URL may carry."""

_COPY_BYTES = 1024 * 1024
"""Bytes copied at a time from the server into the temporary file."""

FTP_ERRORS: tuple[type[BaseException], ...] = (ftputil.error.FTPError, *ftplib.all_errors)
"""Every driver error the source translates into :class:`SourceError`."""
LOGIN_REFUSED = "530"
"""The FTP reply to a refused login: a :class:`SourceConfigError`, not retried."""
_NEEDS_TLS = re.compile(r"(?i)\b(ssl|tls|encrypt\w*)\b")
"""What a server that demands TLS says when refusing a plain session (vsftpd: ``530
Non-anonymous sessions must use encryption.``, ``522 Data connections must be encrypted.``;
ProFTPD: ``550 SSL/TLS required on the control channel``)."""
_REFUSALS = ("521", "522", "530", "534", "550")
"""The reply codes such a refusal comes with."""


class _PhaseTimeout(TimeoutError):
    """A timeout while connecting or logging in; its text says which (ftputil wraps it)."""


class FtpSource(Downloading):
    """Files of a folder (or one file) on an FTP server."""

    scheme: ClassVar[str] = "ftp"
    """The URL scheme this class serves (:class:`~etl4all.sources.ftps.FtpsSource`: ``ftps``)."""
    options: ClassVar[tuple[str, ...]] = OPTIONS
    """The query options its URL may carry."""

    def __init__(self, *, url: str, pattern: str = "*.txt") -> None:
        """Parse and check the URL; a folder's files are those whose name fits ``pattern``.

        Connections are opened on first use.

        Raises:
            ConfigError: not an ``ftp://`` URL, no host, a bad port or option.
        """
        parsed = urls.parse(url)
        self._safe_url = parsed.shown
        if parsed.scheme != self.scheme:
            raise ConfigError(
                f"{self._safe_url}: an {self.scheme.upper()} source URL starts with {self.scheme}://"
            )
        port = parsed.port or 21
        if not parsed.host:
            raise ConfigError(
                f"{self._safe_url} names no host, e.g. {self.scheme}://user:pass@host/dir"
            )
        self._hostname = parsed.host
        self._port = port
        self._user = parsed.user or "anonymous"
        self._password = parsed.password or ""
        self._recursive, self._timeout, utc_offset = _options(
            parsed.options, self._safe_url, self.options
        )
        self._time_shift = utc_offset * 3600.0
        self._pattern = pattern
        self._dir = parsed.path[1:].rstrip("/") or "."
        netloc = f"[{self._hostname}]" if ":" in self._hostname else self._hostname
        dir_part = "" if self._dir == "." else "/" + quote(self._dir, safe="/")
        if self._dir.startswith("/"):
            dir_part = "/%2F" + quote(self._dir[1:], safe="/")
        self._base_key = f"{self.scheme}://{netloc}:{port}{dir_part}"
        self._factory = _session_factory(port, self._timeout, self._session_class(parsed))
        self._root: str | None = None
        self._hosts = PerThread(self._connect)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._base_key!r})"

    def list_files(self) -> list[FileRef]:
        """Fresh listing of the matching files, sorted by name.

        Raises:
            SourceConfigError: the login was refused, or ``dir`` does not exist.
            SourceError: connection or listing failed (retryable).
        """
        with self._errors("listing"):
            host = self._hosts.get()
            host.stat_cache.clear()
            root = self._root_of(host)
            log.debug("LIST %s (recursive=%s)", self._safe_url, self._recursive)
            if host.path.isfile(root):
                found = [(root, posixpath.basename(root))]
                single = True
            elif host.path.isdir(root):
                found = list(self._walk(host, root))
                single = False
            else:
                raise SourceConfigError(
                    f"no such folder or file {root!r} on {self._safe_url}: check the path in "
                    "the URL (relative to the login folder; start it with %2F for an absolute "
                    "one, ftp://host/%2Fsrv/in)"
                )
            refs = []
            for path, name in found:
                if single or name_matches(name, self._pattern):
                    info = host.stat(path)
                    key = self._base_key if single else f"{self._base_key}/{quote(name)}"
                    size, mtime = int(info.st_size or 0), float(info.st_mtime or 0.0)
                    refs.append(FileRef(key=key, name=name, size=size, mtime=mtime))
        refs.sort(key=lambda ref: ref.name)
        log.debug("listed %d files on %s", len(refs), self._safe_url)
        return refs

    def _fetch(self, ref: FileRef, local: Writes) -> None:
        host = self._hosts.get()
        root = self._root_of(host)
        # a single-file URL's key, maybe after the warehouse scope (ExtractConfig.scoped)
        single = ref.key.endswith(self._base_key)
        path = root if single else posixpath.join(root, ref.name)
        log.debug("RETR %s from %s", path, self._safe_url)
        with host.open(path, "rb") as remote:
            shutil.copyfileobj(remote, local, _COPY_BYTES)

    def close(self) -> None:
        """Close the connections of every thread."""
        for host in self._hosts.pop_all():
            _close_quietly(host, self._safe_url)

    def _session_class(self, parsed: urls.Url) -> type[ftplib.FTP]:
        """The ``ftplib`` class of a session: plain FTP here."""
        return ftplib.FTP

    def _connect(self) -> ftputil.FTPHost:
        """A new logged-in connection."""
        log.debug("connecting to %s", self._safe_url)
        host = ftputil.FTPHost(
            self._hostname, self._user, self._password, session_factory=self._factory
        )
        host.set_time_shift(self._time_shift)
        return host

    def _drop_host(self) -> None:
        """Forget and close this thread's connection after an error."""
        host = self._hosts.pop()
        if host is not None:
            _close_quietly(host, self._safe_url)

    def _root_of(self, host: ftputil.FTPHost) -> str:
        """The absolute path of ``dir`` (relative paths start at the login folder)."""
        if self._root is None:
            self._root = host.path.abspath(self._dir)
        return self._root

    def _walk(self, host: ftputil.FTPHost, root: str) -> Iterator[tuple[str, str]]:
        """(absolute path, name relative to ``root``) of the regular files under ``root``."""
        if not self._recursive:
            for entry in sorted(host.listdir(root)):
                path = posixpath.join(root, entry)
                if stat.S_ISREG(host.stat(path).st_mode):
                    yield path, entry
            return

        def fail(exc: BaseException) -> None:
            raise exc

        for folder, dirs, files in host.walk(root, onerror=fail):
            dirs.sort()
            for entry in files:
                path = posixpath.join(folder, entry)
                if stat.S_ISREG(host.stat(path).st_mode):
                    yield path, posixpath.relpath(path, root)

    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Translate ftputil, ftplib and socket errors into :class:`SourceError`."""
        try:
            yield
        except FTP_ERRORS as exc:
            self._drop_host()
            text = _reason(exc)
            timeout = cause_in(exc, TimeoutError)
            if timeout is not None:
                if not isinstance(timeout, _PhaseTimeout):  # a reply or a transfer
                    what = "did not answer"
                    text = timed_out(self._hostname, self._port, what, self._timeout, "timeout")
                raise SourceError(
                    f"FTP {action} failed on {self._safe_url}: {text}; retry later (is the "
                    "server up and answering?)"
                ) from exc
            plain = self.scheme == "ftp"
            if plain and text[:3] in _REFUSALS and _NEEDS_TLS.search(text):
                raise SourceConfigError(
                    f"FTP {action} failed on {self._safe_url}: {urls.redact(text)}; the server "
                    "requires TLS: use an ftps:// URL"
                ) from exc
            if text.startswith(LOGIN_REFUSED):
                raise SourceConfigError(
                    f"FTP {action} failed on {self._safe_url}: {urls.redact(text)}; "
                    "check the user and password in the URL"
                ) from exc
            raise SourceError(
                f"FTP {action} failed on {self._safe_url}: {urls.redact(text)}; "
                "check the server, the URL and the credentials"
            ) from exc


def _options(
    values: dict[str, str], safe_url: str, known: tuple[str, ...]
) -> tuple[bool, float, float]:
    """``(recursive, timeout, utc_offset)`` from the URL's query options."""
    url_options.refuse_unknown(values, known, safe_url)
    recursive = url_options.flag(values, "recursive", "yes", safe_url)
    timeout = url_options.seconds(values, "timeout", "30", safe_url)
    try:
        utc_offset = float(values.get("utc_offset", "0"))
    except ValueError as exc:
        raise ConfigError(f"{safe_url}: utc_offset must be a number of hours") from exc
    if abs(utc_offset) > 24 or utc_offset * 4 != round(utc_offset * 4):
        raise ConfigError(f"{safe_url}: utc_offset must be hours in quarters, -24..24")
    return recursive, timeout, utc_offset


def cause_in(exc: BaseException, kind: type[_E]) -> _E | None:
    """The ``kind`` error behind ``exc`` (ftputil wraps ftplib's errors), if any."""
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None or isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _reason(exc: BaseException) -> str:
    """The first line of the first error with a text behind ``exc``: the server's reply when
    there is one. ftputil's wrapper of an error met while it recovered from another (a
    ``CWD`` back after a server replied and hung up, as vsftpd does after ``522``) has none."""
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            break
        text = seen.strerror if isinstance(seen, ftputil.error.FTPError) else str(seen)
        if text and text.strip():
            return text.strip().splitlines()[0]
        seen = seen.__cause__ or seen.__context__
    if cause_in(exc, EOFError) is not None:
        return "the server closed the connection"
    return type(exc).__name__


def _session_factory(port: int, timeout: float, base: type[ftplib.FTP]) -> Callable[..., Any]:
    """An ftputil session factory of ``base`` sessions: passive mode, UTF-8 paths, ``timeout``
    on every socket; a timeout while connecting or logging in says which step timed out."""

    class TimeoutFTP(base):  # type: ignore[valid-type,misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("timeout", timeout)
            super().__init__(*args, **kwargs)

        def connect(self, host: str = "", port: int = 0, *args: Any, **kwargs: Any) -> str:
            try:
                return super().connect(host, port, *args, **kwargs)
            except TimeoutError as exc:
                what = "did not accept the connection"
                if self.sock is not None:  # connected: the greeting never came
                    what = "accepted the connection but sent no greeting"
                raise _PhaseTimeout(timed_out(host, port, what, timeout, "timeout")) from exc

        def login(self, *args: Any, **kwargs: Any) -> str:
            try:
                return super().login(*args, **kwargs)
            except TimeoutError as exc:
                what = "did not answer the login"
                text = timed_out(self.host, self.port, what, timeout, "timeout")
                raise _PhaseTimeout(text) from exc

    factory: Callable[..., Any] = ftputil.session.session_factory(
        base_class=TimeoutFTP, port=port, use_passive_mode=True, encoding="utf-8"
    )
    return factory


def _close_quietly(host: ftputil.FTPHost, safe_url: str) -> None:
    """Close ``host``; a connection that is already broken cannot be closed cleanly."""
    try:
        host.close()
    except FTP_ERRORS as exc:
        log.debug("closing a connection to %s failed: %s", safe_url, exc)
