"""MemoryBroker: the Broker contract, plus what is specific to in-process queues."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from contracts.broker import BrokerAdminContract, BrokerContract, DeadLettersContract, take

from etl4all import broker as broker_role
from etl4all.broker.memory import MemoryBroker
from etl4all.broker.queues import Topology
from etl4all.errors import BrokerConfigError, BrokerError, ConfigError
from etl4all.runners import wiring
from etl4all.settings import Settings


class TestMemoryBroker(BrokerContract, BrokerAdminContract, DeadLettersContract):
    @pytest.fixture
    def broker(self, topology: Topology) -> Iterator[MemoryBroker]:
        with MemoryBroker(prefix=topology.prefix, max_deliveries=topology.max_deliveries) as broker:
            yield broker


@pytest.fixture
def broker() -> Iterator[MemoryBroker]:
    with MemoryBroker(prefix="mem", max_deliveries=2) as broker:
        yield broker


def test_built_from_url_with_options() -> None:
    broker = broker_role.from_url("memory://", prefix="mem", max_deliveries=5)
    assert isinstance(broker, MemoryBroker)
    assert broker.topology == Topology("mem", 5)


def test_is_the_default_broker() -> None:
    settings = Settings(queue_prefix="mem", max_deliveries=4, prefetch=7)
    with wiring.open_broker(settings) as broker:
        assert isinstance(broker, MemoryBroker)
        assert broker.topology == Topology("mem", 4)


def test_an_empty_prefix_is_a_config_error() -> None:
    """The range of ``max_deliveries`` is checked once, by ``Settings``."""
    with pytest.raises(ConfigError, match="prefix"):
        MemoryBroker(prefix="")


def test_settling_twice_raises(broker: MemoryBroker) -> None:
    broker.publish("mem.points", b"x", {})
    (delivery,) = take(broker, "mem.points")
    delivery.ack()
    with pytest.raises(BrokerError, match="already"):
        delivery.reject(requeue=True)


def test_close_requeues_unsettled_deliveries() -> None:
    broker = MemoryBroker(prefix="mem")
    broker.publish("mem.points", b"x", {})
    take(broker, "mem.points")
    assert broker.depth("mem.points") == 0
    broker.close()
    assert broker.depth("mem.points") == 1
    with pytest.raises(BrokerError, match="closed"):
        broker.publish("mem.points", b"y", {})


def test_close_ends_a_waiting_consumer() -> None:
    broker = MemoryBroker(prefix="mem")
    got: list[object] = []
    consumer = threading.Thread(target=lambda: got.extend(broker.consume("mem.points")))
    consumer.start()
    broker.close()
    consumer.join(timeout=5)
    assert not consumer.is_alive()
    assert got == []


def test_consumers_in_threads_share_the_work(broker: MemoryBroker) -> None:
    """Every message is delivered to exactly one of several concurrent consumers."""
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


def test_purge_and_unknown_queue(broker: MemoryBroker) -> None:
    broker.publish(broker.topology.points, b"x", {})
    assert broker.purge("mem.points") == 1
    assert broker.depth("mem.points") == 0
    with pytest.raises(BrokerConfigError, match=r"mem\.points"):
        broker.depth("points")


def test_dead_letter_queue_has_no_delivery_limit(broker: MemoryBroker) -> None:
    broker.publish(broker.topology.dead, b"x", {})
    for _ in range(broker.topology.max_deliveries + 2):
        (delivery,) = take(broker, "mem.dead")
        delivery.reject(requeue=True)
    assert broker.depth("mem.dead") == 1
