"""Checkpoints of a file version: tell a strict prefix of it from a new version.

A done mark keeps, beside the sha256 of the whole file, its first 64 bytes as they are and
short hashes of its first ``n`` bytes for a few ``n`` (:func:`offsets`): doubling from 64
bytes up to a block of about 1/64 of the file (64 bytes at least: under a record), then every
block. A later, smaller file is a *prefix* of that version when its first bytes (up to 64)
are the same and its hash at the last checkpoint it reaches matches: the same bytes up to
there, its end within one block. A shrink that changes bytes before that checkpoint is a new
version. Stored as ``"<block>:<first bytes, hex>:<hash><hash>..."`` (12 hex digits a hash),
about 1 KiB for any file size.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable

HEAD = 64
"""The first checkpoint: no record is shorter."""
BLOCKS = 64
"""About this many checkpoints past the doubling head."""
MIN_BLOCK = HEAD
_DIGITS = 12


def block_for(size: int) -> int:
    """The block of a file of ``size`` bytes (a power of two)."""
    block = MIN_BLOCK
    while block * BLOCKS < size:
        block *= 2
    return block


def offsets(block: int, size: int) -> list[int]:
    """The checkpoints of a file of ``size`` bytes with ``block``: those below ``size``."""
    head = []
    at = HEAD
    while at < block:
        head.append(at)
        at *= 2
    return [o for o in [*head, *range(block, size, block)] if o < size]


class Hasher:
    """sha256 of a stream, plus its hash at each of some offsets, in one pass."""

    def __init__(self, wanted: Iterable[int]) -> None:
        self._wanted = sorted(set(wanted))
        self._next = 0
        self._hash = hashlib.sha256()
        self.size = 0
        self.head = b""
        """The stream's first :data:`HEAD` bytes."""
        self.at: dict[int, str] = {}
        """Offset → the sha256 of the bytes before it, for those reached."""

    def update(self, data: bytes) -> None:
        """Hash ``data``, the next bytes of the stream."""
        view, start = memoryview(data), 0
        end = self.size + len(data)
        if self.size < HEAD:
            self.head += data[: HEAD - self.size]
        while self._next < len(self._wanted) and self._wanted[self._next] <= end:
            offset = self._wanted[self._next]
            cut = offset - self.size
            self._hash.update(view[start:cut])
            start = cut
            self.at[offset] = self._hash.copy().hexdigest()
            self._next += 1
        self._hash.update(view[start:])
        self.size = end

    def hexdigest(self) -> str:
        """The sha256 of the bytes so far."""
        return self._hash.hexdigest()


def encode(block: int, size: int, hasher: Hasher) -> str:
    """The checkpoints of a ``size``-byte file ``hasher`` read: those it noted, in order (a
    file that grew while it was read has fewer than its size gives)."""
    noted = [hasher.at[o][:_DIGITS] for o in offsets(block, size) if o in hasher.at]
    return f"{block}:{hasher.head.hex()}:" + "".join(noted)


def _points(stored: str, stored_size: int) -> tuple[list[int], bytes, str]:
    """The offsets, first bytes and hashes of ``stored`` checkpoints of a ``stored_size``-byte
    file."""
    block, head, hashes = stored.split(":")
    return offsets(int(block), stored_size)[: len(hashes) // _DIGITS], bytes.fromhex(head), hashes


def is_prefix(stored: str, stored_size: int, hasher: Hasher) -> bool | None:
    """Whether the stream ``hasher`` read (fed the offsets of :func:`wanted`) is a strict
    prefix of the version whose checkpoints are ``stored``; None when ``stored`` is empty
    (a mark of an older release: unknown)."""
    if not stored:
        return None
    if hasher.size >= stored_size:
        return False
    points, head, hashes = _points(stored, stored_size)
    if not head.startswith(hasher.head):
        return False
    reached = bisect.bisect_right(points, hasher.size) - 1
    if reached < 0:
        return True  # its first bytes, all of it, are the same
    mine = hasher.at.get(points[reached], "")[:_DIGITS]
    return mine == hashes[reached * _DIGITS : (reached + 1) * _DIGITS]


def wanted(stored: str, stored_size: int) -> list[int]:
    """The offsets a :class:`Hasher` must note to compare a file with ``stored``."""
    return _points(stored, stored_size)[0] if stored else []
