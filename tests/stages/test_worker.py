"""The generic worker loop on the in-process broker: acks, retries, dead letters, stopping."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

import polars as pl
import pytest
from virtual_clock import VirtualClock

from etl4all import frames, liveness
from etl4all.broker import batch
from etl4all.broker.base import ERROR_HEADER, QUEUE_HEADER
from etl4all.broker.memory import MemoryBroker
from etl4all.errors import (
    BrokerConfigError,
    BudgetExceededError,
    DataError,
    GeocodeAuthError,
    GeocodeQuotaError,
    WarehouseError,
)
from etl4all.liveness import Liveness
from etl4all.settings import Settings
from etl4all.stages.worker import install_signal_handlers, run_worker

POINTS, DEAD = "t.points", "t.dead"


@pytest.fixture
def settings() -> Settings:
    return Settings(queue_prefix="t", max_deliveries=3)


@pytest.fixture
def broker(settings: Settings) -> Iterator[MemoryBroker]:
    with MemoryBroker(
        prefix=settings.queue_prefix, max_deliveries=settings.max_deliveries
    ) as broker:
        yield broker


def publish(broker: MemoryBroker, n: int = 1, rows: int = 3) -> None:
    for i in range(n):
        frame = pl.DataFrame(
            {
                "source": "f.txt",
                "line": pl.int_range(rows, eager=True),
                "latitude": -30.0,
                "longitude": -51.0,
            }
        )
        frame = frame.with_columns(distance_km=None, bearing_deg=None)
        body, headers = batch.encode(frame, kind="points", batch_id=f"f-{i:05d}", source="f.txt")
        broker.publish(POINTS, body, headers)


class ClockedBroker:
    """The memory broker with its waits for messages on a virtual clock."""

    def __init__(self, broker: MemoryBroker, clock: VirtualClock) -> None:
        self._broker, self._clock = broker, clock
        self.waits: list[float | None] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._broker, name)

    def consume(self, queue: str, timeout: float | None = None) -> Iterator[Any]:
        """The messages ready; none: ``timeout`` passes on the clock."""
        got = False
        for delivery in self._broker.consume(queue, timeout=0):
            got = True
            yield delivery
        if not got:
            self.waits.append(timeout)
            self._clock.sleep(timeout or 0.0)


def run(broker: MemoryBroker, handler: Any, settings: Settings, **kwargs: Any) -> Any:
    """The worker until idle, in virtual time (its backoffs and idle waits)."""
    clock = kwargs.pop("clock", None) or VirtualClock()
    kwargs = {"idle_timeout": 0.2, "retry_attempts": 3, "retry_base": 0.01, "poll": 0.1, **kwargs}
    stop = threading.Event()
    clocked = ClockedBroker(broker, clock)
    return run_worker(clocked, POINTS, handler, stop=stop, clock=clock, **kwargs)


def dead_letters(broker: MemoryBroker) -> list[dict[str, Any]]:
    letters = []
    for delivery in broker.consume(DEAD, timeout=0):  # those there: no wait
        letters.append(delivery.headers)
        delivery.ack()
    return letters


def test_success_acks_after_the_handler(broker: MemoryBroker, settings: Settings) -> None:
    publish(broker, 2, rows=5)
    seen: list[tuple[str, int, int]] = []

    def handler(frame: pl.DataFrame, headers: dict[str, Any]) -> None:
        assert frame.schema == pl.Schema(frames.POINTS_SCHEMA)
        seen.append((headers["batch_id"], frame.height, broker.depth(POINTS)))

    stats = run(broker, handler, settings)
    assert seen == [("f-00000", 5, 1), ("f-00001", 5, 0)]
    assert (stats.acked, stats.rows, stats.dead_lettered, stats.requeued) == (2, 10, 0, 0)
    assert broker.depth(POINTS) == 0
    assert broker._unacked == set()
    assert dead_letters(broker) == []


def test_batch_lines_are_logged(
    broker: MemoryBroker, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    publish(broker, 1, rows=4)
    with caplog.at_level(logging.INFO, logger="etl4all.stages.worker"):
        run(broker, lambda frame, headers: None, settings)
    assert any(
        "batch f-00000 done rows=4 seconds=" in record.getMessage() for record in caplog.records
    )


def test_data_error_dead_letters_and_goes_on(broker: MemoryBroker, settings: Settings) -> None:
    publish(broker, 2)
    calls: list[str] = []

    def handler(frame: pl.DataFrame, headers: dict[str, Any]) -> None:
        calls.append(headers["batch_id"])
        if headers["batch_id"] == "f-00000":
            raise DataError("latitude out of range in f.txt")

    stats = run(broker, handler, settings)
    assert calls == ["f-00000", "f-00001"]  # not retried
    assert (stats.acked, stats.dead_lettered) == (1, 1)
    (letter,) = dead_letters(broker)
    assert letter["batch_id"] == "f-00000"
    assert letter[ERROR_HEADER] == "DataError: latitude out of range in f.txt"
    assert letter[QUEUE_HEADER] == POINTS


def test_corrupt_body_never_reaches_the_handler(broker: MemoryBroker, settings: Settings) -> None:
    broker.publish(POINTS, b"PAR1 garbage", {"batch_id": "bad", "schema": "points", "sha256": "0"})
    stats = run(broker, lambda frame, headers: pytest.fail("handler called"), settings)
    assert stats.dead_lettered == 1
    (letter,) = dead_letters(broker)
    assert "sha256" in letter[ERROR_HEADER]


def test_retryable_error_outliving_the_retries_gives_the_batch_back_uncounted(
    broker: MemoryBroker, settings: Settings
) -> None:
    publish(broker)
    seen: list[int] = []

    def handler(frame: pl.DataFrame, headers: dict[str, Any]) -> None:
        seen.append(headers.get("x-delivery-count", 0))
        raise WarehouseError("deadlock found when trying to get lock")

    with pytest.raises(WarehouseError, match="deadlock"):
        run(broker, handler, settings)  # retry_attempts=3: a --once run stops
    assert seen == [0, 0, 0]
    for _ in range(2):  # every later worker finds it as new, never closer to the dead letters
        with pytest.raises(WarehouseError):
            run(broker, handler, settings)
    assert seen == [0] * 9
    assert broker.depth(POINTS) == 1
    assert dead_letters(broker) == []


def test_an_outage_of_any_length_is_waited_out_without_dead_letters(
    broker: MemoryBroker, settings: Settings
) -> None:
    publish(broker, 2)
    failures = iter([WarehouseError("Can't connect to MySQL server")] * 6)

    def handler(frame: pl.DataFrame, headers: dict[str, Any]) -> None:
        if error := next(failures, None):
            raise error

    stats = run(broker, handler, settings, retry_attempts=None)  # a long-running worker
    assert (stats.retries, stats.acked, stats.requeued, stats.dead_lettered) == (6, 2, 0, 0)
    assert broker.depth(POINTS) == 0
    assert dead_letters(broker) == []


def test_retryable_error_that_clears_is_acked(broker: MemoryBroker, settings: Settings) -> None:
    publish(broker)
    failures = iter([WarehouseError("lock wait timeout")])

    def handler(frame: pl.DataFrame, headers: dict[str, Any]) -> None:
        if error := next(failures, None):
            raise error

    stats = run(broker, handler, settings)
    assert (stats.retries, stats.acked, stats.requeued, stats.dead_lettered) == (1, 1, 0, 0)


@pytest.mark.parametrize(
    "error",
    [
        GeocodeAuthError("REQUEST_DENIED: The provided API key is invalid."),
        GeocodeQuotaError("OVER_DAILY_LIMIT"),
        BudgetExceededError("needs 12000 calls, --max-calls is 10000"),
        BrokerConfigError("RabbitMQ amqp://...: publishing failed: UnroutableError"),
    ],
)
def test_circuit_open_gives_the_batch_back_uncounted_and_stops_the_worker(
    broker: MemoryBroker, settings: Settings, error: Exception
) -> None:
    publish(broker, 2)
    calls: list[str] = []

    def handler(frame: pl.DataFrame, headers: dict[str, Any]) -> None:
        calls.append(headers["batch_id"])
        raise error

    with pytest.raises(type(error)):
        run(broker, handler, settings)
    assert calls == ["f-00000"]  # no retries, nothing else consumed
    assert broker.depth(POINTS) == 2  # the message is back
    assert broker._unacked == set()
    assert dead_letters(broker) == []
    for _ in range(5):  # five restarts with the fault still there: never a dead letter
        with pytest.raises(type(error)):
            run(broker, handler, settings)
    assert broker.depth(POINTS) == 2
    assert dead_letters(broker) == []
    counts = [d.headers.get("x-delivery-count", 0) for d in broker.consume(POINTS, timeout=0.05)]
    assert counts == [0, 0]


def test_a_bug_is_logged_with_traceback_and_dead_lettered(
    broker: MemoryBroker, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    publish(broker, 2)

    def handler(frame: pl.DataFrame, headers: dict[str, Any]) -> None:
        if headers["batch_id"] == "f-00000":
            _ = dict[str, int]()["missing"]

    with caplog.at_level(logging.ERROR, logger="etl4all.stages.worker"):
        stats = run(broker, handler, settings)
    assert (stats.dead_lettered, stats.acked) == (1, 1)
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "bug" in record.getMessage() and "f-00000" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[0] is KeyError
    (letter,) = dead_letters(broker)
    assert letter[ERROR_HEADER] == "bug: KeyError: 'missing'"


def test_stop_finishes_the_current_message_and_returns(
    broker: MemoryBroker, settings: Settings
) -> None:
    publish(broker, 3)
    stop = threading.Event()

    def handler(frame: pl.DataFrame, headers: dict[str, Any]) -> None:
        stop.set()  # e.g. SIGTERM arrives while the batch is being processed

    stats = run_worker(broker, POINTS, handler, stop=stop, poll=0.1)
    assert stats.acked == 1
    assert broker.depth(POINTS) == 2


def test_stop_while_idle_ends_the_loop(broker: MemoryBroker, settings: Settings) -> None:
    clock, stop = VirtualClock(), threading.Event()
    clocked = ClockedBroker(broker, clock)
    result: list[Any] = []
    thread = threading.Thread(
        target=lambda: result.append(
            run_worker(clocked, POINTS, lambda f, h: None, stop=stop, poll=0.1, clock=clock)
        )
    )
    thread.start()
    clock.until_waiting(1)
    clock.advance(1.0)
    assert thread.is_alive() and len(clocked.waits) >= 10  # no idle_timeout: it waits for work
    stop.set()
    clock.advance(0.1)  # the wait in progress ends
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert result[0].acked == 0


def test_stop_during_retry_backoff_gives_the_batch_back(
    broker: MemoryBroker, settings: Settings
) -> None:
    publish(broker)
    stop = threading.Event()

    def handler(frame: pl.DataFrame, headers: dict[str, Any]) -> None:
        stop.set()
        raise WarehouseError("connection lost")

    stats = run_worker(broker, POINTS, handler, stop=stop, retry_attempts=2, retry_base=30)
    assert (stats.requeued, stats.dead_lettered, stats.retries) == (1, 0, 0)
    assert broker.depth(POINTS) == 1


def test_idle_timeout_returns(broker: MemoryBroker, settings: Settings) -> None:
    clock = VirtualClock()
    started = clock.monotonic()
    stats = run(broker, lambda f, h: None, settings, idle_timeout=0.3, clock=clock)
    assert stats.acked == 0
    assert 0.3 <= clock.monotonic() - started <= 0.3 + 0.1  # idle its timeout, within a poll


def test_signal_handlers_set_the_stop_event() -> None:
    stop = threading.Event()
    restore = install_signal_handlers(stop)
    try:
        os.kill(os.getpid(), signal.SIGTERM)  # handled in this (the main) thread at once
        assert stop.is_set()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    finally:
        restore()
    assert signal.getsignal(signal.SIGTERM) is not None


def test_a_dead_lettered_batch_is_one_error_line_its_traceback_at_debug(
    broker: MemoryBroker, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 17, item 11: each dead-lettered batch logged a full traceback at ERROR."""
    publish(broker, 1)

    def bad(frame: pl.DataFrame, headers: dict[str, Any]) -> None:
        raise DataError("latitude out of range in f.txt")

    with caplog.at_level(logging.DEBUG, logger="etl4all.stages.worker"):
        run(broker, bad, settings)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == [
        "batch f-00000 is bad: latitude out of range in f.txt; dead-lettered"
    ]
    assert errors[0].exc_info is None
    assert any(r.levelno == logging.DEBUG and r.exc_info for r in caplog.records)


