"""Coordinate files from the local file system.

URL: a plain path (``data/points``, ``/srv/in/day1.txt``) or ``file:///srv/in``
(percent-encoded; host empty or ``localhost``). No query options.

- A folder is searched recursively for files whose name matches ``pattern`` (see
  :func:`etl4all.sources.settle.name_matches`); ``FileRef.name`` is the path relative to the
  folder, ``/``-separated; bytes of a name that are not UTF-8 (a Latin-1 name) show as
  ``\\xNN`` (:func:`readable`).
- A single file is taken whatever its name; ``FileRef.name`` is its base name.
- ``FileRef.key`` is the absolute path as a ``file://`` URL, so the same file given by a
  relative or an absolute path is the same file for the state store.

Constructor option: ``pattern`` (default ``*.txt``). Driver: the standard library. One path
per instance: build one source per path given on the command line.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from etl4all import urls
from etl4all.closing import Closing
from etl4all.errors import ConfigError, SourceError
from etl4all.sources.base import FileRef
from etl4all.sources.settle import name_matches

log = logging.getLogger(__name__)


def path_of(url: str) -> Path:
    """The local path named by a plain path or a ``file://`` URL.

    Raises:
        ConfigError: a ``file://`` URL with a remote host, or no path at all.
    """
    parsed = urls.parse(url)
    if parsed.netloc not in ("", "localhost"):
        raise ConfigError(
            f"{url}: a file URL names a local path, e.g. file:///data/in (three slashes)"
        )
    text = parsed.path
    if not text:
        raise ConfigError(f"{url!r} names no file or folder")
    return Path(os.path.abspath(os.path.expanduser(text)))


class LocalSource(Closing):
    """Files of a local folder (recursively) or a single local file."""

    def __init__(self, *, url: str, pattern: str = "*.txt") -> None:
        """Check that the path exists; a folder's files are those whose name fits ``pattern``.

        Raises:
            ConfigError: the URL is malformed or the path does not exist.
        """
        self._url = url
        self._root = path_of(url)
        self._pattern = pattern
        if not self._root.exists():
            raise ConfigError(f"no such file or folder: {self._root} (source {url})")
        self._single = not self._root.is_dir()
        self._odd_names: dict[str, str] = {}
        """Names that are not UTF-8, as shown (:func:`readable`) → as the file system has
        them (with surrogate escapes), for :meth:`open`."""

    def __repr__(self) -> str:
        return f"LocalSource({str(self._root)!r})"

    def list_files(self) -> list[FileRef]:
        """Fresh listing of the matching files, sorted by name.

        Raises:
            SourceError: the folder cannot be read.
        """
        with self._errors("list"):
            if self._single:
                if not self._root.is_file():  # removed since the source was built
                    return []
                return [self._ref(self._root, self._root.name)]
            refs = [ref for ref in self._walk() if name_matches(ref.name, self._pattern)]
        refs.sort(key=lambda ref: ref.name)
        log.debug("listed %d files in %s", len(refs), self._root)
        return refs

    def read(self, ref: FileRef) -> bytes:
        """The whole content of ``ref``.

        Raises:
            SourceError: the file cannot be read (removed, no permission).
        """
        with self._errors(f"read {ref.name}"):
            return self._path(ref).read_bytes()

    def open(self, ref: FileRef) -> BinaryIO:
        """``ref`` opened for reading (the file itself: nothing is copied).

        Raises:
            SourceError: the file cannot be opened (removed, no permission).
        """
        with self._errors(f"open {ref.name}"):
            return self._path(ref).open("rb")

    def close(self) -> None:
        """Nothing to release."""

    def _path(self, ref: FileRef) -> Path:
        """The file of ``ref``; a name that is not UTF-8 through the name it was listed under
        (``ref.name`` shows its odd bytes as ``\\xNN``)."""
        if self._single:
            return self._root
        name = self._odd_names.get(ref.name, ref.name)
        return self._root.joinpath(*name.split("/"))

    def _walk(self) -> Iterator[FileRef]:
        """Every file under the root; files removed while listing are left out."""

        def fail(exc: OSError) -> None:
            raise exc

        for folder, dirs, files in os.walk(self._root, onerror=fail):
            dirs.sort()
            relative = Path(folder).relative_to(self._root).as_posix()
            prefix = "" if relative == "." else relative + "/"
            for file_name in files:
                path = Path(folder, file_name)
                try:
                    ref = self._ref(path, prefix + file_name) if path.is_file() else None
                except FileNotFoundError:
                    ref = None
                if ref is not None:
                    yield ref

    def _ref(self, path: Path, name: str) -> FileRef:
        stat = path.stat()
        shown = readable(name)
        if shown != name:
            self._odd_names[shown] = name
        return FileRef(key=path.as_uri(), name=shown, size=stat.st_size, mtime=stat.st_mtime)

    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Translate file system errors into :class:`SourceError`."""
        try:
            yield
        except OSError as exc:
            raise SourceError(
                f"cannot {action} in local source {self._root}: {exc.strerror or exc}"
            ) from exc


def readable(name: str) -> str:
    """A file name as stored (``source_file``) and shown: the name itself when it is UTF-8,
    else its bytes that are not UTF-8 as ``\\xNN`` (Latin-1 ``café.txt`` is ``caf\\xe9.txt``).

    The same name gives the same text every time, two different names never the same text
    (unless one holds a real ``\\x``), and the text is valid UTF-8 for every warehouse. The
    file itself is found through its key, which keeps the bytes.
    """
    return os.fsencode(name).decode("utf-8", "backslashreplace")
