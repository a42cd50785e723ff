"""Services mode: the stage functions wired to a broker, for ``etl4all run-stage``.

- extract polls the source, waits until a file has settled, claims it, parses it and
  publishes its points in chunks (each confirmed by the broker); the file is marked done only
  after all of its chunks are confirmed.
- transform consumes point batches, geocodes them (dedup → cache → API) and publishes the
  address batch before its input is acked.
- load consumes address batches and commits them to the warehouse before acking.

Every worker is stateless: run as many replicas of each as the load needs.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from contextlib import ExitStack
from typing import Any

import polars as pl

from etl4all import batch
from etl4all.broker import queues
from etl4all.broker.base import Broker
from etl4all.errors import ConfigError
from etl4all.runners import wiring
from etl4all.settings import Settings
from etl4all.sources.base import FileRef, Source
from etl4all.sources.settle import by_key, settled
from etl4all.stages.extract import (
    claimed,
    done_mark,
    extract_file,
    for_warehouse,
    pending,
    unchanged_since,
)
from etl4all.stages.load import load_frame
from etl4all.stages.transform import geocode_frame
from etl4all.stages.worker import Handler, WorkerStats, run_worker
from etl4all.state.base import State

log = logging.getLogger(__name__)


@dataclasses.dataclass
class ExtractStats:
    """What an extractor did."""

    files: int = 0
    batches: int = 0
    points: int = 0
    rejects: int = 0
    skipped: int = 0


def queue(settings: Settings, name: str) -> str:
    """The full name of queue ``name`` (``queues.POINTS``…) under the configured prefix."""
    return queues.name(settings.queue_prefix, name)


def run_extract(
    settings: Settings, stop: threading.Event, *, bus: Broker, store: State
) -> ExtractStats:
    """Poll the source and publish the points of every settled file not done yet.

    With ``settings.once`` it lists twice, ``settle_seconds`` apart, processes what settled
    and returns; otherwise it polls every ``poll_interval`` seconds until ``stop`` is set.
    """
    if not settings.source_url:
        raise ConfigError("the extract stage needs a source (--source or ETL4ALL_SOURCE_URL)")
    stats = ExtractStats()
    with wiring.open_source(settings.source_url, settings) as source:
        previous = by_key(for_warehouse(source.list_files(), settings.warehouse_url))
        while not stop.is_set():
            # Two listings at least settle_seconds apart tell a finished upload from one
            # still being written.
            interval = max(settings.poll_interval, settings.settle_seconds)
            stop.wait(settings.settle_seconds if settings.once else interval)
            if stop.is_set():
                break
            listing = for_warehouse(source.list_files(), settings.warehouse_url)
            todo = pending(settled(previous, listing), store)
            previous = by_key(listing)
            for ref in todo:
                if stop.is_set():
                    break
                _extract_one(source, ref, settings, bus, store, stats)
            if settings.once:
                break
    log.info(
        "extract done files=%d batches=%d points=%d rejects=%d skipped=%d",
        stats.files,
        stats.batches,
        stats.points,
        stats.rejects,
        stats.skipped,
    )
    return stats


def _extract_one(
    source: Source,
    ref: FileRef,
    settings: Settings,
    bus: Broker,
    store: State,
    stats: ExtractStats,
) -> None:
    """Claim, parse and publish one file, then mark it done."""
    with claimed(store, ref, settings.lease_seconds) as token:
        if token is None:
            log.info("file=%s is claimed by another extractor", ref.name)
            return
        previous = done_mark(store, ref)
        if unchanged_since(previous, ref):
            stats.skipped += 1
            return
        extracted = extract_file(source, ref, previous)
        if extracted.unchanged:
            stats.skipped += 1
        else:
            target = queue(settings, queues.POINTS)
            parts = batch.chunks(extracted.points, max_rows=settings.batch_rows)
            for index, part in enumerate(parts):
                bid = batch.batch_id(extracted.mark.sha256, index)
                body, headers = batch.encode(part, kind="points", batch_id=bid, source=ref.name)
                bus.publish(target, body, headers)
                stats.batches += 1
                if not store.renew(ref.key, token, settings.lease_seconds):
                    log.warning("lost the claim on file=%s; another extractor took it", ref.name)
                    return
            if extracted.rejects.height:
                bid = batch.batch_id(extracted.mark.sha256, 0) + ".rejects"
                _publish(bus, settings, extracted.rejects, "rejects", bid, ref.name)
            stats.files += 1
            stats.points += extracted.points.height
            stats.rejects += extracted.rejects.height
        store.mark_done({ref.key: extracted.mark})


def transform_handler(settings: Settings, bus: Broker, stack: ExitStack) -> Handler:
    """The transform stage's message handler: geocode, then publish the addresses."""
    geocoder = stack.enter_context(wiring.open_geocoder(settings))
    store = stack.enter_context(wiring.open_state(settings))

    def handle(points: pl.DataFrame, headers: dict[str, Any]) -> None:
        result = geocode_frame(points, geocoder, store, settings, max_calls=settings.max_calls)
        parts = batch.chunks(result.addresses, max_rows=max(points.height, 1))
        for index, part in enumerate(parts):
            bid = f"{headers['batch_id']}.{index}"
            _publish(bus, settings, part, "addresses", bid, headers["source"])
        if result.rejects.height:
            bid = f"{headers['batch_id']}.rejects"
            _publish(bus, settings, result.rejects, "rejects", bid, headers["source"])

    return handle


