"""Broker driver (``etl4all run-stage``, ``run --broker``): the same stages behind queues.

- extract publishes every batch of :meth:`Extractor.batches` (points to ``etl4all.points``,
  parse rejects to ``etl4all.addresses``), each confirmed by the broker, then commits it; the
  prune of a file that changed after it was loaded goes to ``etl4all.addresses`` too, in
  key-range parts (``prune``) and one ``prune_rejects`` batch, before the last commit;
  long-running, it retries a failed poll with backoff and reopens a broker that gave up;
- transform consumes point batches, geocodes them and publishes addresses (and geocode
  rejects) to ``etl4all.addresses`` before its input is acked;
- load consumes address batches and commits them (or rejects, or prunes) to the warehouse
  before acking.

Every worker is stateless: run as many replicas of each stage as the load needs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import threading
import time
from contextlib import ExitStack
from typing import Any, Protocol

import polars as pl

from etl4all import batch, metrics, urls
from etl4all.broker.base import (
    BATCH_ID_HEADER,
    PRUNE_HIGH_HEADER,
    PRUNE_LOW_HEADER,
    SCHEMA_HEADER,
    SOURCE_HEADER,
    Broker,
)
from etl4all.closing import Closing
from etl4all.errors import BrokerError, ConfigError
from etl4all.runners import wiring
from etl4all.settings import Settings
from etl4all.sources.base import FileRef
from etl4all.stages.extract import Extractor, ExtractStats
from etl4all.stages.load import load_frame
from etl4all.stages.prune import KeyRange, Prune, key_ranges, prune_range, prune_rejects
from etl4all.stages.transform import CallBudget, geocode_frame
from etl4all.stages.worker import RETRY_ATTEMPTS, Handler, WorkerStats, run_worker

log = logging.getLogger(__name__)


@dataclasses.dataclass
class BrokerRunReport:
    """What ``run --broker`` did, stage by stage."""

    extract: ExtractStats
    transform: WorkerStats
    load: WorkerStats
    seconds: float


class _Publisher(Protocol):
    """What publishing needs of a broker."""

    def publish(self, queue: str, body: bytes, headers: dict[str, Any]) -> None:
        """Publish one message; return once the broker confirmed it."""
        ...


def _publish(
    bus: _Publisher, queue: str, frame: pl.DataFrame, kind: str, bid: str, src: str
) -> None:
    """Encode ``frame`` as a batch and publish it to ``queue`` (confirmed by the broker)."""
    body, headers = batch.encode(frame, kind=kind, batch_id=bid, source=src)
    bus.publish(queue, body, headers)


class _Outbox(Closing):
    """The extractor's broker, opened again after it failed.

    An AMQP connection reconnects by itself for a while (``reconnect_attempts``), then gives
    up for good; a long-running extractor outlives any outage, so after a retryable
    BrokerError the broker is closed and the next publish opens a new one.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._bus: Broker | None = wiring.open_broker(settings)
        self.topology = self._bus.topology

    def publish(self, queue: str, body: bytes, headers: dict[str, Any]) -> None:
        """Publish on the broker, opened first if the last one failed."""
        if self._bus is None:
            self._bus = wiring.open_broker(self._settings)
        try:
            self._bus.publish(queue, body, headers)
        except BrokerError as error:
            if error.retryable:
                self.close()
            raise

    def close(self) -> None:
        """Close the broker (if open)."""
        bus, self._bus = self._bus, None
        if bus is not None:
            with contextlib.suppress(BrokerError):
                bus.close()


def run_extract(settings: Settings, stop: threading.Event) -> ExtractStats:
    """Poll the source and publish the batches of every settled file not done yet.

    With ``settings.once`` it polls once (two listings ``settle_seconds`` apart) and returns;
    otherwise it polls every ``poll_interval`` seconds until ``stop`` is set, and outlives
    outages of the source, the state store and the broker (see :meth:`Extractor.poll`). A
    file is marked done only after the broker confirmed every one of its batches.
    """
    if not settings.source_url:
        raise ConfigError("the extract stage needs a source (--source or ETL4ALL_SOURCE_URL)")
    with ExitStack() as stack:
        outbox = stack.enter_context(_Outbox(settings))
        extractor = Extractor(
            source=stack.enter_context(wiring.open_source(settings.source_url, settings)),
            ledger=stack.enter_context(wiring.open_state(settings)),
            config=wiring.extract_config(settings),
        )
        log.info(
            "extract watching %s every %.1f s (a file is taken once unchanged for %.1f s)",
            urls.redact(settings.source_url),
            settings.poll_interval,
            settings.settle_seconds,
        )
        extractor.poll(stop, functools.partial(_publish_files, extractor, outbox, stop, settings))
    stats = extractor.stats
    log.info(
        "extract done files=%d batches=%d points=%d rejects=%d skipped=%d busy=%d partial=%d "
        "pruned=%d",
        stats.files,
        stats.batches,
        stats.points,
        sum(stats.rejects.values()),
        stats.skipped,
        stats.busy,
        stats.partial,
        stats.pruned,
    )
    return stats


