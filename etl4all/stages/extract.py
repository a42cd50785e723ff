"""Extract stage: source files → points and rejects.

A file is skipped without being read when the state remembers it with the same size and
mtime, and after reading when its content hash is the one already done (a touched file).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

import polars as pl

from etl4all import parse, urls
from etl4all.sources.base import FileRef, Source
from etl4all.state.base import FileMark, State

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Extracted:
    """One file read and parsed."""

    ref: FileRef
    mark: FileMark
    points: pl.DataFrame
    rejects: pl.DataFrame
    unchanged: bool
    """True when the content is the one already done: nothing to publish."""


def for_warehouse(refs: list[FileRef], warehouse_url: str) -> list[FileRef]:
    """``refs`` with state keys scoped to the warehouse: a file done for one warehouse is
    still new work for another (the password never enters the key)."""
    scope = urls.redact(warehouse_url) + " <- "
    return [dataclasses.replace(ref, key=scope + ref.key) for ref in refs]


def unchanged_since(mark: FileMark | None, ref: FileRef) -> bool:
    """Whether ``ref`` was done with this size and mtime (``mark`` is its done mark)."""
    return mark is not None and (mark.size, mark.mtime) == (ref.size, ref.mtime)


def pending(refs: list[FileRef], state: State) -> list[FileRef]:
    """The files not yet done with this size and mtime (one state round trip)."""
    done = state.done([ref.key for ref in refs])
    return [ref for ref in refs if not unchanged_since(done.get(ref.key), ref)]


def done_mark(state: State, ref: FileRef) -> FileMark | None:
    """The current done mark of ``ref``: read again once claimed, since another worker may
    have finished the file between the listing and the claim."""
    return state.done([ref.key]).get(ref.key)


@contextmanager
def claimed(state: State, ref: FileRef, lease_seconds: float) -> Iterator[str | None]:
    """Hold the lease on ``ref`` while the block runs: its token, or None if another has it."""
    token = state.claim(ref.key, lease_seconds)
    try:
        yield token
    finally:
        if token is not None:
            state.release(ref.key, token)


def extract_file(source: Source, ref: FileRef, previous: FileMark | None) -> Extracted:
    """Read, hash and parse ``ref``; ``previous`` is its mark if it was done before."""
    started = time.perf_counter()
    data = source.read(ref)
    mark = FileMark(size=ref.size, mtime=ref.mtime, sha256=hashlib.sha256(data).hexdigest())
    if previous is not None and previous.sha256 == mark.sha256:
        log.info("unchanged content file=%s", ref.name)
        empty = parse.parse(b"", ref.name)
        return Extracted(ref, mark, empty.points, empty.rejects, unchanged=True)
    parsed = parse.parse(data, ref.name)
    if parsed.rejects.height:
        counts = parsed.rejects.get_column("reason").value_counts(sort=True).rows()
        log.warning(
            "rejects file=%s count=%d first_line=%d reasons=%s",
            ref.name,
            parsed.rejects.height,
            parsed.rejects.get_column("line").min(),
            ",".join(f"{reason}:{n}" for reason, n in counts),
        )
    log.info(
        "parsed file=%s points=%d rejects=%d seconds=%.3f",
        ref.name,
        parsed.points.height,
        parsed.rejects.height,
        time.perf_counter() - started,
    )
    return Extracted(ref, mark, parsed.points, parsed.rejects, unchanged=False)
