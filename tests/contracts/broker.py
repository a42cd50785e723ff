"""The Broker contract: the in-process broker and RabbitMQ pass the same tests.

A backend's test module subclasses :class:`BrokerContract` and overrides the ``broker``
fixture: a broker built with the ``settings`` fixture (a unique queue prefix, prefetch 1,
max_deliveries 3) whose queues are deleted after the test. Brokers also offer ``depth``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import polars as pl
import pytest

from etl4all import batch
from etl4all.broker import queues
from etl4all.broker.base import Broker, Delivery
from etl4all.broker.memory import ERROR_HEADER, QUEUE_HEADER
from etl4all.errors import BrokerError
from etl4all.settings import Settings


def take(broker: Any, queue: str, n: int = 1, *, timeout: float = 5.0) -> list[Delivery]:
    """Up to ``n`` deliveries, waiting at most ``timeout`` idle seconds."""
    out: list[Delivery] = []
    if n == 0:
        return out
    for delivery in broker.consume(queue, timeout=timeout):
        out.append(delivery)
        if len(out) == n:
            break
    return out


class BrokerContract:
    """Publish, consume, ack, requeue, dead letters and the delivery limit."""

    @pytest.fixture
    def settings(self, unique: str) -> Settings:
        return Settings(queue_prefix=f"etl4all-test-{unique}", prefetch=1, max_deliveries=3)

    @pytest.fixture
    def broker(self, settings: Settings) -> Iterator[Any]:
        raise NotImplementedError("a backend's test class provides the broker")

    @pytest.fixture
    def points(self, settings: Settings) -> str:
        return queues.name(settings.queue_prefix, queues.POINTS)

    @pytest.fixture
    def dead(self, settings: Settings) -> str:
        return queues.name(settings.queue_prefix, queues.DEAD)

    def test_satisfies_the_protocol(self, broker: Any) -> None:
        assert isinstance(broker, Broker)

    def test_publish_consume_ack(self, broker: Any, points: str) -> None:
        frame = pl.DataFrame(
            {
                "source": ["São Paulo.txt"],
                "line": [7],
                "latitude": [-30.5],
                "longitude": [-51.2],
                "distance_km": [None],
                "bearing_deg": [1.0],
            }
        )
        body, headers = batch.encode(frame, kind="points", batch_id="abc-00000", source="x.txt")
        broker.publish(points, body, headers)
        broker.publish(points, b"second", {"batch_id": "abc-00001", "rows": 0})
        assert broker.depth(points) == 2
        (first,) = take(broker, points)
        assert first.body == body
        assert {k: first.headers[k] for k in headers} == headers
        assert first.redelivered is False
        assert batch.decode(first.body, first.headers).equals(batch.decode(body, headers))
        first.ack()
        (second,) = take(broker, points)  # prefetch 1: comes only after the first is acked
        assert (second.body, second.headers["batch_id"]) == (b"second", "abc-00001")
        second.ack()
        assert broker.depth(points) == 0
        assert take(broker, points, timeout=0.3) == []

    def test_consume_stops_after_idle_timeout(self, broker: Any, points: str) -> None:
        started = time.monotonic()
        assert take(broker, points, timeout=0.3) == []
        assert time.monotonic() - started < 3

    def test_reject_with_requeue_redelivers(self, broker: Any, points: str, dead: str) -> None:
        broker.publish(points, b"again", {"batch_id": "b1"})
        (first,) = take(broker, points)
        first.reject(requeue=True)
        (second,) = take(broker, points)
        assert second.body == b"again"
        assert second.redelivered is True
        assert second.headers["x-delivery-count"] == 1
        second.ack()
        assert broker.depth(points) == 0
        assert broker.depth(dead) == 0

    def test_reject_without_requeue_dead_letters_with_reason(
        self, broker: Any, points: str, dead: str
    ) -> None:
        broker.publish(points, b"poison", {"batch_id": "b2", "rows": 5})
        (delivery,) = take(broker, points)
        delivery.reject(requeue=False, reason="DataError: body sha256 does not match")
        assert broker.depth(points) == 0
        (letter,) = take(broker, dead)
        assert letter.body == b"poison"
        assert letter.headers["batch_id"] == "b2"
        assert letter.headers["rows"] == 5
        assert letter.headers[ERROR_HEADER] == "DataError: body sha256 does not match"
        assert letter.headers[QUEUE_HEADER] == points
        letter.ack()

    def test_unroutable_publish_raises(self, broker: Any, settings: Settings) -> None:
        with pytest.raises(BrokerError, match="nowhere"):
            broker.publish(f"{settings.queue_prefix}.nowhere", b"x", {"batch_id": "b3"})

    def test_delivery_limit_dead_letters(
        self, broker: Any, points: str, dead: str, settings: Settings
    ) -> None:
        """Like RabbitMQ's x-delivery-limit: the (limit+1)th failure dead-letters."""
        broker.publish(points, b"crashy", {"batch_id": "b4"})
        counts = []
        while deliveries := take(broker, points, timeout=1.0):
            counts.append(deliveries[0].headers.get("x-delivery-count", 0))
            deliveries[0].reject(requeue=True)
            assert len(counts) <= 10
        assert counts == list(range(settings.max_deliveries + 1))
        (letter,) = take(broker, dead)
        assert letter.body == b"crashy"
        assert letter.headers["x-first-death-reason"] == "delivery_limit"
        letter.ack()

    def test_messages_stay_in_order(self, broker: Any, points: str) -> None:
        for i in range(5):
            broker.publish(points, str(i).encode(), {"batch_id": f"o{i}"})
        got = []
        for delivery in broker.consume(points, timeout=2.0):
            got.append(delivery.body)
            delivery.ack()
            if len(got) == 5:
                break
        assert got == [b"0", b"1", b"2", b"3", b"4"]
