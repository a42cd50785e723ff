"""AmqpBroker against the loopback RabbitMQ: the Broker contract, plus its fault handling."""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

import pika
import pika.exceptions
import polars as pl
import pytest
from contracts.broker import (
    BrokerAdminContract,
    BrokerContract,
    DeadLettersContract,
    dead_letter,
    take,
)

from etl4all.broker import amqp_admin, batch
from etl4all.broker.amqp import AmqpBroker
from etl4all.broker.base import DELIVERY_COUNT_HEADER, ERROR_HEADER
from etl4all.broker.dead import everything, matching
from etl4all.broker.queues import Topology
from etl4all.errors import BrokerConfigError, WarehouseError
from etl4all.runners import wiring
from etl4all.settings import Settings
from etl4all.stages.worker import run_worker

pytestmark = pytest.mark.rabbitmq
MakeBroker = Callable[..., AmqpBroker]


def with_query(url: str, query: str) -> str:
    return urlunsplit(urlsplit(url)._replace(query=query))


def delete_topology(url: str, topology: Topology) -> None:
    """Delete a test's queues and exchange whatever state its broker object is in."""
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = conn.channel()
        for spec in topology.queues:
            channel.queue_delete(spec.name)
        channel.exchange_delete(topology.dead_letter_exchange)
    finally:
        conn.close()


def build(url: str, topology: Topology) -> AmqpBroker:
    """An AmqpBroker on ``topology`` with prefetch 1."""
    return AmqpBroker(
        url=url, prefix=topology.prefix, prefetch=1, max_deliveries=topology.max_deliveries
    )


@pytest.fixture
def make_broker(amqp_url: str, topology: Topology) -> Iterator[MakeBroker]:
    """Build AmqpBrokers on the test's topology; close them and delete the queues after."""
    made: list[AmqpBroker] = []

    def make(query: str = "heartbeat=5") -> AmqpBroker:
        made.append(build(with_query(amqp_url, query), topology))
        return made[-1]

    try:
        yield make
    finally:
        for broker in made:
            broker.close()
        delete_topology(amqp_url, topology)


class TestAmqpBroker(BrokerContract, BrokerAdminContract, DeadLettersContract):
    @pytest.fixture
    def broker(self, make_broker: MakeBroker) -> AmqpBroker:
        return make_broker()


@pytest.fixture
def topology(unique: str) -> Topology:
    return Topology(prefix=f"etl4all-test-{unique}", max_deliveries=3)


@pytest.fixture
def points(topology: Topology) -> str:
    return topology.points


def test_built_by_the_wiring_with_the_settings_options(amqp_url: str, topology: Topology) -> None:
    settings = Settings(
        broker_url=amqp_url, queue_prefix=topology.prefix, prefetch=4, max_deliveries=5
    )
    broker = wiring.open_broker(settings)
    try:
        assert isinstance(broker, AmqpBroker)
        assert broker.topology == Topology(topology.prefix, 5)
        assert broker._prefetch == 4
    finally:
        broker.close()
        delete_topology(amqp_url, topology)


def test_queues_are_durable_quorum_and_messages_persistent(
    make_broker: MakeBroker, amqp_url: str, topology: Topology, points: str
) -> None:
    broker = make_broker()
    broker.publish(points, b"keep me", {"batch_id": "p1"})
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = conn.channel()
        _, properties, body = channel.basic_get(points, auto_ack=True)
        assert body == b"keep me"
        assert properties.delivery_mode == 2
        assert properties.message_id == "p1"
        arguments = {
            "x-queue-type": "quorum",
            "x-dead-letter-exchange": f"{topology.prefix}.dlx",
            "x-delivery-limit": topology.max_deliveries,
        }
        channel.queue_declare(points, durable=True, arguments=arguments)  # equivalent: accepted
        with pytest.raises(pika.exceptions.ChannelClosedByBroker, match="inequivalent"):
            channel.queue_declare(points, durable=True, arguments={"x-queue-type": "classic"})
    finally:
        conn.close()


def test_existing_queue_with_other_arguments_is_refused(
    amqp_url: str, topology: Topology, points: str
) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        conn.channel().queue_declare(points, durable=True)  # a classic queue in the way
        with pytest.raises(BrokerConfigError, match="other arguments"):
            build(amqp_url, topology)
    finally:
        conn.close()
        delete_topology(amqp_url, topology)


def test_wrong_password_fails_fast_without_the_password(
    amqp_url: str, topology: Topology, caplog: pytest.LogCaptureFixture
) -> None:
    parts = urlsplit(amqp_url)
    bad = urlunsplit(parts._replace(netloc=f"guest:s3cret-Pw@{parts.hostname}:{parts.port}"))
    with pytest.raises(BrokerConfigError) as info:
        build(bad, topology)
    assert "reconnecting in" not in caplog.text  # one attempt: no backoff, no retry
    assert "s3cret-Pw" not in str(info.value)
    assert "password" in str(info.value)


def test_bad_header_value_fails_in_the_caller(make_broker: MakeBroker, points: str) -> None:
    broker = make_broker()
    with pytest.raises(BrokerConfigError, match="header values"):
        broker.publish(points, b"x", {"ratio": 0.5})
    broker.publish(points, b"x", {"ratio": "0.5"})  # the broker is still usable


def test_heartbeat_survives_a_handler_longer_than_two_heartbeats(
    make_broker: MakeBroker, points: str, caplog: pytest.LogCaptureFixture
) -> None:
    broker = make_broker("heartbeat=2")
    broker.publish(points, b"slow", {"batch_id": "h1"})
    (delivery,) = take(broker, points)
    time.sleep(5.0)  # 2.5 heartbeats with no call into the broker from this thread
    delivery.ack()
    broker.publish(points, b"after", {"batch_id": "h2"})
    (after,) = take(broker, points)
    assert after.body == b"after"
    assert after.redelivered is False
    after.ack()
    assert broker.reconnects == 0
    assert broker.depth(points) == 0


