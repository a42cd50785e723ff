"""The Source role: list coordinate files and read their bytes (whole, or as a file)."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import tempfile
from typing import IO, BinaryIO, Protocol, Self, runtime_checkable

from etl4all import liveness
from etl4all.closing import Closing

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class FileRef:
    """One file of a source, as listed."""

    key: str
    """Identity for the state store: the source URL without credentials plus the path."""
    name: str
    """Path relative to the source root; becomes the ``source`` column of every row."""
    size: int
    """Size in bytes when listed."""
    mtime: float
    """Modification time (seconds since the epoch) when listed."""
    etag: str = ""
    """The store's tag of this content (an S3 ETag), part of the version identity with the
    size and mtime; empty where the store gives none (local, FTP)."""


@runtime_checkable
class Source(Protocol):
    """Lists and reads coordinate files; a context manager."""

    def list_files(self) -> list[FileRef]:
        """Fresh listing of the files matching the pattern, sorted by name."""
        ...

    def read(self, ref: FileRef) -> bytes:
        """The whole content of ``ref``."""
        ...

    def open(self, ref: FileRef) -> BinaryIO:
        """The content of ``ref`` as a seekable binary file, read in bounded pieces by the
        extract stage; the caller closes it."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...

    def __enter__(self) -> Self:
        """Use as a context manager: ``close()`` on exit."""
        ...

    def __exit__(self, *exc: object) -> None:
        """Close."""
        ...


class Writes(Protocol):
    """Where a download writes its pieces."""

    def write(self, data: bytes, /) -> int:
        """Write ``data``; the bytes written."""
        ...


class Downloading(Closing):
    """A remote source that reads a file by downloading it (:meth:`_fetch`) into a temporary
    file, on disk rather than in memory; :meth:`read` reads that file whole."""

    def _fetch(self, ref: FileRef, local: Writes) -> None:
        """Write the content of ``ref`` to ``local``."""
        raise NotImplementedError

    def _errors(self, action: str) -> contextlib.AbstractContextManager[None]:
        """Translate the client's errors during ``action`` into ``SourceError``."""
        raise NotImplementedError

    def open(self, ref: FileRef) -> BinaryIO:
        """Download ``ref`` into a temporary file, opened at its start; the caller closes it.

        Raises:
            SourceError: connection or transfer failed, or the file is gone.
        """
        local = tempfile.TemporaryFile(prefix="etl4all-download-")  # noqa: SIM115
        try:
            with self._errors(f"download of {ref.name}"):
                self._fetch(ref, _Progressing(local))
        except BaseException:
            local.close()
            raise
        if (size := local.tell()) != ref.size:
            log.debug("%s changed since listed: %d bytes, listed %d", ref.key, size, ref.size)
        local.seek(0)
        return local

    def read(self, ref: FileRef) -> bytes:
        """Download ``ref`` into memory.

        Raises:
            SourceError: connection or transfer failed, or the file is gone.
        """
        with self.open(ref) as local:
            return local.read()


class _Progressing:
    """A file being downloaded, each piece written a step of progress (a big file on a slow
    link is work, not a stall: :mod:`etl4all.liveness`)."""

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file

    def write(self, data: bytes) -> int:
        liveness.PROCESS.progressed()
        return self._file.write(data)
