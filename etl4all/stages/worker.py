"""The generic loop of every services stage: consume → decode → handle → ack.

``run_worker(broker, queue, handler, stop=...)`` takes one message at a time, decodes it and
calls ``handler(frame, headers)``; the message is acked only after the handler returned, so
every effect is committed before RabbitMQ forgets it. A retryable error is retried in process
with backoff for as long as it lasts, a bad message is dead-lettered, a :data:`CIRCUIT_OPEN`
error gives the message back and stops the worker, anything else is a bug, logged and
dead-lettered. The policy and why: docs/architecture.md (A file's life).
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
import time
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

import tenacity

from etl4all import liveness, retry
from etl4all.broker import batch
from etl4all.broker.base import (
    BATCH_ID_HEADER,
    DELIVERY_COUNT_HEADER,
    ROWS_HEADER,
    Broker,
    Delivery,
)
from etl4all.clock import REAL, Clock
from etl4all.counts import PROCESS, Counts
from etl4all.errors import (
    BrokerError,
    BudgetExceededError,
    ConfigError,
    Etl4allError,
    GeocodeAuthError,
    GeocodeQuotaError,
    MissingDependencyError,
)

log = logging.getLogger(__name__)

Handler = Callable[[Any, dict[str, Any]], None]
"""``handler(decoded_body, headers)``: does the work; returns once its effect is committed."""
Decoder = Callable[[bytes, Mapping[str, Any]], Any]
"""``decode(body, headers)``: the handler's first argument; raises DataError on a bad body."""

CIRCUIT_OPEN: tuple[type[Etl4allError], ...] = (
    GeocodeAuthError,
    GeocodeQuotaError,
    BudgetExceededError,
    ConfigError,
    MissingDependencyError,
)
"""Errors that no message can get past: requeue the message and stop the worker."""

RETRY_ATTEMPTS = 4
"""Calls of the handler for a retryable error in a ``--once`` run before the worker stops."""
RETRY_BASE = 2.0
"""Seconds: the first in-process retry waits up to this long (full jitter, doubling)."""
RETRY_CAP = 10.0
"""Seconds: the longest wait between two in-process retries (a worker notices within this
long that an outage is over; one cheap retry per worker every 10 s costs nothing)."""
_REASON_MAX = 2000
_BROKER_HEADERS = frozenset(
    {
        DELIVERY_COUNT_HEADER,
        "x-death",
        "x-first-death-queue",
        "x-first-death-reason",
        "x-first-death-exchange",
    }
)
"""Headers the broker sets on delivery: a message given back starts without them."""


class WorkerStats:
    """What one :func:`run_worker` call did: its record of counts."""

    def __init__(self, counts: Counts) -> None:
        self.counts = counts

    @property
    def acked(self) -> int:
        """Messages handled and acked."""
        return self.counts.get("batches", outcome="acked")

    @property
    def rows(self) -> int:
        """Rows in the acked messages (their ``rows`` header)."""
        return self.counts.get("acked_rows")

    @property
    def dead_lettered(self) -> int:
        """Messages sent to the dead-letter queue."""
        return self.counts.get("batches", outcome="dead_lettered")

    @property
    def requeued(self) -> int:
        """Messages given back (stopping, circuit open, retries used up)."""
        return self.counts.get("batches", outcome="given_back")

    @property
    def retries(self) -> int:
        """In-process retries of the handler."""
        return self.counts.get("batch_retries")


