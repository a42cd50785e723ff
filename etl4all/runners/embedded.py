"""Embedded driver (``etl4all run``): the three stages inline, in one process.

For every batch of :class:`~etl4all.stages.extract.Extractor`: keep its parse rejects,
geocode it, load it, apply its prune if it carries one (a file that changed after it was
loaded), then commit it (the last batch of a file marks the file done). A failure
stops the run with the file unfinished; the next run redoes it, and its effects are idempotent.
"""

from __future__ import annotations

import collections
import dataclasses
import time
from collections.abc import Iterable
from contextlib import ExitStack
from typing import Protocol

import polars as pl

from etl4all import frames
from etl4all.geocoders.base import Geocoder
from etl4all.lookup.base import Lookup
from etl4all.runners import wiring
from etl4all.settings import Settings
from etl4all.sources.base import FileRef
from etl4all.stages.extract import Extractor, ExtractStats, PointBatch
from etl4all.stages.load import load_frame
from etl4all.stages.polling import check_forced
from etl4all.stages.prune import prune_file
from etl4all.stages.transform import (
    CallBudget,
    GeocodeStats,
    TransformConfig,
    distinct_keys,
    geocode_frame,
)
from etl4all.state.base import GeocodeCache
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
    pruned: int = 0
    distinct: int = 0
    """Distinct coordinates (warehouse keys) among the run's points."""
    repeats: int = 0
    """Points whose coordinate an earlier point of the run already had."""
    reloaded: int = 0
    """Coordinates loaded again because an earlier batch of the run had them (the load
    counts them as unchanged)."""
    """Address rows deleted: their file changed and no longer holds them."""
    points: int = 0
    rejects: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    geocode: GeocodeStats = dataclasses.field(default_factory=GeocodeStats)
    load: LoadResult = dataclasses.field(default_factory=LoadResult)
    seconds: float = 0.0

    def add(self, extracted: ExtractStats) -> None:
        """Add an extractor's file counts (its rejects are counted as they are kept)."""
        self.processed += extracted.files
        self.skipped += extracted.skipped
        self.busy += extracted.busy
        self.partial += extracted.partial
        self.points += extracted.points

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
    urls: Iterable[str], settings: Settings, *, progress: RunProgress | None = None
) -> RunSummary:
    """Process every file of ``urls`` not done yet, and those forced (``settings.force``,
    ``settings.force_files``) whatever their done marks say.

    Args:
        progress: told what happens, for a progress bar.

    Raises:
        ConfigError: a ``force_files`` glob matches no listed file (nothing was processed).
        Etl4allError: a source, geocoder, state or warehouse failure, or the ``--max-calls``
            budget, stopped the run; the current file is not marked done.
    """
    started = time.perf_counter()
    summary = RunSummary()
    with ExitStack() as stack:
        store = stack.enter_context(wiring.open_state(settings))
        config = wiring.extract_config(settings)
        work: list[tuple[Extractor, list[FileRef]]] = []
        every: list[FileRef] = []
        for url in urls:
            source = stack.enter_context(wiring.open_source(url, settings))
            extractor = Extractor(source=source, ledger=store, config=config)
            listed = extractor.listing()
            todo = extractor.pending(listed)
            summary.files += len(listed)
            summary.skipped += len(listed) - len(todo)
            work.append((extractor, todo))
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
            progress=progress,
        )
        if progress:
            progress.files([ref for _, refs in work for ref in refs])
        try:
            for extractor, refs in work:
                for ref in refs:
                    job.file(extractor, ref)
                    if progress:
                        progress.file(ref)
        finally:
            for extractor, _ in work:
                summary.add(extractor.stats)
    summary.seconds = time.perf_counter() - started
    return summary


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
    progress: RunProgress | None = None
    seen: pl.DataFrame = dataclasses.field(default_factory=lambda: frames.empty(_KEYS))
    """Every coordinate of this run so far, as warehouse keys: tells repeats apart."""

    def file(self, extractor: Extractor, ref: FileRef) -> None:
        """Extract, transform and load one file, batch after batch; a batch that fails
        leaves nothing in the warehouse (its paid answers stay cached)."""
        for batch in extractor.batches([ref]):
            on_answers = self.progress.answers if self.progress else None
            result = geocode_frame(
                batch.points, self.geocoder, self.store, self.config, self.budget, on_answers
            )
            self.summary.geocode += result.stats
            self.count_repeats(batch.points)
            self.keep_rejects(batch.rejects)
            self.keep_rejects(result.rejects)
            self.summary.load += load_frame(result.addresses, self.wh, self.keys)
            if batch.prune is not None:
                rows, _ = prune_file(batch.prune, self.wh, max_rows=extractor.config.batch_rows)
                self.summary.pruned += rows
            batch.commit()
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

    def keep_rejects(self, rejects: pl.DataFrame) -> None:
        """Count rejects by reason and keep them in the warehouse's ``reject`` table."""
        if rejects.height:
            self.summary.rejects.update(rejects.get_column("reason").to_list())
            self.wh.load_rejects(rejects)
