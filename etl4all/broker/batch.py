"""A batch on the wire: one frame as a Parquet (zstd) body plus descriptive headers.

Headers of an encoded batch (their names are constants of :mod:`etl4all.broker.base`):

- ``batch_id``: deterministic, :func:`batch_id` of the source file's sha256 and the chunk index,
  so a replayed file produces the same ids and every downstream effect is idempotent;
- ``source``: the file the rows come from;
- ``rows``: the row count;
- ``schema``: the :data:`etl4all.frames.SCHEMAS` name (``points``, ``addresses``, ``rejects``);
- ``sha256``: hex digest of the body, verified by :func:`decode` before the body is read;
- ``version``: the version of the source file (:mod:`etl4all.stages.filework`), when known.

RabbitMQ 4 refuses messages over 16 MiB (``max_message_size``), so :func:`chunks` slices big
frames to keep every encoded body under ``max_bytes`` (8 MiB by default).
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Iterator, Mapping
from typing import Any

import polars as pl

from etl4all import frames
from etl4all.broker.base import (
    BATCH_ID_HEADER,
    MAX_BYTES,
    ROWS_HEADER,
    SCHEMA_HEADER,
    SHA256_HEADER,
    SOURCE_HEADER,
    VERSION_HEADER,
)
from etl4all.errors import DataError

log = logging.getLogger(__name__)

_OVERHEAD = 64 * 1024
"""Room kept for Parquet metadata and page headers when sizing a chunk."""
_FILL = 0.8
"""Fraction of ``max_bytes`` that a chunk's in-memory size may take."""


def batch_id(sha256_of_file: str, index: int) -> str:
    """The deterministic id of chunk ``index`` of a file, e.g. ``"3f2a9c0d1e4b5a68-00002"``."""
    return f"{sha256_of_file[:16]}-{index:05d}"


def encode(
    frame: pl.DataFrame, *, kind: str, batch_id: str, source: str, version: int | None = None
) -> tuple[bytes, dict[str, Any]]:
    """Encode ``frame`` as a Parquet (zstd) body with its headers.

    Args:
        frame: the rows; cast to the ``kind`` schema first, so only valid batches leave.
        kind: a :data:`etl4all.frames.SCHEMAS` name.
        batch_id: the batch's deterministic id (see :func:`batch_id`).
        source: the file the rows come from.
        version: the version of that file (a ``version`` header when given).

    Returns:
        ``(body, headers)`` ready for :meth:`etl4all.broker.base.Broker.publish`.

    Raises:
        DataError: unknown ``kind`` or a frame that does not fit its schema.
    """
    frame = frames.cast_frame(frame, _schema(kind))
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd", statistics=False)
    body = buffer.getvalue()
    headers: dict[str, Any] = {
        BATCH_ID_HEADER: batch_id,
        SOURCE_HEADER: source,
        ROWS_HEADER: frame.height,
        SCHEMA_HEADER: kind,
        SHA256_HEADER: hashlib.sha256(body).hexdigest(),
    }
    if version is not None:
        headers[VERSION_HEADER] = version
    return body, headers


def decode(body: bytes, headers: Mapping[str, Any]) -> pl.DataFrame:
    """Verify and read an encoded batch, cast to the schema its headers name.

    Raises:
        DataError: missing headers, sha256 mismatch, unreadable Parquet, a row count that
            differs from the ``rows`` header, or columns that do not fit the schema.
    """
    name = headers.get(BATCH_ID_HEADER, "?")
    expected = headers.get(SHA256_HEADER)
    if not expected:
        raise DataError(f"batch {name} has no sha256 header; it was not written by etl4all")
    actual = hashlib.sha256(body).hexdigest()
    if actual != str(expected):
        raise DataError(
            f"batch {name}: body sha256 {actual[:16]}… does not match header "
            f"{str(expected)[:16]}…; the message is corrupt"
        )
    schema = _schema(str(headers.get(SCHEMA_HEADER, "")))
    try:
        frame = pl.read_parquet(io.BytesIO(body))
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataError(f"batch {name}: body is not readable Parquet: {exc}") from exc
    rows = headers.get(ROWS_HEADER)
    if rows is not None and str(rows) != str(frame.height):
        raise DataError(f"batch {name}: header says {rows} rows, body has {frame.height}")
    return frames.cast_frame(frame, schema)


def chunks(
    frame: pl.DataFrame, *, max_rows: int, max_bytes: int = MAX_BYTES
) -> Iterator[pl.DataFrame]:
    """Zero-copy slices of ``frame`` of at most ``max_rows`` rows whose bodies fit ``max_bytes``.

    A slice's in-memory size bounds its Parquet size (zstd only shrinks it, plus metadata),
    so a slice is split in halves until its estimated size fits; wide or skewed rows thus give
    smaller chunks. An empty frame yields nothing.

    Raises:
        ValueError: ``max_rows`` or ``max_bytes`` too small.
    """
    if max_rows < 1:
        raise ValueError(f"max_rows must be at least 1, got {max_rows}")
    budget = int(max_bytes * _FILL) - _OVERHEAD
    if budget <= 0:
        raise ValueError(f"max_bytes must be more than {_OVERHEAD / _FILL:.0f}, got {max_bytes}")
    if frame.height == 0:
        return
    per_row = max(frame.estimated_size() / frame.height, 1.0)
    step = max(1, min(max_rows, int(budget / per_row)))
    for offset in range(0, frame.height, step):
        yield from _fit(frame.slice(offset, step), budget)


def _fit(part: pl.DataFrame, budget: int) -> Iterator[pl.DataFrame]:
    """``part`` itself if it fits ``budget``, else its halves, recursively."""
    if part.height <= 1 or part.estimated_size() <= budget:
        if part.estimated_size() > budget:
            log.warning("one row of %d bytes exceeds the batch size budget", part.estimated_size())
        yield part
        return
    half = part.height // 2
    yield from _fit(part.slice(0, half), budget)
    yield from _fit(part.slice(half), budget)


def _schema(kind: str) -> dict[str, pl.DataType]:
    try:
        return frames.SCHEMAS[kind]
    except KeyError:
        raise DataError(
            f"unknown batch schema {kind!r}; known: {', '.join(sorted(frames.SCHEMAS))}"
        ) from None
