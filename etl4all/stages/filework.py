"""A file's unit of work: the one owner of a file's life, from its claim to its done mark.

:meth:`Extractor.take <etl4all.stages.extract.Extractor.take>` gives a :class:`FileWork`, and
both drivers use it the same way::

    with extractor.take(ref) as work:
        for item in work.items():       # PointBatch items, then maybe a Prune
            ...                         # apply or publish it
            work.done(item)             # its effects are committed downstream

In between the work finds the file skipped, busy, held (a shrink) or a new version. What each
means and why: docs/architecture.md (A file's life).
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import time
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import BinaryIO

import polars as pl

from etl4all import liveness
from etl4all.clock import Clock
from etl4all.counts import Counts
from etl4all.parsing import parse, reading
from etl4all.sources.base import FileRef, Source
from etl4all.stages.batching import PointBatch, empty_batch, file_batches
from etl4all.stages.extract_config import ExtractConfig
from etl4all.stages.lease import Lease
from etl4all.stages.prune import Prune, Revert
from etl4all.state.base import FileLedger, FileMark, Holder, owner

log = logging.getLogger(__name__)

Item = PointBatch | Prune | Revert
"""What a unit of work hands out."""


@dataclasses.dataclass(frozen=True)
class Held:
    """A file held instead of pruned: it became empty or a strict prefix of the version loaded."""

    name: str
    size: int
    """Its size now."""
    loaded_size: int
    """The size of the version loaded."""
    loaded_points: int
    """The points of the version loaded: a prune would remove at most this many rows."""

    def __str__(self) -> str:
        what = "empty" if self.size == 0 else f"{self.size} of {self.loaded_size} bytes"
        return (
            f"{self.name}: now {what}, a prefix of the version loaded; held, its rows stay "
            f"(a prune would remove up to {self.loaded_points}). If the upload is still "
            f"running or failed, upload it whole; if the shrink is meant, run again with "
            f"--accept-shrink '{self.name}'"
        )


@dataclasses.dataclass(frozen=True)
class Busy:
    """A file another live worker holds."""

    name: str
    holder: Holder

    def __str__(self) -> str:
        return (
            f"{self.name}: claimed by {owner(self.holder.token)} "
            f"for {self.holder.expires_in:.0f} s more unless renewed"
        )


class ExtractStats:
    """What the units of work of an extractor did: its record of counts (files, batches,
    points and rejects as the ``extract`` stage), and the files held or busy."""

    def __init__(self, counts: Counts) -> None:
        self.counts = counts
        self.held: list[Held] = []
        """Files that shrank to a prefix of the version loaded, held instead of pruned."""
        self.holders: list[Busy] = []
        """Who holds the busy files (those whose holder was still there to ask)."""

    @property
    def files(self) -> int:
        """Files read and parsed."""
        return self.counts.get("files", stage="extract")

    @property
    def skipped(self) -> int:
        """Files found done once claimed (another worker finished them, or same content);
        files already done at listing time are left out by ``Extractor.pending``."""
        return self.counts.get("files_skipped")

    @property
    def busy(self) -> int:
        """Files claimed by another worker."""
        return self.counts.get("files_busy")

    @property
    def partial(self) -> int:
        """Files read without their cut-off last record (not final yet)."""
        return self.counts.get("files_partial")

    @property
    def pruned(self) -> int:
        """Files read again with other content, whose earlier version's leftovers are pruned."""
        return self.counts.get("files_pruned")

    @property
    def batches(self) -> int:
        """Point batches cut from the files read."""
        return self.counts.get("file_batches")

    @property
    def points(self) -> int:
        return self.counts.get("points", stage="extract")

    @property
    def rejects(self) -> collections.Counter[str]:
        """Parse rejects by reason."""
        return self.counts.by("reason", "rejects", stage="extract")


def next_version(previous: FileMark | None, now: float) -> int:
    """The version of a file read at ``now``: microseconds of the wall clock, and always
    after the versions started before (a clock set back does not reorder a file's versions)."""
    if previous is None:
        return int(now * 1_000_000)
    return max(int(now * 1_000_000), previous.version + 1, previous.unfinished + 1)


