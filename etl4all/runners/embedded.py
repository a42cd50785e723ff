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
import time
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from typing import Protocol

import polars as pl

from etl4all import frames
from etl4all.geocoders.base import Geocoder
from etl4all.lookup.base import Lookup
from etl4all.runners import wiring
from etl4all.settings import Settings
from etl4all.sources.base import FileRef
from etl4all.stages.batching import PointBatch
from etl4all.stages.extract import Extractor
from etl4all.stages.filework import Busy, ExtractStats, Held
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

_KEYS: dict[str, pl.DataType] = {"lat_key": pl.Int64(), "lon_key": pl.Int64()}


@dataclasses.dataclass
class RunSummary:
    """What a run did, for the final report."""

    files: int = 0
    """Files listed."""
    processed: int = 0
    skipped: int = 0
    busy: int = 0
    partial: int = 0
    """Files read without their cut-off last record (not final yet)."""
    distinct: int = 0
    """Distinct coordinates (warehouse keys) among the run's points."""
    repeats: int = 0
    """Points whose coordinate an earlier point of the run already had."""
    reloaded: int = 0
    """Coordinates loaded again because an earlier batch of the run had them (the load
    counts them as unchanged)."""
    pruned: int = 0
    """Address rows deleted: no file holds their coordinate any more."""
    held: list[Held] = dataclasses.field(default_factory=list)
    """Files that shrank to a prefix of the version loaded: held, their rows kept."""
    busy_files: list[Busy] = dataclasses.field(default_factory=list)
    """Files still claimed by another live worker when the run gave up waiting."""
    points: int = 0
    unreadable: int = 0
    """Records read that could not be parsed (one parse reject each)."""
    rejects: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    """Rejects by reason: the unreadable records' and the points' no geocoder answered."""
    geocode: GeocodeStats = dataclasses.field(default_factory=GeocodeStats)
    load: LoadResult = dataclasses.field(default_factory=LoadResult)
    seconds: float = 0.0

    def add(self, extracted: ExtractStats) -> None:
        """Add an extractor's file counts (its rejects are counted as they are kept)."""
        self.processed += extracted.files
        self.skipped += extracted.skipped
        self.partial += extracted.partial
        self.points += extracted.points
        self.unreadable += sum(extracted.rejects.values())
        self.held += extracted.held

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
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> RunSummary:
    """Process every file of ``urls`` not done yet, and those forced (``settings.force``,
    ``settings.force_files``) whatever their done marks say.

    Args:
        progress: told what happens, for a progress bar.
        sleep, clock: how the run waits for files another worker holds (tests pass their own).

    Raises:
        ConfigError: a ``force_files`` glob matches no listed file (nothing was processed).
        Etl4allError: a source, geocoder, state or warehouse failure, or the ``--max-calls``
            budget, stopped the run; the current file is not marked done.
    """
    started = time.perf_counter()
    summary = RunSummary()
    with ExitStack() as stack:
        store = stack.enter_context(wiring.open_state(settings))
        config = wiring.extract_config(settings, ordered=True)
        work: list[tuple[Extractor, FileRef]] = []
        every: list[FileRef] = []
        extractors: list[Extractor] = []
        for url in urls:
            source = stack.enter_context(wiring.open_source(url, settings))
            extractor = Extractor(source=source, ledger=store, config=config)
            extractors.append(extractor)
            listed = extractor.listing()
            todo = extractor.pending(listed)
            summary.files += len(listed)
            summary.skipped += len(listed) - len(todo)
            work += [(extractor, ref) for ref in todo]
            every += listed
        check_forced(config.force_files, every)
        wh = stack.enter_context(wiring.open_warehouse(settings))
        job = _Job(
            geocoder=stack.enter_context(wiring.open_geocoder(settings)),
            wh=wh,
            keys=stack.enter_context(wiring.open_lookup(settings, wh)),
            store=store,
            config=wiring.transform_config(settings),
            budget=CallBudget(settings.max_calls),
            summary=summary,
            batch_rows=settings.batch_rows,
            progress=progress,
        )
        if progress:
            progress.files([ref for _, ref in work])
        try:
            busy = [(ex, ref) for ex, ref in work if job.file(ex, ref) is not None]
            deadline = clock() + settings.claim_wait
            while busy and clock() < deadline:
                sleep(min(_CLAIM_POLL_SECONDS, max(deadline - clock(), 0.0)))
                busy = [(ex, ref) for ex, ref in busy if job.file(ex, ref) is not None]
            summary.busy_files = [job.file(ex, ref) or Busy(ref.name, _GONE) for ex, ref in busy]
            summary.busy = len(summary.busy_files)
        finally:
            for extractor in extractors:
                summary.add(extractor.stats)
    summary.seconds = time.perf_counter() - started
    return summary


_CLAIM_POLL_SECONDS = 1.0
"""How often a run looks again at files another worker holds."""
_GONE = Holder("?", 0.0)
"""The holder of a busy file whose claim ended while it was looked at again."""


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
    progress: RunProgress | None = None
    seen: pl.DataFrame = dataclasses.field(default_factory=lambda: frames.empty(_KEYS))
    """Every coordinate of this run so far, as warehouse keys: tells repeats apart."""

    def file(self, extractor: Extractor, ref: FileRef) -> Busy | None:
        """Extract, transform and load one file, item after item; who holds it when another
        live worker does (nothing was done). A batch that fails leaves nothing in the
        warehouse (its paid answers stay cached)."""
        with extractor.take(ref) as work:
            if work.status == "busy":
                return work.holder or Busy(ref.name, _GONE)
            for item in work.items():
                if isinstance(item, PointBatch):
                    self.batch(item)
                else:
                    for part in prune_items(item, max_rows=self.batch_rows):
                        self.summary.pruned += apply(part, self.wh, self.keys).pruned
                work.done(item)
        if self.progress:
            self.progress.file(ref)
        return None

    def batch(self, batch: PointBatch) -> None:
        """Keep the batch's parse rejects, geocode its points and load them."""
        on_answers = self.progress.answers if self.progress else None
        result = geocode_frame(
            batch.points, self.geocoder, self.store, self.config, self.budget, on_answers, self.wh
        )
        self.summary.geocode += result.stats
        self.count_repeats(batch.points)
        self.keep_rejects(pl.concat([batch.rejects, result.rejects]), batch.version)
        applied = apply(Addresses(result.addresses, batch.version), self.wh, self.keys)
        self.summary.load += applied.load
        if self.progress:
            self.progress.batch(batch)

    def count_repeats(self, points: pl.DataFrame) -> None:
        """Count the run's distinct coordinates, and the points that repeat an earlier one."""
        keys = distinct_keys(points, frames.KEY_DECIMALS)
        new = keys.join(self.seen, on=list(_KEYS), how="anti")
        self.summary.distinct += new.height
        self.summary.repeats += points.height - new.height
        self.summary.reloaded += keys.height - new.height
        self.seen = pl.concat([self.seen, new])

    def keep_rejects(self, rejects: pl.DataFrame, version: int) -> None:
        """Count rejects by reason and keep them in the warehouse's ``reject`` table."""
        if rejects.height:
            self.summary.rejects.update(rejects.get_column("reason").to_list())
            apply(Rejects(rejects, version), self.wh, self.keys)
