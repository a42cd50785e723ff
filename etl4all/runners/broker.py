"""Broker driver (``etl4all run-stage``, ``run --broker``): the same stages behind queues.

extract publishes the items of each file's unit of work (points to ``etl4all.points``; parse
rejects and the prune of its version to ``etl4all.addresses``) and marks the file done once
the broker confirmed them; transform and load are :func:`~etl4all.stages.worker.run_worker`
handlers around the same stage functions. Every message carries its file version, so the
loader ignores work of an older one; every worker is stateless. See docs/architecture.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any, Protocol

import polars as pl

from etl4all import frames, urls
from etl4all.broker import batch
from etl4all.broker.base import (
    BATCH_ID_HEADER,
    PRUNE_HIGH_HEADER,
    PRUNE_LOW_HEADER,
    REVERT_TO_HEADER,
    SCHEMA_HEADER,
    SOURCE_HEADER,
    VERSION_HEADER,
    Broker,
)
from etl4all.closing import Closing
from etl4all.errors import BrokerError, ConfigError, DataError
from etl4all.runners import wiring
from etl4all.settings import Settings
from etl4all.sources.base import FileRef
from etl4all.stages.batching import PointBatch
from etl4all.stages.extract import Extractor
from etl4all.stages.filework import ExtractStats, Held
from etl4all.stages.load import (
    Addresses,
    Finalize,
    LoadItem,
    PrunePart,
    PruneRejects,
    Rejects,
    Undo,
    apply,
    prune_items,
)
from etl4all.stages.transform import CallBudget, geocode_frame
from etl4all.stages.worker import RETRY_ATTEMPTS, Handler, WorkerStats, count_acked, run_worker

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
    bus: _Publisher,
    queue: str,
    frame: pl.DataFrame,
    kind: str,
    bid: str,
    src: str,
    version: int | None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Encode ``frame`` as a batch and publish it to ``queue`` (confirmed by the broker)."""
    body, headers = batch.encode(frame, kind=kind, batch_id=bid, source=src, version=version)
    bus.publish(queue, body, {**headers, **(extra or {})})


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
    """Publish the items of ``refs``, file after file, each marked done once confirmed."""
    points, addresses = outbox.topology.points, outbox.topology.addresses
    for ref in refs:
        if stop.is_set():
            return
        started = time.perf_counter()
        held = len(extractor.stats.held)
        with extractor.take(ref) as work:
            if len(extractor.stats.held) > held:  # once per content, not once per poll
                log.warning("held file=%s", work.held)
            for item in work.items():
                if isinstance(item, PointBatch):
                    version, bid = item.version, item.batch_id
                    if item.points.height:
                        _publish(outbox, points, item.points, "points", bid, ref.name, version)
                    if item.rejects.height:
                        _publish(
                            outbox,
                            addresses,
                            item.rejects,
                            "rejects",
                            item.rejects_id,
                            ref.name,
                            version,
                        )
                else:
                    parts = prune_items(item, max_rows=settings.batch_rows)
                    for index, part in enumerate(parts):
                        _publish_prune(outbox, addresses, part, f"{ref.key}@{item.version}.{index}")
                work.done(item)
                count_acked(extractor.stats.counts, "extract", time.perf_counter() - started)
                started = time.perf_counter()


def _publish_prune(
    bus: _Publisher, queue: str, part: PrunePart | PruneRejects | Finalize | Undo, bid: str
) -> None:
    """Publish one part of a prune by keys (or its finalize, or a revert) to ``queue``."""
    empty = frames.empty(frames.REJECTS_SCHEMA)
    if isinstance(part, PruneRejects | Finalize):
        kind = "prune_rejects" if isinstance(part, PruneRejects) else "finalize"
        _publish(bus, queue, empty, kind, bid, part.source, part.version)
        return
    if isinstance(part, Undo):
        to: dict[str, Any] = {REVERT_TO_HEADER: part.to}
        _publish(bus, queue, empty, "revert", bid, part.source, part.version, to)
        return
    keys = part.keys if part.keys is not None else frames.empty(frames.PRUNE_SCHEMA)
    bounds = {PRUNE_LOW_HEADER: part.low, PRUNE_HIGH_HEADER: part.high}
    extra = {name: key for name, key in bounds.items() if key is not None}
    _publish(bus, queue, keys, "prune", bid, part.source, part.version, extra)