class FileWork:
    """One file's unit of work; see the module docstring. ``Extractor.take`` builds it."""

    def __init__(
        self,
        ref: FileRef,
        *,
        source: Source,
        ledger: FileLedger,
        config: ExtractConfig,
        stats: ExtractStats,
        clock: Clock,
    ) -> None:
        self.ref = ref
        self.status = "todo"
        """``todo`` (items to hand out), ``skipped``, ``busy`` or ``held``."""
        self.holder: Busy | None = None
        self.held: Held | None = None
        self._source, self._ledger, self._config = source, ledger, config
        self._stats, self._clock = stats, clock
        self._lease: Lease | None = None
        self._file: BinaryIO | None = None
        self._mark: FileMark | None = None
        self._previous: FileMark | None = None
        self._plan: _Plan | None = None
        self._revert: Revert | None = None

    # -- claim --------------------------------------------------------------------------

    def __enter__(self) -> FileWork:
        ref = self.ref
        lease = Lease.take(
            self._ledger, ref.key, self._config.lease_seconds, name=ref.name, clock=self._clock
        )
        if lease is None:
            holder = self._ledger.holder(ref.key)
            self.status = "busy"
            if holder is not None:
                self.holder = Busy(ref.name, holder)
                self._stats.holders.append(self.holder)
            log.info("file=%s is being processed by another worker", ref.name)
            self._stats.counts.add("files_busy")
            return self
        self._lease = lease.__enter__()
        try:
            self._decide()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._lease is not None:
            lease, self._lease = self._lease, None
            lease.__exit__(exc_type, exc, tb)

    # -- what the file needs ------------------------------------------------------------

    def _decide(self) -> None:
        """Read the done mark and the file's digest; set :attr:`status` and the plan."""
        ref = self.ref
        now = self._clock.wall()
        self._previous = previous = self._ledger.done([ref.key]).get(ref.key)
        forced = self._config.forced(ref)
        if forced:
            log.info("forced file=%s: redone whatever its done mark says", ref.name)
        elif self._config.is_done(previous, ref, now):
            self._skip()
            return
        self._file = file = self._source.open(ref)
        found = reading.digest(file, previous=previous, size_hint=ref.size)
        # An unfinished later version may have left rows: never "the same" or "only grown".
        dirty = previous is not None and previous.unfinished > 0
        same = previous is not None and previous.sha256 == found.sha256 and not dirty
        seen_since = previous.partial_since if same and previous is not None else None
        final = self._config.final(ref, seen_since, now)
        end = found.size if final else reading.tail_end(file, found.size)
        partial_since = None if end == found.size else seen_since or now
        unchanged = seen_since is None or partial_since is not None
        if same and not forced and previous is not None and unchanged:
            log.info("unchanged content file=%s", ref.name)
            self._ledger.mark_done(
                {
                    ref.key: dataclasses.replace(
                        previous, mtime=ref.mtime, size=found.size, etag=ref.etag
                    )
                }
            )
            self._skip()
            return
        if previous is not None and not same and self._shrunk(previous, found):
            if not self._config.accepts_shrink(ref):
                self.held = Held(ref.name, found.size, previous.size, previous.points)
                self.status = "held"
                if self.held not in self._stats.held:  # a poller sees it on every poll
                    self._stats.held.append(self.held)
                log.info("held file=%s", self.held)
                if dirty:  # the rows of the version cut short go; those of ``previous`` stay
                    self._revert = Revert(ref, next_version(previous, now), previous.version)
                return
            log.warning("file=%s shrank to a prefix of the version loaded: applied", ref.name)
        if partial_since is not None:
            log.info(
                "file=%s: its last record is cut off (%d bytes); read without it until "
                "the file is final (unchanged for %.0f s)",
                ref.name,
                found.size - end,
                self._config.final_seconds,
            )
            self._stats.counts.add("files_partial")
        grown = previous is not None and not same and not dirty and _grown(previous, found, file)
        version = next_version(previous, now)
        # The size read (not the one listed): what _grown compares with the next version.
        self._mark = FileMark(
            found.size,
            ref.mtime,
            found.sha256,
            partial_since,
            version,
            0,
            found.checkpoints,
            etag=ref.etag,
        )
        # By keys (in any order) unless the version only adds to the last one.
        prune = "version" if self._config.ordered else "none" if (same or grown) else "keys"
        if previous is not None and not same and not grown:
            self._stats.counts.add("files_pruned")
        self._plan = _Plan(end=end, version=version, prune=prune)

    def _shrunk(self, previous: FileMark, found: reading.Digest) -> bool:
        """Whether the file (``found``) is empty or a strict prefix of ``previous``."""
        if found.size >= previous.size:
            return False
        return found.size == 0 or bool(found.prefix_of_previous)

    def _skip(self) -> None:
        self.status = "skipped"
        self._stats.counts.add("files_skipped")

    # -- items --------------------------------------------------------------------------

    def items(self) -> Iterator[Item]:
        """The file's batches, then its prune (if any); the last one is marked ``last``.

        Stops early (with a WARNING) when the claim is lost: the file is left to the worker
        that took it.
        """
        if self._revert is not None:
            yield self._revert
            return
        if self._plan is None or self._file is None or self._mark is None:
            return
        plan, ref = self._plan, self.ref
        if self._previous is not None:  # until done, its rows may be in the warehouse
            started_mark = dataclasses.replace(self._previous, unfinished=plan.version)
            self._ledger.mark_done({ref.key: started_mark})
        started = time.perf_counter()
        self._file.seek(0)
        chunks = reading.pieces(self._file, reading.piece_bytes(self._config.batch_rows), plan.end)
        counted = _Counted(reading.parse_pieces(chunks, ref.name))
        batches = file_batches(
            counted,
            ref=ref,
            sha256=self._mark.sha256,
            version=plan.version,
            batch_rows=self._config.batch_rows,
            max_bytes=self._config.max_bytes,
        )
        kept: list[pl.DataFrame] = []
        held: PointBatch | None = None
        count = 0
        for item in batches:
            liveness.PROCESS.progressed()
            count += 1
            if plan.prune == "keys":
                kept.append(item.points.select("latitude", "longitude"))
            if held is not None:
                if not self._still_held():
                    return
                yield held
            held = item
        counted.record(self._stats.counts, ref.name, time.perf_counter() - started)
        self._stats.counts.add("file_batches", max(count, 1))
        self._mark = dataclasses.replace(self._mark, points=counted.points)
        if held is None:
            held = empty_batch(ref, sha256=self._mark.sha256, version=plan.version)
        if plan.prune == "none":
            if self._still_held():
                yield dataclasses.replace(held, last=True)
            return
        if not self._still_held():
            return
        yield held
        keys = None
        if plan.prune == "keys":
            keys = pl.concat(kept) if kept else held.points.select("latitude", "longitude")
        if self._still_held():
            yield Prune(ref, plan.version, keys)

    def _still_held(self) -> bool:
        """Whether the claim still holds (a WARNING when it does not)."""
        if self._lease is not None and not self._lease.lost:
            return True
        log.warning("stopped file=%s: its claim is lost", self.ref.name)
        return False

    def done(self, item: Item) -> None:
        """Say that ``item``'s effects are committed downstream; the final one marks the
        file done."""
        if isinstance(item, Revert) and self._previous is not None:
            undone = dataclasses.replace(self._previous, unfinished=0)
            self._ledger.mark_done({self.ref.key: undone})
        elif item.last and self._mark is not None:
            self._ledger.mark_done({self.ref.key: self._mark})
            log.debug("file=%s done version=%d", self.ref.name, self._mark.version)