def test_reconnects_after_the_connection_is_killed(
    make_broker: MakeBroker, points: str, topology: Topology, caplog: pytest.LogCaptureFixture
) -> None:
    broker = make_broker("heartbeat=5")
    broker.publish(points, b"in flight", {"batch_id": "r1"})
    (delivery,) = take(broker, points)
    _close_connections(f"etl4all {topology.prefix}")
    deadline = time.monotonic() + 20
    while broker.reconnects == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert broker.reconnects == 1
    with caplog.at_level(logging.WARNING, logger="etl4all.broker.amqp"):
        delivery.ack()  # stale: a logged no-op, never an "unknown delivery tag" crash
    assert "requeued it" in caplog.text
    (again,) = take(broker, points)
    assert (again.body, again.redelivered) == (b"in flight", True)
    again.ack()
    broker.publish(points, b"after", {"batch_id": "r2"})
    (after,) = take(broker, points)
    assert (after.body, after.redelivered) == (b"after", False)
    after.ack()


def test_poison_batch_is_dead_lettered_by_the_worker(
    make_broker: MakeBroker, points: str, topology: Topology
) -> None:
    broker = make_broker()
    frame = pl.DataFrame(
        {
            "source": ["a"],
            "line": [1],
            "latitude": [1.0],
            "longitude": [2.0],
            "distance_km": [None],
            "bearing_deg": [None],
        }
    )
    good, headers = batch.encode(frame, kind="points", batch_id="ok-00000", source="a")
    broker.publish(points, good[:-8] + b"garbage!", headers)
    broker.publish(points, good, headers)
    handled: list[int] = []
    stats = run_worker(
        broker,
        points,
        lambda f, h: handled.append(f.height),
        stop=threading.Event(),
        idle_timeout=1.0,
    )
    assert (stats.acked, stats.dead_lettered, handled) == (1, 1, [1])
    (letter,) = take(broker, topology.dead)
    assert "sha256" in letter.headers[ERROR_HEADER]
    letter.ack()


def test_a_batch_given_back_is_not_counted_as_a_failed_delivery(
    make_broker: MakeBroker, points: str, topology: Topology
) -> None:
    """A stopped worker (bad key, outage at shutdown) never moves a batch towards the dead
    letters, however often it is restarted (issue 8, failure 2)."""
    broker = make_broker()
    broker.publish(points, b"body", {"batch_id": "b-00000"})

    def refuse(_frame: object, _headers: object) -> None:
        raise WarehouseError("Can't connect to MySQL server")

    for _ in range(topology.max_deliveries + 2):
        with pytest.raises(WarehouseError):
            run_worker(
                broker,
                points,
                refuse,
                stop=threading.Event(),
                decode=lambda body, headers: body,
                retry_attempts=1,
                idle_timeout=1.0,
            )
    (delivery,) = take(broker, points)
    assert delivery.body == b"body" and not delivery.redelivered
    assert not delivery.headers.get(DELIVERY_COUNT_HEADER)
    delivery.ack()
    assert take(broker, topology.dead, timeout=0.5) == []


def _close_connections(name: str) -> None:
    """Kill this test's connections from the server side, as a network drop would."""
    listing = subprocess.run(
        ["rabbitmqctl", "-q", "--no-table-headers", "list_connections", "pid", "client_properties"],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    )
    wanted = f'{{"connection_name","{name}"}}'
    pids = [line.split()[0] for line in listing.stdout.splitlines() if wanted in line]
    assert pids, f"no connection named {name!r}"
    for pid in pids:
        subprocess.run(
            ["rabbitmqctl", "-q", "close_connection", pid, "test: simulated drop"],
            check=True,
            capture_output=True,
            timeout=30,
        )


def test_reading_dead_letters_often_keeps_them_and_their_order(
    make_broker: MakeBroker, points: str, topology: Topology
) -> None:
    """RabbitMQ 4 drops a message returned 20 times from a quorum queue without a limit of
    its own; a read republishes a dead letter before its delivery count gets near that."""
    broker = make_broker()
    for name in ("r1", "r2"):
        dead_letter(broker, points, name, "r.txt", "DataError: bad")
    for _ in range(3 * amqp_admin._REFRESH_AFTER):
        assert [letter.batch_id for letter in broker.dead_letters()] == ["r1", "r2"]
    counts = []
    for delivery in broker.consume(topology.dead, timeout=2.0):
        counts.append(int(delivery.headers.get(DELIVERY_COUNT_HEADER, 0)))
        assert delivery.headers[ERROR_HEADER] == "DataError: bad"
        delivery.ack()
        if len(counts) == 2:
            break
    assert len(counts) == 2 and max(counts) <= amqp_admin._REFRESH_AFTER


def test_replay_to_a_deleted_queue_keeps_the_dead_letter(
    make_broker: MakeBroker, amqp_url: str, points: str, topology: Topology
) -> None:
    broker = make_broker()
    dead_letter(broker, points, "g1", "g.txt", "DataError: bad")
    dead_letter(broker, topology.addresses, "g2", "g.txt", "DataError: bad")
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        conn.channel().queue_delete(points)
    finally:
        conn.close()
    with pytest.raises(BrokerConfigError, match="no queue is bound"):
        broker.replay(everything)
    # both stay (in any order: the one the failed replay held went back behind the other)
    assert sorted(letter.batch_id for letter in broker.dead_letters()) == ["g1", "g2"]
    assert broker.replay(matching(batch_ids=["g2"])).sent == {topology.addresses: 1}
    assert [letter.batch_id for letter in broker.dead_letters()] == ["g1"]