def _publish(
    bus: Broker, settings: Settings, frame: pl.DataFrame, kind: str, bid: str, source: str
) -> None:
    """Publish ``frame`` to the address queue, which carries addresses and rejects to load."""
    body, headers = batch.encode(frame, kind=kind, batch_id=bid, source=source)
    bus.publish(queue(settings, queues.ADDRESSES), body, headers)


def load_handler(settings: Settings, stack: ExitStack) -> Handler:
    """The load stage's message handler: commit addresses (or rejects) to the warehouse."""
    wh = stack.enter_context(wiring.open_warehouse(settings))
    keys = stack.enter_context(wiring.open_lookup(settings, wh))

    def handle(frame: pl.DataFrame, headers: dict[str, Any]) -> None:
        if headers.get("schema") == "rejects":
            wh.load_rejects(frame)
        else:
            load_frame(frame, wh, keys)

    return handle


def run_consumer(
    stage: str, settings: Settings, stop: threading.Event, *, idle_timeout: float | None = None
) -> WorkerStats:
    """Consume the input queue of ``stage`` (transform or load) until stopped or idle."""
    with ExitStack() as stack:
        bus = stack.enter_context(wiring.open_broker(settings))
        if stage == "transform":
            handler, source_queue = transform_handler(settings, bus, stack), queues.POINTS
        else:
            handler, source_queue = load_handler(settings, stack), queues.ADDRESSES
        return run_worker(
            bus,
            queue(settings, source_queue),
            handler,
            stop=stop,
            settings=settings,
            idle_timeout=idle_timeout,
        )


def run_stage(stage: str, settings: Settings, stop: threading.Event) -> Any:
    """Run one stage with ``settings.consumers`` workers until stopped (or idle with once)."""
    if stage == "extract":
        with ExitStack() as stack:
            bus = stack.enter_context(wiring.open_broker(settings))
            store = stack.enter_context(wiring.open_state(settings))
            return run_extract(settings, stop, bus=bus, store=store)
    idle = _idle(settings)
    if settings.consumers == 1:
        return run_consumer(stage, settings, stop, idle_timeout=idle)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            run_consumer(stage, settings, stop, idle_timeout=idle)
        except BaseException as exc:  # re-raised in the main thread below
            errors.append(exc)
            stop.set()

    threads = [
        threading.Thread(target=worker, name=f"{stage}-{i}") for i in range(settings.consumers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return None


def run_all(settings: Settings, stop: threading.Event) -> dict[str, Any]:
    """All three stages in one process through the broker: extract, then drain each queue.

    The stages run one after the other (each until its input queue is idle), which keeps one
    process simple and bounded; for concurrency across stages run ``run-stage`` workers.
    """
    once = settings.replace(once=True)
    started = time.perf_counter()
    report = {"extract": run_stage("extract", once, stop)}
    for stage in ("transform", "load"):
        report[stage] = run_consumer(stage, once, stop, idle_timeout=_idle(once))
    report["seconds"] = time.perf_counter() - started
    return report


def _idle(settings: Settings) -> float | None:
    """How long an idle consumer waits before exiting: only with ``once``."""
    return max(2.0, settings.poll_interval / 5) if settings.once else None