@dataclasses.dataclass(frozen=True)
class _Plan:
    """How a file's items are made."""

    end: int
    """Bytes to read: the whole file, or up to its cut-off last record."""
    version: int
    prune: str
    """``version``, ``keys`` or ``none``: the prune that ends the items."""


class _Counted:
    """Parsed pieces passed through, counting points and rejects as they go."""

    def __init__(self, parsed: Iterable[tuple[int, parse.Parsed]]) -> None:
        self._parsed = parsed
        self.points = 0
        self.reasons: collections.Counter[str] = collections.Counter()

    def __iter__(self) -> Iterator[tuple[int, parse.Parsed]]:
        for size, part in self._parsed:
            self.points += part.points.height
            self.reasons.update(part.rejects.get_column("reason").to_list())
            yield size, part

    def record(self, counts: Counts, name: str, seconds: float) -> None:
        """Count the file parsed in ``counts``, and log what its count says."""
        file = counts.child()
        file.add("files", stage="extract")
        file.add("points", self.points, stage="extract")
        for reason, n in self.reasons.items():
            file.add("rejects", n, stage="extract", reason=reason)
        points, reasons = file.get("points"), file.by("reason", "rejects")
        rejects = sum(reasons.values())
        if rejects:
            log.warning(
                "rejects file=%s count=%d reasons=%s",
                name,
                rejects,
                ",".join(f"{reason}:{n}" for reason, n in reasons.most_common()),
            )
        log.info(
            "parsed file=%s points=%d rejects=%d seconds=%.3f",
            name,
            points,
            rejects,
            seconds,
            extra={"stage": "extract", "file": name, "rows": points, "seconds": seconds},
        )


def _grown(previous: FileMark, found: reading.Digest, file: BinaryIO) -> bool:
    """Whether the file (``found``, open as ``file``) only appends to the version ``previous``
    describes, and every record loaded from that version stands unchanged in it: the version
    was read without its cut-off tail, or had none. Then nothing of it needs pruning."""
    if previous.size > found.size or found.prefix_sha256 != previous.sha256:
        return False
    return previous.partial_since is not None or reading.tail_end(file, previous.size) == (
        previous.size
    )