def run_worker(
    broker: Broker,
    queue: str,
    handler: Handler,
    *,
    stop: threading.Event,
    idle_timeout: float | None = None,
    decode: Decoder = batch.decode,
    retry_attempts: int | None = None,
    retry_base: float = RETRY_BASE,
    poll: float = 1.0,
    stage: str | None = None,
    counts: Counts = PROCESS,
    clock: Clock = REAL,
) -> WorkerStats:
    """Consume ``queue`` until ``stop`` is set or it has been idle ``idle_timeout`` seconds.

    Args:
        broker: where messages come from; the caller opens and closes it.
        queue: the full queue name, e.g. ``etl4all.points``.
        handler: the stage's work on one decoded message.
        stop: set it (e.g. from a signal handler) to finish the current message and return.
        idle_timeout: return once no message came for this many seconds (None: never).
        decode: turns the body into the handler's first argument (:func:`batch.decode`).
        retry_attempts: calls of the handler for a retryable error before the message is
            given back and the error raised (None: retry until it works or ``stop`` is set).
        retry_base: the first in-process retry waits up to this long (full jitter).
        poll: longest wait for a message before ``stop`` is looked at again.
        stage: the ``stage`` of log records and counts (default: the queue name).
        counts: the record its counts add to (default: the process's).
        clock: what the idle time is read on and the retries wait on.

    Returns:
        Counts of what was done.

    Raises:
        Etl4allError: a :data:`CIRCUIT_OPEN` error from the handler, or a retryable one that
            outlived ``retry_attempts`` (the message was given back), or the broker failed
            for good.
    """
    stats = WorkerStats(counts.child())
    policy = _Policy(queue, retry_attempts, retry_base, stage or queue, clock)
    last = clock.monotonic()
    log.info("worker consuming %s", queue)
    while not stop.is_set():
        liveness.PROCESS.progressed()  # a turn of the loop: at least every ``poll`` seconds
        wait = poll
        if idle_timeout is not None:
            wait = min(poll, idle_timeout - (clock.monotonic() - last))
        for delivery in broker.consume(queue, timeout=max(wait, 0.05)):
            _process(broker, delivery, handler, decode, stop, policy, stats)
            liveness.PROCESS.progressed()
            last = clock.monotonic()
            if stop.is_set():
                break
        if idle_timeout is not None and clock.monotonic() - last >= idle_timeout:
            log.info("queue %s idle for %.1f s; worker exits", queue, idle_timeout)
            break
    log.info(
        "worker on %s done: acked=%d rows=%d dead_lettered=%d requeued=%d retries=%d",
        queue,
        stats.acked,
        stats.rows,
        stats.dead_lettered,
        stats.requeued,
        stats.retries,
    )
    return stats