def transform_handler(
    settings: Settings, bus: Broker, stack: ExitStack, budget: CallBudget
) -> Handler:
    """The transform stage's message handler: geocode, then publish the addresses."""
    addresses = bus.topology.addresses
    quota = stack.enter_context(wiring.open_quota(settings))
    geocoder = stack.enter_context(wiring.open_geocoder(settings, quota))
    cache = stack.enter_context(wiring.open_state(settings))
    # what was paid for, kept for good: asked before paying again when the cache lost it
    stored = stack.enter_context(wiring.open_warehouse(settings)) if geocoder.paid else None
    config = wiring.transform_config(settings)

    def handle(points: pl.DataFrame, headers: dict[str, Any]) -> None:
        result = geocode_frame(points, geocoder, cache, config, budget, stored=stored)
        parts = batch.chunks(result.addresses, max_rows=max(points.height, 1))
        bid, source = headers[BATCH_ID_HEADER], headers[SOURCE_HEADER]
        version = _version(headers)
        for index, part in enumerate(parts):
            _publish(bus, addresses, part, "addresses", f"{bid}.{index}", source, version)
        if result.rejects.height:
            _publish(bus, addresses, result.rejects, "rejects", f"{bid}.rejects", source, version)

    return handle


def load_handler(settings: Settings, stack: ExitStack) -> Handler:
    """The load stage's message handler: apply the message's item to the warehouse."""
    wh = stack.enter_context(wiring.open_warehouse(settings))
    keys = stack.enter_context(wiring.open_lookup(settings, wh))

    def handle(frame: pl.DataFrame, headers: dict[str, Any]) -> None:
        apply(load_item(frame, headers), wh, keys)

    return handle


def load_item(frame: pl.DataFrame, headers: dict[str, Any]) -> LoadItem:
    """The load item a message to the loader stands for (its body decoded as ``frame``).

    Raises:
        DataError: a prune message without a version.
    """
    kind, source, version = (
        headers.get(SCHEMA_HEADER),
        str(headers.get(SOURCE_HEADER)),
        _version(headers),
    )
    if kind == "rejects":
        return Rejects(frame, version)
    if kind == "addresses":
        return Addresses(frame, version)
    if version is None:  # a prune of a worker older than file versions
        raise DataError(f"{kind} message of {source} has no version header; republish the file")
    if kind == "prune_rejects":
        return PruneRejects(source, version)
    if kind == "finalize":
        return Finalize(source, version)
    if kind == "revert":
        return Undo(source, version, int(headers[REVERT_TO_HEADER]))
    low, high = headers.get(PRUNE_LOW_HEADER), headers.get(PRUNE_HIGH_HEADER)
    return PrunePart(source, version, frame, low and str(low), high and str(high))


def _version(headers: dict[str, Any]) -> int | None:
    """The ``version`` header of a message (None: a batch of an older worker)."""
    version = headers.get(VERSION_HEADER)
    return None if version is None else int(version)


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


def run_stage(stage: str, settings: Settings, stop: threading.Event) -> list[Held]:
    """Run one stage until stopped (or done with ``once``); transform and load run
    ``settings.consumers`` consumers, which share one ``--max-calls`` budget. Returns the
    files an extractor held (they shrank to a prefix of the version loaded)."""
    if stage == "extract":
        return run_extract(settings, stop).held
    budget = CallBudget(settings.max_calls)
    if settings.consumers == 1:
        run_consumer(stage, settings, stop, budget)
        return []
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
    return []


def run_all(
    settings: Settings,
    stop: threading.Event,
    on_stage: Callable[[str], None] = lambda stage: None,
) -> BrokerRunReport:
    """All three stages in one process through the broker: extract, then drain each queue.

    The stages run one after the other (each until its input queue is idle), which keeps one
    process simple and bounded; for concurrency across stages run ``run-stage`` workers.
    ``on_stage`` is told each stage as it starts (``extract``, ``transform``, ``load``).
    """
    once = settings.replace(once=True)
    budget = CallBudget(settings.max_calls)
    started = time.perf_counter()
    on_stage("extract")
    extract = run_extract(once, stop)
    on_stage("transform")
    transform = run_consumer("transform", once, stop, budget)
    on_stage("load")
    load = run_consumer("load", once, stop, budget)
    return BrokerRunReport(extract, transform, load, time.perf_counter() - started)
