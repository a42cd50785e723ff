"""Coordinate files from an SSH server over SFTP, through asyncssh.

URL: ``sftp://user@host:22/srv/in?recursive=yes&timeout=30&known_hosts=/etc/etl4all/known_hosts``

- The path is absolute, as curl reads SFTP URLs; ``/~/in`` is ``in`` in the login folder, and
  no path at all is the login folder. It may also name a single file, taken whatever its name.
- Credentials the usual way: the SSH agent (``SSH_AUTH_SOCK``), the keys of ``~/.ssh``
  (``id_ed25519``, ``id_rsa``, …) and ``~/.ssh/config`` (``User``, ``IdentityFile``, …); a
  password when the URL gives one (percent-encoded; hidden in every message). No user: the
  one of ``~/.ssh/config``, else the local user.
- The server's host key is verified against ``~/.ssh/known_hosts``, or the file of the
  ``known_hosts`` option. An unknown or changed host key is a
  :class:`~etl4all.errors.SourceConfigError` in one line saying which, never retried.
- Query options: ``recursive`` (``yes``/``no``, default ``yes``), ``timeout`` (seconds,
  default 30: for the connection, for the login, and for a server that stops answering,
  found by SSH keepalives), ``known_hosts`` (path).

Constructor option: ``pattern`` (default ``*.txt``), which a single-file URL ignores.
Driver: ``asyncssh`` (``pip install 'etl4all[sftp]'``), chosen over paramiko and sshfs for its
read speed with bounded memory (parallel requests of 16 KiB blocks, copied 1 MiB at a time
into a temporary file) and a fast listing (``READDIR`` returns sizes and mtimes: no ``STAT``
per file).

``FileRef.key`` is ``sftp://host:port/path/name`` without credentials; sizes are exact and
mtimes to the second (SFTP version 3, as OpenSSH speaks it). One connection per source,
shared by every thread: calls run on the source's own event loop thread. A failed operation
on the connection (not a file's own error: no such file, no permission) drops it, so that a
retry by the caller reconnects. Errors become a retryable
:class:`~etl4all.errors.SourceError`, except a refused login, an untrusted host key and a
path that does not exist: :class:`~etl4all.errors.SourceConfigError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import posixpath
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar, cast
from urllib.parse import quote

import asyncssh

from etl4all import urls
from etl4all.errors import ConfigError, SourceConfigError, SourceError
from etl4all.sources import url_options
from etl4all.sources.base import Downloading, FileRef, Writes
from etl4all.sources.settle import name_matches
from etl4all.timeouts import timed_out

log = logging.getLogger(__name__)

OPTIONS = ("recursive", "timeout", "known_hosts")
"""Query options an ``sftp://`` URL may carry."""
DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"
_COPY_BYTES = 1024 * 1024
"""Bytes read at a time from the server into the temporary file."""
_T = TypeVar("_T")
_CONNECTION_GONE = (asyncssh.SFTPConnectionLost, asyncssh.SFTPNoConnection)
"""SFTP errors that mean the connection is gone (the others are a file's own: no such
file, permission denied)."""


