"""Embedded mode: the three stages in one process, for ``etl4all run``.

Files are read from local folders or FTP, each file is parsed, split into batches of at most
``batch_rows`` points, geocoded and loaded; a file is marked done only after all of its
batches are committed, so an interrupted run simply redoes the unfinished file.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import time
from collections.abc import Callable, Iterable
from contextlib import ExitStack

import polars as pl

from etl4all import lookup, state, warehouse
from etl4all.errors import BudgetExceededError
from etl4all.estimate import estimate
from etl4all.geocoders.base import Geocoder
from etl4all.runners import wiring
from etl4all.settings import Settings
from etl4all.sources.base import FileRef, Source
from etl4all.stages.extract import (
    claimed,
    done_mark,
    extract_file,
    for_warehouse,
    pending,
    unchanged_since,
)
from etl4all.stages.load import load_frame
from etl4all.stages.transform import GeocodeStats, geocode_frame
from etl4all.warehouse.base import LoadResult

log = logging.getLogger(__name__)

Progress = Callable[[FileRef], None]
"""Called after each file is finished (or skipped while running)."""


@dataclasses.dataclass
class RunSummary:
    """What a run did, for the final report."""

    files: int = 0
    processed: int = 0
    skipped: int = 0
    busy: int = 0
    points: int = 0
    rejects: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    geocode: GeocodeStats = dataclasses.field(default_factory=GeocodeStats)
    load: LoadResult = dataclasses.field(default_factory=LoadResult)
    seconds: float = 0.0

    @property
    def points_per_second(self) -> float:
        """Points processed per second of wall time."""
        return self.points / self.seconds if self.seconds else 0.0


def list_sources(
    urls: Iterable[str], settings: Settings, stack: ExitStack
) -> list[tuple[Source, FileRef]]:
    """Open every source (closed with ``stack``) and list its files."""
    listed: list[tuple[Source, FileRef]] = []
    for url in urls:
        source = stack.enter_context(wiring.open_source(url, settings))
        refs = for_warehouse(source.list_files(), settings.warehouse_url)
        listed.extend((source, ref) for ref in refs)
    return listed


def run(
    urls: Iterable[str],
    settings: Settings,
    *,
    on_start: Callable[[list[FileRef]], None] | None = None,
    on_file: Progress | None = None,
) -> RunSummary:
    """Process every file of ``urls`` not done yet.

    Args:
        on_start: told which files will be processed (for a progress bar).
        on_file: told when each of them is finished.

    Raises:
        Etl4allError: a source, geocoder, state or warehouse failure that stops the run.
    """
    started = time.perf_counter()
    summary = RunSummary()
    with ExitStack() as stack:
        store = stack.enter_context(wiring.open_state(settings))
        listed = list_sources(urls, settings, stack)
        todo = pending([ref for _, ref in listed], store)
        summary.files, summary.skipped = len(listed), len(listed) - len(todo)
        if summary.skipped:
            log.info("skipping %d files already done", summary.skipped)
        wh = stack.enter_context(wiring.open_warehouse(settings))
        job = _Job(
            settings=settings,
            store=store,
            geocoder=stack.enter_context(wiring.open_geocoder(settings)),
            wh=wh,
            keys=stack.enter_context(wiring.open_lookup(settings, wh)),
            summary=summary,
            remaining=settings.max_calls,
        )
        source_of = {ref.key: source for source, ref in listed}
        if on_start:
            on_start(todo)
        if job.remaining is not None and job.geocoder.paid:
            _check_budget([(source_of[ref.key], ref) for ref in todo], store, settings)
        for ref in todo:
            with claimed(store, ref, settings.lease_seconds) as token:
                if token is None:
                    log.info("file=%s is being processed by another worker", ref.name)
                    summary.busy += 1
                elif unchanged_since(previous := done_mark(store, ref), ref):
                    summary.skipped += 1
                else:
                    job.process(source_of[ref.key], ref, previous)
            if on_file:
                on_file(ref)
    summary.seconds = time.perf_counter() - started
    return summary


def _check_budget(
    files: list[tuple[Source, FileRef]], store: state.base.State, settings: Settings
) -> None:
    """Refuse to start when the files need more API calls than ``--max-calls``."""
    needed = estimate(files, store, settings, paid=True)
    if settings.max_calls is not None and needed.calls > settings.max_calls:
        raise BudgetExceededError(
            f"these {needed.files} files need {needed.calls} {settings.geocoder} API calls "
            f"(~{needed.cost:.2f} USD) but --max-calls is {settings.max_calls}; "
            "nothing was geocoded"
        )


@dataclasses.dataclass
class _Job:
    """The open backends of one run, and what it did so far."""

    settings: Settings
    store: state.base.State
    geocoder: Geocoder
    wh: warehouse.base.Warehouse
    keys: lookup.base.Lookup
    summary: RunSummary
    remaining: int | None
    """API calls the --max-calls budget still allows (None: no budget)."""

    def process(self, source: Source, ref: FileRef, previous: state.base.FileMark | None) -> None:
        """Extract, transform and load one file in batches, then mark it done."""
        summary = self.summary
        extracted = extract_file(source, ref, previous)
        if extracted.unchanged:
            summary.skipped += 1
        else:
            summary.processed += 1
            summary.points += extracted.points.height
            self.record_rejects(extracted.rejects)
            for batch in extracted.points.iter_slices(self.settings.batch_rows):
                result = geocode_frame(
                    batch, self.geocoder, self.store, self.settings, max_calls=self.remaining
                )
                if self.remaining is not None:
                    self.remaining -= result.stats.distinct - result.stats.cache_hits
                summary.geocode += result.stats
                self.record_rejects(result.rejects)
                summary.load += load_frame(result.addresses, self.wh, self.keys)
        self.store.mark_done({ref.key: extracted.mark})

    def record_rejects(self, rejects: pl.DataFrame) -> None:
        """Count rejects by reason and keep them in the warehouse's ``reject`` table."""
        self.summary.rejects.update(rejects.get_column("reason").to_list())
        self.wh.load_rejects(rejects)
