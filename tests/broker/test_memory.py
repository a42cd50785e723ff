"""MemoryBroker: the Broker contract, plus what is specific to in-process queues."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from contracts.broker import BrokerContract, take

from etl4all import broker as broker_role
from etl4all.broker import queues
from etl4all.broker.memory import MemoryBroker
from etl4all.errors import BrokerError
from etl4all.settings import Settings


class TestMemoryBroker(BrokerContract):
    @pytest.fixture
    def broker(self, settings: Settings) -> Iterator[MemoryBroker]:
        with MemoryBroker(settings=settings) as broker:
            yield broker


@pytest.fixture
def settings() -> Settings:
    return Settings(queue_prefix="mem", max_deliveries=2)


def test_is_the_default_broker(settings: Settings) -> None:
    assert isinstance(broker_role.from_settings(settings), MemoryBroker)


def test_settling_twice_raises(settings: Settings) -> None:
    with MemoryBroker(settings=settings) as broker:
        broker.publish("mem.points", b"x", {})
        (delivery,) = take(broker, "mem.points")
        delivery.ack()
        with pytest.raises(BrokerError, match="already"):
            delivery.reject(requeue=True)


def test_close_requeues_unsettled_deliveries(settings: Settings) -> None:
    broker = MemoryBroker(settings=settings)
    broker.publish("mem.points", b"x", {})
    take(broker, "mem.points")
    assert broker.depth("mem.points") == 0
    broker.close()
    assert broker.depth("mem.points") == 1
    with pytest.raises(BrokerError, match="closed"):
        broker.publish("mem.points", b"y", {})


def test_close_ends_a_waiting_consumer(settings: Settings) -> None:
    broker = MemoryBroker(settings=settings)
    got: list[object] = []
    consumer = threading.Thread(target=lambda: got.extend(broker.consume("mem.points")))
    consumer.start()
    broker.close()
    consumer.join(timeout=5)
    assert not consumer.is_alive()
    assert got == []


def test_consumers_in_threads_share_the_work(settings: Settings) -> None:
    """Every message is delivered to exactly one of several concurrent consumers."""
    with MemoryBroker(settings=settings) as broker:
        seen: list[bytes] = []
        lock = threading.Lock()

        def consume() -> None:
            for delivery in broker.consume("mem.addresses", timeout=0.3):
                with lock:
                    seen.append(delivery.body)
                delivery.ack()

        threads = [threading.Thread(target=consume) for _ in range(4)]
        for thread in threads:
            thread.start()
        for i in range(2000):
            broker.publish("mem.addresses", str(i).encode(), {})
        for thread in threads:
            thread.join(timeout=10)
        assert sorted(seen, key=int) == [str(i).encode() for i in range(2000)]


def test_purge_and_unknown_queue(settings: Settings) -> None:
    with MemoryBroker(settings=settings) as broker:
        broker.publish(queues.name("mem", queues.POINTS), b"x", {})
        assert broker.purge("mem.points") == 1
        assert broker.depth("mem.points") == 0
        with pytest.raises(BrokerError, match=r"mem\.points"):
            broker.depth("points")