def test_a_bug_still_logs_its_traceback_at_error(
    broker: MemoryBroker, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    publish(broker, 1)

    def buggy(frame: pl.DataFrame, headers: dict[str, Any]) -> None:
        raise KeyError("oops")

    with caplog.at_level(logging.INFO, logger="etl4all.stages.worker"):
        run(broker, buggy, settings)
    (error,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "bug while handling batch f-00000" in error.getMessage() and error.exc_info


def test_every_turn_of_the_loop_is_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = VirtualClock()
    monkeypatch.setattr(liveness, "PROCESS", Liveness(clock))
    silences: list[float] = []

    class Watched(ClockedBroker):
        def consume(self, queue: str, timeout: float | None = None) -> Iterator[Any]:
            silences.append(liveness.PROCESS.silent_for())
            yield from super().consume(queue, timeout)

    def slow(frame: Any, headers: Any) -> None:  # a batch that takes ten minutes
        clock.sleep(600)

    with MemoryBroker(prefix="t", max_deliveries=3) as broker:
        publish(broker, 2)
        stats = run_worker(
            Watched(broker, clock),
            POINTS,
            slow,
            stop=threading.Event(),
            clock=clock,
            idle_timeout=5,
            poll=1,
        )
    assert stats.acked == 2 and len(silences) >= 3
    assert max(silences) == 0  # each wait for a message starts right after progress
