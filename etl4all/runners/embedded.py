"""Embedded driver (``etl4all run``): the three stages inline, in one process.

Every file is taken as a unit of work (:mod:`etl4all.stages.filework`); each of its items is
applied in order: a batch's parse rejects are kept, its points geocoded and loaded; the prune
that ends a file version drops what only its older versions held. Each item is marked done
once committed (the final one marks the file done). A failure stops the run with the file
unfinished; the next run redoes it, and its effects are idempotent.

Files another live worker holds are waited for, up to ``claim_wait`` seconds, then reported
(:attr:`RunSummary.busy_files`); files that shrank to a prefix of the version loaded are held
(:attr:`RunSummary.held`). The command exits non-zero for both.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import time
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from typing import Protocol

import polars as pl
import tenacity

from etl4all import frames, retry
from etl4all.clock import REAL, Clock
from etl4all.counts import PROCESS, Counts
from etl4all.errors import Etl4allError
from etl4all.geocoders.base import Geocoder, RateReport
from etl4all.lookup.base import Lookup
from etl4all.runners import wiring
from etl4all.settings import Settings
from etl4all.sources.base import FileRef
from etl4all.stages.batching import PointBatch
from etl4all.stages.extract import Extractor
from etl4all.stages.filework import Busy, Held
from etl4all.stages.load import Addresses, Rejects, apply, prune_items
from etl4all.stages.polling import check_forced
from etl4all.stages.transform import (
    CallBudget,
    GeocodeStats,
    TransformConfig,
    distinct_keys,
    geocode_frame,
)
from etl4all.state.base import GeocodeCache, Holder
from etl4all.warehouse.base import LoadResult, Warehouse

log = logging.getLogger(__name__)


@dataclasses.dataclass
class RunSummary:
    """What a run did, for the final report: the run's record of counts, and the files and
    batches left for later."""

    counts: Counts = dataclasses.field(default_factory=PROCESS.child)
    """Every event of the run, counted where it happened (its files', batches' and rows')."""
    held: list[Held] = dataclasses.field(default_factory=list)
    """Files that shrank to a prefix of the version loaded: held, their rows kept."""
    busy_files: list[Busy] = dataclasses.field(default_factory=list)
    """Files still claimed by another live worker when the run gave up waiting."""
    set_aside: list[SetAside] = dataclasses.field(default_factory=list)
    """Batches that failed every try: their files are not done (a rerun finishes them)."""
    rate: RateReport | None = None
    """The API's adaptive request rate after the last batch (None: no API call)."""
    seconds: float = 0.0
    """Wall-clock seconds of the run."""

    @property
    def files(self) -> int:
        """Files listed."""
        return self.counts.get("files_listed")

    @property
    def processed(self) -> int:
        """Files read and parsed."""
        return self.counts.get("files", stage="extract")

    @property
    def skipped(self) -> int:
        """Files found done, when listed or once claimed."""
        return self.counts.get("files_skipped")

    @property
    def busy(self) -> int:
        """Files left to another live worker (:attr:`busy_files`)."""
        return len(self.busy_files)

    @property
    def partial(self) -> int:
        """Files read without their cut-off last record (not final yet)."""
        return self.counts.get("files_partial")

    @property
    def distinct(self) -> int:
        """Distinct coordinates (warehouse keys) among the run's points."""
        return self.counts.get("distinct_coordinates")

    @property
    def repeats(self) -> int:
        """Points whose coordinate an earlier point of the run already had."""
        return self.counts.get("repeats")

    @property
    def reloaded(self) -> int:
        """Coordinates loaded again because an earlier batch of the run had them (the load
        counts them as unchanged)."""
        return self.counts.get("reloaded")

    @property
    def pruned(self) -> int:
        """Address rows deleted: no file holds their coordinate any more."""
        return self.counts.get("rows_pruned")

    @property
    def points(self) -> int:
        """Points read from the files (parse rejects not included)."""
        return self.counts.get("points", stage="extract")

    @property
    def unreadable(self) -> int:
        """Records read that could not be parsed (one parse reject each)."""
        return self.counts.get("rejects", stage="extract")

    @property
    def rejects(self) -> collections.Counter[str]:
        """Rejects by reason: the unreadable records' and the points' no geocoder answered."""
        return self.counts.by("reason", "rejects")

    @property
    def geocode(self) -> GeocodeStats:
        """What geocoding did: cache hits, calls, answers and failures."""
        return GeocodeStats.read(self.counts, self.rate)

    @property
    def load(self) -> LoadResult:
        """What the warehouse did with the run's rows."""
        kinds = self.counts.by("kind", "rows")
        return LoadResult(
            kinds["inserted"], kinds["updated"], kinds["unchanged"], self.counts.get("rows_stale")
        )

    @property
    def records(self) -> int:
        """Records read: each one is a point or a parse reject."""
        return self.points + self.unreadable

    @property
    def reject_rate(self) -> float:
        """The share of the records read that were rejected (parsing or geocoding them)."""
        return sum(self.rejects.values()) / self.records if self.records else 0.0

    @property
    def points_per_second(self) -> float:
        """Points processed per second of wall time."""
        return self.points / self.seconds if self.seconds else 0.0


class RunProgress(Protocol):
    """What a run tells a progress display, as it happens."""

    def files(self, refs: list[FileRef]) -> None:
        """The files the run is going to process."""

    def geocoding(self, batch: PointBatch) -> None:
        """``batch`` is being geocoded (its answers come next)."""

    def batch(self, batch: PointBatch) -> None:
        """``batch`` is loaded and committed."""

    def answers(self, count: int) -> None:
        """The geocoder answered ``count`` more coordinates (at least 4 times a second)."""

    def file(self, ref: FileRef) -> None:
        """``ref`` is finished (or was found done by another worker)."""


def run(
    urls: Iterable[str],
    settings: Settings,
    *,
    progress: RunProgress | None = None,
    summary: RunSummary | None = None,
    clock: Clock = REAL,
) -> RunSummary:
    """Process every file of ``urls`` not done yet, and those forced (``settings.force``,
    ``settings.force_files``) whatever their done marks say.

    A batch whose fault is temporary is tried :data:`BATCH_ATTEMPTS` times (its paid answers
    are cached as they come: a retry asks only for the rest), then set aside
    (:attr:`RunSummary.set_aside`): nothing of it is committed and its file is not done, while
    the other batches and files go on; :data:`FAILED_IN_A_ROW` batches set aside in a row stop
    the run (the fault is not one coordinate's).

    Args:
        progress: told what happens, for a progress bar.
        summary: filled as the run goes (given, it keeps what was done when the run fails).
        clock: how the run waits for files another worker holds and between tries of a
            batch, and the extractors' clock (tests pass a virtual one).

    Raises:
        ConfigError: a ``force_files`` glob matches no listed file (nothing was processed).
        Etl4allError: a geocoder refusal, the ``--max-calls`` budget, a fault that lasted
            :data:`FAILED_IN_A_ROW` batches, or a failure outside a batch stopped the run; the
            current file is not marked done.
    """
    started = time.perf_counter()
    summary = RunSummary() if summary is None else summary
    try:
        _run(urls, settings, progress, summary, clock)
    finally:
        summary.seconds = time.perf_counter() - started
    return summary


def _run(
    urls: Iterable[str],
    settings: Settings,
    progress: RunProgress | None,
    summary: RunSummary,
    clock: Clock,
) -> None:
    """The body of :func:`run`."""
    with ExitStack() as stack:
        store = stack.enter_context(wiring.open_state(settings))
        config = wiring.extract_config(settings, ordered=True)
        work: list[tuple[Extractor, FileRef]] = []
        every: list[FileRef] = []
        extractors: list[Extractor] = []
        for url in urls:
            source = stack.enter_context(wiring.open_source(url, settings))
            extractor = Extractor(
                source=source, ledger=store, config=config, clock=clock, counts=summary.counts
            )
            extractors.append(extractor)
            listed = extractor.listing()
            todo = extractor.pending(listed)
            summary.counts.add("files_listed", len(listed))
            summary.counts.add("files_skipped", len(listed) - len(todo))
            work += [(extractor, ref) for ref in todo]
            every += listed
        check_forced(config.force_files, every)
        wh = stack.enter_context(wiring.open_warehouse(settings))
        quota = stack.enter_context(wiring.open_quota(settings))
        job = _Job(
            geocoder=stack.enter_context(wiring.open_geocoder(settings, quota)),
            wh=wh,
            keys=stack.enter_context(wiring.open_lookup(settings, wh)),
            store=store,
            config=wiring.transform_config(settings),
            budget=CallBudget(settings.max_calls),
            summary=summary,
            batch_rows=settings.batch_rows,
            sleep=clock.sleep,
            progress=progress,
        )
        if progress:
            progress.files([ref for _, ref in work])
        try:
            busy = job.files(work)
            deadline = clock.monotonic() + settings.claim_wait
            while busy and clock.monotonic() < deadline:
                clock.sleep(min(_CLAIM_POLL_SECONDS, max(deadline - clock.monotonic(), 0.0)))
                busy = job.files([(ex, ref) for ex, ref, _ in busy])
            summary.busy_files = [holder for _, _, holder in busy]
        finally:
            for extractor in extractors:
                summary.held += extractor.stats.held


BATCH_ATTEMPTS = 3
"""Tries of a batch whose fault is temporary before it is set aside."""
FAILED_IN_A_ROW = 3
"""Batches set aside in a row after which the run stops."""
_CLAIM_POLL_SECONDS = 1.0
"""How often a run looks again at files another worker holds."""
_GONE = Holder("?", 0.0)
"""The holder of a busy file whose claim ended while it was looked at again."""


@dataclasses.dataclass(frozen=True)
class SetAside:
    """A batch that failed every try: nothing of it is committed, its file is not done."""

    name: str
    index: int
    reason: str

    def __str__(self) -> str:
        return f"{self.name} batch {self.index}: {self.reason}"


@dataclasses.dataclass
class _Job:
    """The open backends of one run, and what it did so far."""

    geocoder: Geocoder
    wh: Warehouse
    keys: Lookup
    store: GeocodeCache
    config: TransformConfig
    budget: CallBudget
    summary: RunSummary
    batch_rows: int
    sleep: Callable[[float], None]
    progress: RunProgress | None = None
    failed_in_a_row: int = 0
    seen: pl.Series = dataclasses.field(default_factory=lambda: pl.Series("seen", [], pl.UInt64))
    """A 64-bit hash of every coordinate of this run so far (8 bytes each, one chunk): tells
    repeats apart. Two coordinates sharing a hash would count as one: about one chance in
    ten million for a run of ten million coordinates."""

    def files(self, work: list[tuple[Extractor, FileRef]]) -> list[tuple[Extractor, FileRef, Busy]]:
        """Process the files of ``work`` in turn; those another live worker holds, with who."""
        busy = []
        for extractor, ref in work:
            holder = self.file(extractor, ref)
            if holder is not None:
                busy.append((extractor, ref, holder))
        return busy

    def file(self, extractor: Extractor, ref: FileRef) -> Busy | None:
        """Extract, transform and load one file, item after item; who holds it when another
        live worker does (nothing was done). A batch that fails leaves nothing in the
        warehouse (its paid answers stay cached); one set aside leaves the file not done."""
        with extractor.take(ref) as work:
            if work.status == "busy":
                return work.holder or Busy(ref.name, _GONE)
            complete = True
            for item in work.items():
                if isinstance(item, PointBatch):
                    if not self.tried(item):
                        complete = False
                        continue
                elif not complete:
                    break  # a prune by version needs every batch: the rerun redoes the file
                else:
                    for part in prune_items(item, max_rows=self.batch_rows):
                        apply(part, self.wh, self.keys, self.summary.counts)
                work.done(item)
        if self.progress:
            self.progress.file(ref)
        return None

    def tried(self, batch: PointBatch) -> bool:
        """Whether ``batch`` was loaded, tried up to :data:`BATCH_ATTEMPTS` times; set aside
        when its fault is temporary and lasts.

        Raises:
            Etl4allError: a fault that is not temporary, or the :data:`FAILED_IN_A_ROW`-th
                batch set aside in a row.
        """
        retrier = retry.retrying(
            attempts=BATCH_ATTEMPTS, sleep=self.sleep, before_sleep=_log_batch_retry
        )
        try:
            retrier(self.batch, batch)
        except Etl4allError as error:
            if not error.retryable:
                raise
            self.failed_in_a_row += 1
            if self.failed_in_a_row >= FAILED_IN_A_ROW:
                raise
            aside = SetAside(batch.source, batch.index, str(error))
            log.warning("set aside %s", aside)
            self.summary.set_aside.append(aside)
            return False
        self.failed_in_a_row = 0
        return True

    def batch(self, batch: PointBatch) -> None:
        """Keep the batch's parse rejects, geocode its points and load them."""
        if self.progress:
            self.progress.geocoding(batch)
        on_answers = self.progress.answers if self.progress else None
        counts = self.summary.counts
        result = geocode_frame(
            batch.points,
            self.geocoder,
            self.store,
            self.config,
            self.budget,
            on_answers,
            self.wh,
            counts,
        )
        self.summary.rate = result.stats.rate or self.summary.rate
        self.count_repeats(batch.points)
        rejects = pl.concat([batch.rejects, result.rejects])
        if rejects.height:
            apply(Rejects(rejects, batch.version), self.wh, self.keys, counts)
        apply(Addresses(result.addresses, batch.version), self.wh, self.keys, counts)
        if self.progress:
            self.progress.batch(batch)

    def count_repeats(self, points: pl.DataFrame) -> None:
        """Count the run's distinct coordinates, and the points that repeat an earlier one."""
        keys = distinct_keys(points, frames.KEY_DECIMALS)
        hashes = keys.select(pl.struct(keys.columns).hash(seed=0)).to_series()
        new = hashes.filter(~hashes.is_in(self.seen.implode()))
        self.summary.counts.add("distinct_coordinates", new.len())
        self.summary.counts.add("repeats", points.height - new.len())
        self.summary.counts.add("reloaded", keys.height - new.len())
        self.seen = pl.concat([self.seen, new.rename("seen")], rechunk=True)


def _log_batch_retry(state: tenacity.RetryCallState) -> None:
    """One WARNING per failed try of a batch, saying when the next one is."""
    error = state.outcome.exception() if state.outcome is not None else None
    log.warning(
        "batch failed (try %d of %d): %s; trying again in %.1f s",
        state.attempt_number,
        BATCH_ATTEMPTS,
        error,
        state.upcoming_sleep,
    )
