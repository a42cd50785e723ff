"""The broker contracts, one per role: the in-process broker and RabbitMQ pass the same tests.

:class:`BrokerContract` checks the data path (:class:`~etl4all.broker.base.Broker`),
:class:`BrokerAdminContract` the operator's path (:class:`~etl4all.broker.base.BrokerAdmin`)
and :class:`DeadLettersContract` the dead letters (:class:`~etl4all.broker.dead.DeadLetters`).
A backend's test class subclasses each role it implements and overrides the ``broker``
fixture: a broker on the ``topology`` fixture (a unique queue prefix, max_deliveries 3; for
RabbitMQ prefetch 1) whose queues are deleted after the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import polars as pl
import pytest

from etl4all.broker import batch
from etl4all.broker import dead as dead_letters
from etl4all.broker.base import (
    BATCH_ID_HEADER,
    DEATH_QUEUE_HEADER,
    DEATH_REASON_HEADER,
    DEATHS_HEADER,
    DELIVERY_COUNT_HEADER,
    ERROR_HEADER,
    QUEUE_HEADER,
    Broker,
    BrokerAdmin,
    Delivery,
)
from etl4all.broker.dead import DeadLetter, DeadLetters, Replayed
from etl4all.broker.queues import Topology
from etl4all.errors import BrokerConfigError


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


def dead_letter(broker: Any, queue: str, batch_id: str, source: str, reason: str) -> bytes:
    """Publish a batch to ``queue``, take it and reject it with ``reason``; its body."""
    body = f"body of {batch_id}".encode()
    broker.publish(queue, body, {"batch_id": batch_id, "source": source, "rows": 7})
    (delivery,) = take(broker, queue)
    assert delivery.headers["batch_id"] == batch_id
    delivery.reject(requeue=False, reason=reason)
    return body


def hold_one_of_three(broker: Any, queue: str) -> tuple[Iterator[Delivery], Delivery]:
    """Publish three messages to ``queue`` and take the first: the open consumer and the
    delivery it holds (the other two wait in the queue)."""
    for n in range(3):
        broker.publish(queue, f"m{n}".encode(), {"batch_id": f"b-{n}"})
    deliveries = broker.consume(queue, timeout=1.0)
    return deliveries, next(deliveries)


def exhaust(broker: Any, queue: str, limit: int) -> None:
    """Requeue the one message of ``queue`` until the broker dead-letters it itself."""
    for _ in range(limit + 1):
        (delivery,) = take(broker, queue)
        delivery.reject(requeue=True)
    assert take(broker, queue, timeout=0.5) == []


class BrokerFixtures:
    """The fixtures every broker contract shares."""

    @pytest.fixture
    def topology(self, unique: str) -> Topology:
        return Topology(prefix=f"etl4all-test-{unique}", max_deliveries=3)

    @pytest.fixture
    def broker(self, topology: Topology) -> Iterator[Any]:
        raise NotImplementedError("a backend's test class provides the broker")

    @pytest.fixture
    def points(self, topology: Topology) -> str:
        return topology.points

    @pytest.fixture
    def dead(self, topology: Topology) -> str:
        return topology.dead


class BrokerContract(BrokerFixtures):
    """The data path: publish, consume, ack, requeue, dead-lettering and the delivery limit."""

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

    def test_a_consumer_stopped_gets_nothing_more_and_settles_what_it_holds(
        self, broker: Any, points: str
    ) -> None:
        deliveries, held = hold_one_of_three(broker, points)
        broker.stop_consuming(points)
        held.ack()  # still settles
        assert list(deliveries) == []  # nothing more came to this consumer
        assert broker.depth(points) == 2  # the others wait in the queue, never delivered

    @pytest.mark.timeout(60)  # a consume that ignores its idle timeout never returns
    def test_consume_stops_after_idle_timeout(self, broker: Any, points: str) -> None:
        assert take(broker, points, timeout=0.3) == []

    def test_reject_with_requeue_redelivers(self, broker: Any, points: str, dead: str) -> None:
        broker.publish(points, b"again", {"batch_id": "b1"})
        (first,) = take(broker, points)
        first.reject(requeue=True)
        (second,) = take(broker, points)
        assert second.body == b"again"
        assert second.redelivered is True
        assert second.headers[DELIVERY_COUNT_HEADER] == 1
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
        assert letter.headers[BATCH_ID_HEADER] == "b2"
        assert letter.headers["rows"] == 5
        assert letter.headers[ERROR_HEADER] == "DataError: body sha256 does not match"
        assert letter.headers[QUEUE_HEADER] == points
        assert DEATH_REASON_HEADER not in letter.headers
        letter.ack()

    def test_unroutable_publish_is_a_config_error(self, broker: Any, topology: Topology) -> None:
        with pytest.raises(BrokerConfigError, match="nowhere") as info:
            broker.publish(f"{topology.prefix}.nowhere", b"x", {"batch_id": "b3"})
        assert info.value.retryable is False

    def test_delivery_limit_dead_letters(
        self, broker: Any, points: str, dead: str, topology: Topology
    ) -> None:
        """Like RabbitMQ's x-delivery-limit: the (limit+1)th failure dead-letters."""
        broker.publish(points, b"crashy", {"batch_id": "b4"})
        counts = []
        while deliveries := take(broker, points, timeout=1.0):
            counts.append(deliveries[0].headers.get(DELIVERY_COUNT_HEADER, 0))
            deliveries[0].reject(requeue=True)
            assert len(counts) <= 10
        assert counts == list(range(topology.max_deliveries + 1))
        (letter,) = take(broker, dead)
        assert letter.body == b"crashy"
        assert letter.headers[DEATH_REASON_HEADER] == "delivery_limit"
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