class SftpSource(Downloading):
    """Files of a folder (or one file) on an SSH server, over SFTP."""

    def __init__(self, *, url: str, pattern: str = "*.txt") -> None:
        """Parse and check the URL; a folder's files are those whose name fits ``pattern``.

        The connection is opened on first use.

        Raises:
            ConfigError: not an ``sftp://`` URL, no host, a bad port or option.
        """
        parsed = urls.parse(url)
        self._safe_url = parsed.shown
        if parsed.scheme != "sftp":
            raise ConfigError(f"{self._safe_url}: an SFTP source URL starts with sftp://")
        if not parsed.host:
            raise ConfigError(f"{self._safe_url} names no host, e.g. sftp://user@host/srv/in")
        values = parsed.options
        url_options.refuse_unknown(values, OPTIONS, self._safe_url)
        self._recursive = url_options.flag(values, "recursive", "yes", self._safe_url)
        self._timeout = url_options.seconds(values, "timeout", "30", self._safe_url)
        self._known_hosts = url_options.file_path(values, "known_hosts", self._safe_url)
        self._hostname = parsed.host
        self._port = parsed.port or 22
        self._login: dict[str, Any] = {}
        if parsed.user:
            self._login["username"] = parsed.user
        if parsed.password is not None:
            self._login["password"] = parsed.password
        if self._known_hosts is not None:
            self._login["known_hosts"] = self._known_hosts  # never None: that trusts any key
        self._pattern = pattern
        self._dir = _remote_dir(parsed.path)
        netloc = f"[{self._hostname}]" if ":" in self._hostname else self._hostname
        self._base_key = f"sftp://{netloc}:{self._port}{quote(parsed.path.rstrip('/'))}"
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._conn: asyncssh.SSHClientConnection | None = None
        self._sftp: asyncssh.SFTPClient | None = None
        self._connecting = asyncio.Lock()
        """Held while connecting, so that threads starting at once share one connection;
        a new one with each new event loop."""
        self._root: str | None = None

    def __repr__(self) -> str:
        return f"SftpSource({self._base_key!r})"

    def list_files(self) -> list[FileRef]:
        """Fresh listing of the matching files, sorted by name.

        Raises:
            SourceConfigError: the login was refused, the host key is not trusted, or the
                path does not exist.
            SourceError: connection or listing failed (retryable).
        """
        with self._errors("listing"):
            refs = self._run(self._list())
        refs.sort(key=lambda ref: ref.name)
        log.debug("listed %d files on %s", len(refs), self._safe_url)
        return refs

    def _fetch(self, ref: FileRef, local: Writes) -> None:
        self._run(self._download(ref, local))

    def close(self) -> None:
        """Close the connection and stop the event loop thread."""
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None or thread is None:
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._disconnect(), loop).result(self._timeout)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=self._timeout)
        loop.close()

    # -- on the event loop thread ------------------------------------------------------------

    async def _client(self) -> asyncssh.SFTPClient:
        """The SFTP client, connected and logged in on first use (and after an error)."""
        async with self._connecting:
            if self._sftp is None:
                self._sftp, self._conn = await self._connect()
        return self._sftp

    async def _connect(self) -> tuple[asyncssh.SFTPClient, asyncssh.SSHClientConnection]:
        """A new logged-in connection and its SFTP client."""
        log.debug("connecting to %s", self._safe_url)
        try:
            conn = await asyncssh.connect(
                self._hostname,
                self._port,
                connect_timeout=self._timeout,
                keepalive_interval=self._timeout / 2,
                keepalive_count_max=2,
                **self._login,
            )
        except TimeoutError as exc:
            what = "did not complete the connection and SSH handshake"
            raise TimeoutError(
                timed_out(self._hostname, self._port, what, self._timeout, "timeout")
            ) from exc
        try:
            return await asyncio.wait_for(conn.start_sftp_client(), self._timeout), conn
        except BaseException:
            conn.close()
            raise

    async def _disconnect(self) -> None:
        """Close the connection, if any."""
        conn, self._conn, self._sftp = self._conn, None, None
        if conn is not None:
            conn.close()
            await conn.wait_closed()

    async def _root_of(self, sftp: asyncssh.SFTPClient) -> str:
        """The absolute path of the URL's path (relative ones start at the login folder)."""
        if self._root is None:
            try:
                self._root = await sftp.realpath(self._dir)
            except asyncssh.SFTPNoSuchFile:  # OpenSSH's sftp-server: the path must exist
                raise self._no_such(self._dir) from None
        return self._root

    async def _list(self) -> list[FileRef]:
        sftp = await self._client()
        root = await self._root_of(sftp)
        log.debug("listing %s (recursive=%s)", self._safe_url, self._recursive)
        try:
            attrs = await sftp.stat(root)
        except asyncssh.SFTPNoSuchFile:
            attrs = None
        if attrs is not None and attrs.type == asyncssh.FILEXFER_TYPE_REGULAR:
            return [self._ref(self._base_key, posixpath.basename(root), attrs)]
        if attrs is None or attrs.type != asyncssh.FILEXFER_TYPE_DIRECTORY:
            raise self._no_such(root)
        found = await self._walk(sftp, root, "")
        return [
            self._ref(f"{self._base_key}/{quote(name)}", name, attrs)
            for name, attrs in found
            if name_matches(name, self._pattern)
        ]

    async def _walk(
        self, sftp: asyncssh.SFTPClient, folder: str, prefix: str
    ) -> list[tuple[str, asyncssh.SFTPAttrs]]:
        """(name relative to the root, attributes) of the regular files under ``folder``;
        sub-folders are listed concurrently, symbolic links followed."""
        files, folders = [], []
        for entry in await sftp.readdir(folder):
            name = str(entry.filename)
            if name in (".", ".."):
                continue
            attrs = entry.attrs
            path = posixpath.join(folder, name)
            if attrs.type == asyncssh.FILEXFER_TYPE_SYMLINK:
                with contextlib.suppress(asyncssh.SFTPNoSuchFile):  # a dangling link
                    attrs = await sftp.stat(path)
            if attrs.type == asyncssh.FILEXFER_TYPE_REGULAR:
                files.append((prefix + name, attrs))
            elif attrs.type == asyncssh.FILEXFER_TYPE_DIRECTORY and self._recursive:
                folders.append(self._walk(sftp, path, f"{prefix}{name}/"))
        for found in await asyncio.gather(*folders):
            files += found
        return files

    async def _download(self, ref: FileRef, local: Writes) -> None:
        sftp = await self._client()
        root = await self._root_of(sftp)
        # a single-file URL's key, maybe after the warehouse scope (ExtractConfig.scoped)
        single = ref.key.endswith(self._base_key)
        path = root if single else posixpath.join(root, ref.name)
        log.debug("reading %s from %s", path, self._safe_url)
        async with sftp.open(path, "rb") as remote:
            while chunk := await remote.read(_COPY_BYTES):
                local.write(cast(bytes, chunk))

    def _no_such(self, path: str) -> SourceConfigError:
        return SourceConfigError(
            f"no such folder or file {path!r} on {self._safe_url}: check the path in the "
            "URL (absolute; /~/in for in in the login folder)"
        )

    @staticmethod
    def _ref(key: str, name: str, attrs: asyncssh.SFTPAttrs) -> FileRef:
        return FileRef(key=key, name=name, size=int(attrs.size or 0), mtime=float(attrs.mtime or 0))

    # -- on the caller's thread --------------------------------------------------------------

    def _run(self, work: Coroutine[Any, Any, _T]) -> _T:
        """Run ``work`` on the source's event loop (started on first use); its result."""
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=self._loop.run_forever, name="etl4all-sftp", daemon=True
                )
                self._thread.start()
                self._connecting = asyncio.Lock()
            loop = self._loop
        return asyncio.run_coroutine_threadsafe(work, loop).result()

    def _drop_connection(self) -> None:
        """Forget and close the connection after an error."""
        with self._lock:
            loop = self._loop
        if loop is not None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._disconnect(), loop).result(self._timeout)

    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Translate asyncssh and socket errors into :class:`SourceError`."""
        try:
            yield
        except SourceError:
            raise
        except asyncssh.HostKeyNotVerifiable as exc:
            self._drop_connection()
            raise SourceConfigError(self._host_key_problem()) from exc
        except asyncssh.PermissionDenied as exc:
            self._drop_connection()
            raise SourceConfigError(
                f"SFTP {action} failed on {self._safe_url}: login refused ({exc.reason}); "
                "check the user and password in the URL, or the SSH keys and agent"
            ) from exc
        except (asyncssh.Error, OSError) as exc:
            if not isinstance(exc, asyncssh.SFTPError) or isinstance(exc, _CONNECTION_GONE):
                self._drop_connection()  # a file's own error leaves other threads' work be
            raise SourceError(
                f"SFTP {action} failed on {self._safe_url}: {self._describe(exc)}; "
                "check the server, the URL and the credentials"
            ) from exc

    def _describe(self, exc: BaseException) -> str:
        """One line of what went wrong, with no secret in it."""
        reason = str(getattr(exc, "reason", None) or str(exc) or type(exc).__name__)
        if isinstance(exc, TimeoutError) and str(exc):
            return str(exc)  # the wording of the step that timed out (connecting)
        if isinstance(exc, TimeoutError) or "keepalive" in reason.lower():
            what = "did not answer"
            return timed_out(self._hostname, self._port, what, self._timeout, "timeout")
        return urls.redact(reason.strip().splitlines()[0])

    def _host_key_problem(self) -> str:
        """Why the host key was refused, in one line: unknown, or changed."""
        path = self._known_hosts or os.path.expanduser(DEFAULT_KNOWN_HOSTS)
        where = f"[{self._hostname}]:{self._port}" if self._port != 22 else self._hostname
        known = False
        with contextlib.suppress(OSError, ValueError, asyncssh.Error):
            known = bool(asyncssh.read_known_hosts(path).match(self._hostname, "", self._port)[0])
        if known:
            return (
                f"SFTP host key of {where} has changed: it is not the one {path} lists for it "
                "(a reinstalled server, or someone in between); check its fingerprint with the "
                f"server's admin, then replace its line in {path} ({self._safe_url})"
            )
        return (
            f"SFTP host key of {where} is unknown: {path} has no key for it; check its "
            f"fingerprint, then add it (ssh-keyscan -p {self._port} {self._hostname} >> {path}) "
            f"or name another file with ?known_hosts= ({self._safe_url})"
        )


def _remote_dir(path: str) -> str:
    """The folder or file to list: an absolute path, or one relative to the login folder
    (``/~/in``, or no path at all)."""
    if path in ("", "/~", "/~/"):
        return "."
    if path.startswith("/~/"):
        return path[3:].rstrip("/")
    return path.rstrip("/") or "/"
