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
from collections.abc import Callable, Iterable
from contextlib import ExitStack

import polars as pl

from etl4all.geocoders.base import Geocoder
from etl4all.lookup.base import Lookup
from etl4all.runners import wiring
from etl4all.settings import Settings
from etl4all.sources.base import FileRef
from etl4all.stages.extract import Extractor, ExtractStats, check_forced
from etl4all.stages.load import load_frame
from etl4all.stages.prune import prune_file
from etl4all.stages.transform import CallBudget, GeocodeStats, TransformConfig, geocode_frame
from etl4all.state.base import GeocodeCache
from etl4all.warehouse.base import LoadResult, Warehouse


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


def run(
    urls: Iterable[str],
    settings: Settings,
    *,
    on_start: Callable[[list[FileRef]], None] | None = None,
    on_file: Callable[[FileRef], None] | None = None,
) -> RunSummary:
    """Process every file of ``urls`` not done yet, and those forced (``settings.force``,
    ``settings.force_files``) whatever their done marks say.

    Args:
        on_start: told which files will be processed (for a progress bar).
        on_file: told when each of them is finished or skipped.

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
        )
        if on_start:
            on_start([ref for _, refs in work for ref in refs])
        try:
            for extractor, refs in work:
                for ref in refs:
                    job.file(extractor, ref)
                    if on_file:
                        on_file(ref)
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

    def file(self, extractor: Extractor, ref: FileRef) -> None:
        """Extract, transform and load one file, batch after batch; a batch that fails
        leaves nothing in the warehouse (its paid answers stay cached)."""
        for batch in extractor.batches([ref]):
            result = geocode_frame(
                batch.points, self.geocoder, self.store, self.config, self.budget
            )
            self.summary.geocode += result.stats
            self.keep_rejects(batch.rejects)
            self.keep_rejects(result.rejects)
            self.summary.load += load_frame(result.addresses, self.wh, self.keys)
            if batch.prune is not None:
                rows, _ = prune_file(batch.prune, self.wh, max_rows=extractor.config.batch_rows)
                self.summary.pruned += rows
            batch.commit()

    def keep_rejects(self, rejects: pl.DataFrame) -> None:
        """Count rejects by reason and keep them in the warehouse's ``reject`` table."""
        if rejects.height:
            self.summary.rejects.update(rejects.get_column("reason").to_list())
            self.wh.load_rejects(rejects)