def install_signal_handlers(stop: threading.Event) -> Callable[[], None]:
    """Make SIGTERM and SIGINT set ``stop``; a second signal raises KeyboardInterrupt.

    Call it from the main thread. Returns a function that restores the previous handlers.
    """

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        log.info("%s received; finishing the current batch", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


@dataclasses.dataclass(frozen=True)
class _Policy:
    queue: str
    retry_attempts: int | None
    retry_base: float
    stage: str
    clock: Clock


def _process(
    broker: Broker,
    delivery: Delivery,
    handler: Handler,
    decode: Decoder,
    stop: threading.Event,
    policy: _Policy,
    stats: WorkerStats,
) -> None:
    """Handle one delivery and settle it according to the error policy."""
    headers = dict(delivery.headers)
    batch_id = headers.get(BATCH_ID_HEADER, "?")
    if delivery.redelivered:
        attempt = int(headers.get(DELIVERY_COUNT_HEADER) or 0) + 1
        log.info("batch %s redelivered (delivery %d)", batch_id, attempt)
    started = time.monotonic()
    fields = {"stage": policy.stage, "batch": batch_id}
    try:
        payload = decode(delivery.body, headers)
        _call_with_retries(handler, payload, headers, stop, policy, stats)
    except Etl4allError as exc:
        _count_error(stats, policy, exc)
        if isinstance(exc, CIRCUIT_OPEN):
            log.error("batch %s: %s; given back, worker stops", batch_id, exc, extra=fields)
            _stop_consuming(broker, policy)
            _give_back(broker, policy, delivery, stats)
            raise
        if not exc.retryable:
            # one line says why; the traceback (of a known error: no news) is for -vv
            log.error("batch %s is bad: %s; dead-lettered", batch_id, exc, extra=fields)
            log.debug("batch %s: where its error came from", batch_id, exc_info=exc)
            _settle(delivery, stats, policy, reason=f"{type(exc).__name__}: {exc}")
            return
        _stop_consuming(broker, policy)  # the worker stops: no other batch must come to it
        _give_back(broker, policy, delivery, stats)
        if stop.is_set():
            log.warning("batch %s: %s; given back as the worker stops", batch_id, exc, extra=fields)
            return
        log.error(
            "batch %s: %s; given back after %s tries, worker stops",
            batch_id,
            exc,
            policy.retry_attempts,
            extra=fields,
        )
        raise
    except Exception as exc:  # a bug in a stage: keep the evidence, keep the queue moving
        _count_error(stats, policy, exc)
        log.exception("bug while handling batch %s; dead-lettered", batch_id, extra=fields)
        _settle(delivery, stats, policy, reason=f"bug: {type(exc).__name__}: {exc}")
    else:
        seconds = time.monotonic() - started
        rows = int(headers.get(ROWS_HEADER) or getattr(payload, "height", 0) or 0)
        if _settle(delivery, stats, policy, seconds=seconds):
            stats.counts.add("acked_rows", rows, stage=policy.stage)
        log.info(
            "batch %s done rows=%d seconds=%.3f",
            batch_id,
            rows,
            seconds,
            extra={**fields, "rows": rows, "seconds": round(seconds, 3)},
        )


def _call_with_retries(
    handler: Handler,
    payload: Any,
    headers: dict[str, Any],
    stop: threading.Event,
    policy: _Policy,
    stats: WorkerStats,
) -> None:
    """Call the handler; retry retryable errors with backoff while not stopping."""

    def before_sleep(state: tenacity.RetryCallState) -> None:
        stats.counts.add("batch_retries", stage=policy.stage)
        exc = state.outcome.exception() if state.outcome is not None else None
        if exc is not None:
            _count_error(stats, policy, exc)
        log.warning(
            "batch %s: %s; retrying in %.1f s",
            headers.get(BATCH_ID_HEADER, "?"),
            exc,
            state.upcoming_sleep,
        )

    retrying = retry.retrying(
        attempts=policy.retry_attempts,
        base=policy.retry_base,
        cap=RETRY_CAP,
        stop_event=stop,
        before_sleep=before_sleep,
        clock=policy.clock,
    )
    retrying(handler, payload, headers)


def _stop_consuming(broker: Broker, policy: _Policy) -> None:
    """Take no more messages before the worker stops (a failure is logged: what comes then is
    requeued when the connection closes, as before)."""
    try:
        broker.stop_consuming(policy.queue)
    except BrokerError as exc:
        log.warning("could not stop consuming %s: %s", policy.queue, exc)


def _give_back(broker: Broker, policy: _Policy, delivery: Delivery, stats: WorkerStats) -> None:
    """Put the message back on ``queue`` without counting a failed delivery.

    It is republished (confirmed) and then acked; if the broker fails in between, the
    original is requeued by RabbitMQ when the connection drops, and handling is idempotent.
    """
    headers = {k: v for k, v in delivery.headers.items() if k not in _BROKER_HEADERS}
    try:
        broker.publish(policy.queue, delivery.body, headers)
        delivery.ack()
    except BrokerError as exc:
        log.warning("could not give back batch %s: %s", headers.get(BATCH_ID_HEADER, "?"), exc)
        _settle(delivery, stats, policy, requeue=True)
        return
    stats.counts.add("batches", stage=policy.stage, outcome="given_back")


def _settle(
    delivery: Delivery,
    stats: WorkerStats,
    policy: _Policy,
    *,
    requeue: bool = False,
    reason: str | None = None,
    seconds: float | None = None,
) -> bool:
    """Ack (no reason, no requeue), requeue, or dead-letter; False if the broker failed.
    ``seconds``: how long the acked batch took.

    A failed ack is not fatal: the broker redelivers the message and the stage's effects are
    idempotent. A broker that is gone for good fails the next consume.
    """
    try:
        if requeue:
            delivery.reject(requeue=True)
            stats.counts.add("batches", stage=policy.stage, outcome="given_back")
        elif reason is not None:
            delivery.reject(requeue=False, reason=reason[:_REASON_MAX])
            stats.counts.add("batches", stage=policy.stage, outcome="dead_lettered")
        else:
            delivery.ack()
            count_acked(stats.counts, policy.stage, seconds)
    except BrokerError as exc:
        log.warning(
            "could not settle batch %s: %s", delivery.headers.get(BATCH_ID_HEADER, "?"), exc
        )
        return False
    return True


def count_acked(counts: Counts, stage: str, seconds: float | None) -> None:
    """A message of ``stage`` was acked, ``seconds`` after it was taken (when known)."""
    counts.add("batches", stage=stage, outcome="acked")
    if seconds is not None:
        counts.observe("batch_duration_seconds", seconds, stage=stage)


def _count_error(stats: WorkerStats, policy: _Policy, error: BaseException) -> None:
    """A batch met ``error``."""
    stats.counts.add("errors", stage=policy.stage, kind=type(error).__name__)