class BrokerAdminContract(BrokerFixtures):
    """The operator's path: queue depths, consumers and purge."""

    def test_satisfies_the_admin_protocol(self, broker: Any) -> None:
        assert isinstance(broker, BrokerAdmin)

    def test_holds_the_topology_it_was_built_with(self, broker: Any, topology: Topology) -> None:
        assert broker.topology == topology
        for spec in topology.queues:
            assert broker.depth(spec.name) == 0

    def test_counts_what_waits_and_who_consumes_and_purges_what_waits(
        self, broker: Any, points: str
    ) -> None:
        _, held = hold_one_of_three(broker, points)
        assert (broker.depth(points), broker.consumers(points)) == (2, 1)
        assert broker.purge(points) == 2  # only the ready ones: the held one stays held
        held.ack()
        assert broker.depth(points) == 0


class DeadLettersContract(BrokerFixtures):
    """The dead letters: read, replayed, purged."""

    def test_satisfies_the_dead_letters_protocol(self, broker: Any) -> None:
        assert isinstance(broker, DeadLetters)

    def test_dead_letters_are_read_and_left_in_place(
        self, broker: Any, points: str, dead: str, topology: Topology
    ) -> None:
        for i in range(3):
            dead_letter(broker, points, f"d{i}", f"f{i}.txt", f"DataError: bad {i}")
        dead_letter(broker, topology.addresses, "a0", "g.txt", "bug: KeyError: 'city'")
        first = broker.dead_letters()
        assert broker.dead_letters() == first
        assert [letter.batch_id for letter in first] == ["d0", "d1", "d2", "a0"]
        assert first[1] == DeadLetter(
            queue=points,
            source="f1.txt",
            batch_id="d1",
            rows=7,
            reason="DataError: bad 1",
            deaths=1,
        )
        assert first[3].queue == topology.addresses
        assert broker.depth(dead) == 4
        order = []
        for delivery in broker.consume(dead, timeout=2.0):
            order.append(delivery.headers["batch_id"])
            delivery.ack()
            if len(order) == 4:
                break
        assert order == ["d0", "d1", "d2", "a0"]

    def test_replay_sends_the_selected_back_with_their_batch_headers(
        self, broker: Any, points: str, dead: str, topology: Topology
    ) -> None:
        body = dead_letter(broker, points, "b1", "x.txt", "WarehouseError after 3 tries: down")
        dead_letter(broker, points, "b2", "y.txt", "DataError: bad")
        dead_letter(broker, topology.addresses, "b3", "x.txt", "DataError: bad")
        replayed = broker.replay(dead_letters.matching(sources=["x.txt"]))
        assert replayed == Replayed(sent={points: 1, topology.addresses: 1})
        assert [letter.batch_id for letter in broker.dead_letters()] == ["b2"]
        (back,) = take(broker, points)
        assert back.body == body
        assert {k: back.headers[k] for k in ("batch_id", "source", "rows")} == {
            "batch_id": "b1",
            "source": "x.txt",
            "rows": 7,
        }
        assert ERROR_HEADER not in back.headers and QUEUE_HEADER not in back.headers
        assert not any(key.startswith(("x-death", "x-first-death")) for key in back.headers)
        assert back.headers.get(DELIVERY_COUNT_HEADER, 0) == 0
        assert back.headers[DEATHS_HEADER] == 1
        back.reject(requeue=False, reason="DataError: still bad")
        letters = {letter.batch_id: letter for letter in broker.dead_letters()}
        assert (letters["b1"].deaths, letters["b1"].reason) == (2, "DataError: still bad")
        assert letters["b2"].deaths == 1
        (other,) = take(broker, topology.addresses)
        assert other.headers["batch_id"] == "b3"
        other.ack()

    def test_replay_names_what_it_was_asked_for_and_did_not_find(
        self, broker: Any, points: str
    ) -> None:
        """Issue 17: `replay --batch nosuch` said nothing and exited 0."""
        dead_letter(broker, points, "b1", "x.txt", "DataError: bad")
        chosen = dead_letters.matching(batch_ids=["b1", "nosuch"], sources=["x.txt", "no.txt"])
        assert broker.replay(chosen).sent == {points: 1}
        assert chosen.unmatched() == ["batch id nosuch", "file no.txt"]
        take(broker, points)[0].ack()

    def test_replay_of_a_message_the_broker_dead_lettered(
        self, broker: Any, points: str, topology: Topology
    ) -> None:
        broker.publish(points, b"crashy", {"batch_id": "c1", "source": "c.txt"})
        exhaust(broker, points, topology.max_deliveries)
        (letter,) = broker.dead_letters()
        assert (letter.queue, letter.reason, letter.deaths) == (points, "delivery_limit", 1)
        assert broker.replay(dead_letters.everything).sent == {points: 1}
        (back,) = take(broker, points)
        assert back.body == b"crashy"
        assert back.headers.get(DELIVERY_COUNT_HEADER, 0) == 0
        assert DEATH_REASON_HEADER not in back.headers and DEATH_QUEUE_HEADER not in back.headers
        back.ack()
        assert broker.dead_letters() == []

    def test_replay_leaves_a_dead_letter_whose_queue_is_unknown(
        self, broker: Any, dead: str
    ) -> None:
        broker.publish(dead, b"orphan", {"batch_id": "o1", "source": "o.txt", "rows": "many"})
        (letter,) = broker.dead_letters()
        assert (letter.queue, letter.reason, letter.rows) == (None, "?", None)
        assert broker.replay(dead_letters.everything) == Replayed(stranded=1)
        assert broker.replay(dead_letters.matching(batch_ids=["zz"])) == Replayed()
        assert broker.depth(dead) == 1

    def test_purge_drops_the_dead_letters(self, broker: Any, points: str, dead: str) -> None:
        dead_letter(broker, points, "p1", "p.txt", "DataError: bad")
        dead_letter(broker, points, "p2", "p.txt", "DataError: bad")
        assert broker.purge(dead) == 2
        assert broker.dead_letters() == []
        assert broker.depth(points) == 0
