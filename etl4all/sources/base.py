"""The Source role: list coordinate files and read their bytes (whole, or as a file)."""

from __future__ import annotations

import dataclasses
from typing import BinaryIO, Protocol, Self, runtime_checkable

from etl4all.closing import Closing


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


class Downloading(Closing):
    """A remote source whose :meth:`read` is its :meth:`open` (a temporary file) read whole."""

    def open(self, ref: FileRef) -> BinaryIO:
        raise NotImplementedError

    def read(self, ref: FileRef) -> bytes:
        """Download ``ref`` into memory.

        Raises:
            SourceError: connection or transfer failed, or the file is gone.
        """
        with self.open(ref) as local:
            return local.read()
