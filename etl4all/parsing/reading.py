"""Read data_points files in bounded pieces, cut where records start, and parse them in turn.

A whole file in memory costs its size several times over once split into lines, so a large
file is read ``piece_bytes`` at a time: each piece ends where the last record that starts in
it starts (:func:`etl4all.parsing.records.last_record_start`), and that record goes on with the next
piece. A record never straddles two pieces, so parsing piece after piece gives the same points
and rejects as parsing the whole file, with line numbers counted on across pieces; memory
follows the piece size, which follows ``--batch-size`` (:func:`piece_bytes`).

The extract stage also needs, before parsing, the file's sha256 (batch ids, same-content
check) and where its complete records end (:func:`.records.complete_end`): :func:`digest`
hashes the file in one bounded pass and :func:`tail_end` looks only at its tail.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import polars as pl

from etl4all import fingerprint
from etl4all.parsing import parse, records
from etl4all.settings import DEFAULTS
from etl4all.state.base import FileMark

BYTES_PER_RECORD = 128
"""About the size of one record (three lines, DMS text, CRLF): pieces hold about
``batch_rows`` records."""
MIN_PIECE_BYTES = 1024 * 1024
"""The smallest piece read: below, the fixed cost of each Polars call shows."""
_HASH_BYTES = 4 * 1024 * 1024
_TAIL_BYTES = 64 * 1024


def piece_bytes(batch_rows: int) -> int:
    """Bytes read at a time for batches of ``batch_rows`` points."""
    return max(batch_rows * BYTES_PER_RECORD, MIN_PIECE_BYTES)


def pieces(file: BinaryIO, max_bytes: int, size: int | None = None) -> Iterator[bytes]:
    """The first ``size`` bytes of ``file`` (all of it when None), read from where it is, in
    pieces that end where a record starts; a piece is longer than ``max_bytes`` only when a
    single record is."""
    carry = b""
    left = size if size is not None else sys.maxsize
    while left > 0:
        block = file.read(min(max_bytes, left))
        if not block:  # the file shrank: what was there is all there is
            break
        left -= len(block)
        data = carry + block if carry else block
        cut = records.last_record_start(data) if left > 0 and len(block) == max_bytes else len(data)
        if cut <= 0:  # no record starts here after the first line: read on
            carry = data
            continue
        carry = data[cut:]
        yield data[:cut]
    if carry:
        yield carry


def parse_pieces(chunks: Iterable[bytes], source: str) -> Iterator[tuple[int, parse.Parsed]]:
    """Parse consecutive pieces of one file (see :func:`pieces`), numbering lines on; yields
    each piece's size in bytes and what it holds. A file that is not text (compressed,
    UTF-16: :func:`etl4all.parsing.parse.not_text`) is one reject, whatever its size."""
    first = 1
    chunks = iter(chunks)
    for piece in chunks:
        if first == 1 and (detail := parse.not_text(piece)) is not None:
            yield len(piece), parse.unreadable(piece, source, detail)
            for rest in chunks:  # read on (the callers count bytes), nothing more to parse
                yield len(rest), parse.parse(b"", source)
            return
        lines = parse.split_lines(piece)
        if first > 1:
            lines = lines.with_columns(pl.col("line") + (first - 1))
        first += lines.height
        yield len(piece), parse.parse_lines(lines, source)


def parse_file(path: Path, source: str, *, batch_rows: int = DEFAULTS.batch_rows) -> parse.Parsed:
    """Parse the file at ``path`` piece by piece; the points and rejects of all of it."""
    with path.open("rb") as file:
        parts = [
            parsed for _, parsed in parse_pieces(pieces(file, piece_bytes(batch_rows)), source)
        ]
    if not parts:
        return parse.parse(b"", source)
    return parse.Parsed(
        pl.concat([part.points for part in parts]), pl.concat([part.rejects for part in parts])
    )


@dataclasses.dataclass(frozen=True)
class Digest:
    """A file's size and sha256, how it compares with the version done before, and its own
    checkpoints (:mod:`etl4all.fingerprint`)."""

    size: int
    sha256: str
    prefix_sha256: str | None
    """sha256 of the first ``previous.size`` bytes; None when the file is shorter (or there
    is no previous version)."""
    prefix_of_previous: bool | None
    """Whether the file is a strict prefix of the previous version (None: unknown)."""
    checkpoints: str


def digest(file: BinaryIO, *, previous: FileMark | None = None, size_hint: int = 0) -> Digest:
    """Hash ``file`` from its start in bounded blocks, comparing it with ``previous`` (the
    version done before) on the way; ``size_hint`` (the listed size) places the checkpoints."""
    file.seek(0)
    block = fingerprint.block_for(size_hint)
    old = (previous.checkpoints, previous.size) if previous is not None else ("", 0)
    wanted = fingerprint.wanted(*old)
    hasher = fingerprint.Hasher(
        [*fingerprint.offsets(block, size_hint), *wanted, *([previous.size] if previous else [])]
    )
    while chunk := file.read(_HASH_BYTES):
        hasher.update(chunk)
    prefix_sha256 = None
    if previous is not None:
        prefix_sha256 = hashlib.sha256().hexdigest() if previous.size == 0 else None
        prefix_sha256 = hasher.at.get(previous.size, prefix_sha256)
    return Digest(
        size=hasher.size,
        sha256=hasher.hexdigest(),
        prefix_sha256=prefix_sha256,
        prefix_of_previous=fingerprint.is_prefix(*old, hasher) if previous else None,
        checkpoints=fingerprint.encode(block, hasher.size, hasher),
    )


def tail_end(file: BinaryIO, size: int) -> int:
    """:func:`etl4all.parsing.records.complete_end` of the first ``size`` bytes of ``file``, from a
    tail that holds the last record start (the whole file only when none is found)."""
    window = _TAIL_BYTES
    while True:
        start = max(size - window, 0)
        file.seek(start)
        data = file.read(size - start)
        if start == 0 or records.last_record_start(data) > 0:
            return start + records.complete_end(data)
        window *= 4