def _publish_files(
    extractor: Extractor,
    outbox: _Outbox,
    stop: threading.Event,
    settings: Settings,
    refs: list[FileRef],
) -> None:
    """Publish the batches of ``refs``, file after file, each committed once confirmed."""
    points, addresses = outbox.topology.points, outbox.topology.addresses
    for ref in refs:
        if stop.is_set():
            return
        started = time.perf_counter()
        with contextlib.closing(extractor.batches([ref])) as items:
            for item in items:
                if item.points.height:
                    _publish(outbox, points, item.points, "points", item.batch_id, ref.name)
                if item.rejects.height:
                    _publish(outbox, addresses, item.rejects, "rejects", item.rejects_id, ref.name)
                if item.prune is not None:
                    _publish_prune(outbox, addresses, item.prune, item.batch_id, settings)
                item.commit()
                metrics.count_batch("extract", "acked", time.perf_counter() - started)
                started = time.perf_counter()


def _publish_prune(bus: _Publisher, queue: str, prune: Prune, bid: str, settings: Settings) -> None:
    """Publish ``prune`` to ``queue``: its key ranges, then the parse rejects it keeps."""
    for index, part in enumerate(key_ranges(prune, max_rows=settings.batch_rows)):
        body, headers = batch.encode(
            part.keys, kind="prune", batch_id=f"{bid}.prune.{index}", source=prune.source
        )
        bounds = {PRUNE_LOW_HEADER: part.low, PRUNE_HIGH_HEADER: part.high}
        headers.update({name: key for name, key in bounds.items() if key is not None})
        bus.publish(queue, body, headers)
    kept = prune.rejects.with_columns(text=pl.lit(None, pl.String))
    _publish(bus, queue, kept, "prune_rejects", f"{bid}.prune.rejects", prune.source)


def transform_handler(
    settings: Settings, bus: Broker, stack: ExitStack, budget: CallBudget
) -> Handler:
    """The transform stage's message handler: geocode, then publish the addresses."""
    addresses = bus.topology.addresses
    geocoder = stack.enter_context(wiring.open_geocoder(settings))
    cache = stack.enter_context(wiring.open_state(settings))
    config = wiring.transform_config(settings)

    def handle(points: pl.DataFrame, headers: dict[str, Any]) -> None:
        result = geocode_frame(points, geocoder, cache, config, budget)
        parts = batch.chunks(result.addresses, max_rows=max(points.height, 1))
        bid, source = headers[BATCH_ID_HEADER], headers[SOURCE_HEADER]
        for index, part in enumerate(parts):
            _publish(bus, addresses, part, "addresses", f"{bid}.{index}", source)
        if result.rejects.height:
            _publish(bus, addresses, result.rejects, "rejects", f"{bid}.rejects", source)

    return handle


def load_handler(settings: Settings, stack: ExitStack) -> Handler:
    """The load stage's message handler: commit addresses (or rejects) to the warehouse."""
    wh = stack.enter_context(wiring.open_warehouse(settings))
    keys = stack.enter_context(wiring.open_lookup(settings, wh))

    def handle(frame: pl.DataFrame, headers: dict[str, Any]) -> None:
        kind, source = headers.get(SCHEMA_HEADER), str(headers.get(SOURCE_HEADER))
        if kind == "rejects":
            wh.load_rejects(frame)
        elif kind == "prune":
            low, high = headers.get(PRUNE_LOW_HEADER), headers.get(PRUNE_HIGH_HEADER)
            part = KeyRange(frame, low and str(low), high and str(high))
            prune_range(wh, source, part)
        elif kind == "prune_rejects":
            prune_rejects(wh, source, frame)
        else:
            load_frame(frame, wh, keys)

    return handle


def run_consumer(
    stage: str, settings: Settings, stop: threading.Event, budget: CallBudget
) -> WorkerStats:
    """Consume the input queue of ``stage`` (transform or load) until stopped (or idle with
    ``once``)."""
    with ExitStack() as stack:
        bus = stack.enter_context(wiring.open_broker(settings))
        if stage == "transform":
            handler, queue = transform_handler(settings, bus, stack, budget), bus.topology.points
        else:
            handler, queue = load_handler(settings, stack), bus.topology.addresses
        return run_worker(
            bus,
            queue,
            handler,
            stop=stop,
            idle_timeout=max(2.0, settings.poll_interval / 5) if settings.once else None,
            retry_attempts=RETRY_ATTEMPTS if settings.once else None,
            stage=stage,
        )


def run_stage(stage: str, settings: Settings, stop: threading.Event) -> None:
    """Run one stage until stopped (or done with ``once``); transform and load run
    ``settings.consumers`` consumers, which share one ``--max-calls`` budget."""
    if stage == "extract":
        run_extract(settings, stop)
        return
    budget = CallBudget(settings.max_calls)
    if settings.consumers == 1:
        run_consumer(stage, settings, stop, budget)
        return
    errors: list[BaseException] = []

    def consume() -> None:
        try:
            run_consumer(stage, settings, stop, budget)
        except BaseException as exc:  # re-raised in the calling thread below
            errors.append(exc)
            stop.set()

    threads = [
        threading.Thread(target=consume, name=f"{stage}-{i}") for i in range(settings.consumers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def run_all(settings: Settings, stop: threading.Event) -> BrokerRunReport:
    """All three stages in one process through the broker: extract, then drain each queue.

    The stages run one after the other (each until its input queue is idle), which keeps one
    process simple and bounded; for concurrency across stages run ``run-stage`` workers.
    """
    once = settings.replace(once=True)
    budget = CallBudget(settings.max_calls)
    started = time.perf_counter()
    extract = run_extract(once, stop)
    transform = run_consumer("transform", once, stop, budget)
    load = run_consumer("load", once, stop, budget)
    return BrokerRunReport(extract, transform, load, time.perf_counter() - started)
