"""In-process broker (``memory://``): thread-safe queues with RabbitMQ's delivery semantics.

URL: ``memory://`` (no query options). Options: ``prefix`` and ``max_deliveries`` (defaults
``Settings``'), as for :class:`~etl4all.broker.amqp.AmqpBroker`. No driver.
Used by embedded mode and the worker-loop tests; messages live as long as the broker object.
How it mirrors RabbitMQ's quorum queues (delivery counts, dead letters, the delivery limit):
docs/backends.md (Broker, queues and dead letters).
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from etl4all.broker.base import (
    BATCH_ID_HEADER,
    DEATH_QUEUE_HEADER,
    DEATH_REASON_HEADER,
    DELIVERY_COUNT_HEADER,
)
from etl4all.broker.dead import DeadLetter, Replayed, Select, buried_headers, replay_headers
from etl4all.broker.queues import Topology
from etl4all.closing import Closing
from etl4all.errors import BrokerConfigError, BrokerError
from etl4all.settings import DEFAULTS

log = logging.getLogger(__name__)


@dataclasses.dataclass
class _Message:
    body: bytes
    headers: dict[str, Any]
    deliveries: int = 0
    """Failed deliveries so far (``x-delivery-count``)."""
    delivered: bool = False


class MemoryDelivery:
    """A message handed out by :meth:`MemoryBroker.consume`; settle it exactly once."""

    def __init__(self, broker: MemoryBroker, queue: str, message: _Message) -> None:
        self._broker = broker
        self._queue = queue
        self._message = message
        self._settled = False
        self.body = message.body
        self.headers = {**message.headers, DELIVERY_COUNT_HEADER: message.deliveries}
        self.redelivered = message.delivered

    def ack(self) -> None:
        """Forget the message.

        Raises:
            BrokerError: already settled (RabbitMQ closes the channel: unknown delivery tag).
        """
        self._settle()
        self._broker._forget(self)

    def reject(self, *, requeue: bool, reason: str | None = None) -> None:
        """Requeue the message, or dead-letter it with ``reason``.

        Raises:
            BrokerError: already settled.
        """
        self._settle()
        if requeue:
            self._broker._requeue(self._queue, self._message, self)
        else:
            self._broker._dead_letter(self._queue, self._message, reason or "rejected", self)

    def _settle(self) -> None:
        if self._settled:
            raise BrokerError(f"delivery from {self._queue} was already acked or rejected")
        self._settled = True


class MemoryBroker(Closing):
    """Thread-safe in-process queues named like the RabbitMQ ones; a context manager."""

    def __init__(
        self,
        *,
        url: str = "memory://",
        prefix: str = DEFAULTS.queue_prefix,
        max_deliveries: int = DEFAULTS.max_deliveries,
    ) -> None:
        """Declare the queues of ``Topology(prefix, max_deliveries)``.

        Raises:
            ConfigError: an empty prefix.
        """
        self.url = url
        self.topology = Topology(prefix, max_deliveries)
        """The queue names and the delivery limit."""
        self._queues: dict[str, collections.deque[_Message]] = {
            spec.name: collections.deque() for spec in self.topology.queues
        }
        self._unacked: set[MemoryDelivery] = set()
        self._consumers: collections.Counter[str] = collections.Counter()
        self._stopped: set[str] = set()
        """Queues whose open ``consume`` iterators end (:meth:`stop_consuming`)."""
        self._cond = threading.Condition()
        self._closed = False

    def publish(self, queue: str, body: bytes, headers: dict[str, Any]) -> None:
        """Append a message to ``queue``.

        Raises:
            BrokerConfigError: ``queue`` is not declared.
            BrokerError: the broker is closed.
        """
        with self._cond:
            self._check_open()
            self._ready(queue).append(_Message(bytes(body), dict(headers)))
            self._cond.notify_all()

    def consume(self, queue: str, *, timeout: float | None = None) -> Iterator[MemoryDelivery]:
        """Deliveries from ``queue`` until ``timeout`` seconds pass without one (None: never).

        Raises:
            BrokerConfigError: ``queue`` is not declared.
        """
        with self._cond:
            self._ready(queue)
            self._consumers[queue] += 1
            self._stopped.discard(queue)
        try:
            yield from self._deliveries(queue, timeout)
        finally:
            with self._cond:
                self._consumers[queue] -= 1

    def _deliveries(self, queue: str, timeout: float | None) -> Iterator[MemoryDelivery]:
        while True:
            with self._cond:
                ready = self._ready(queue)
                deadline = None if timeout is None else time.monotonic() + timeout
                while not ready and not self._closed and queue not in self._stopped:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return
                    self._cond.wait(remaining)
                if self._closed or queue in self._stopped:
                    return
                delivery = MemoryDelivery(self, queue, ready.popleft())
                delivery._message.delivered = True
                self._unacked.add(delivery)
            yield delivery

    def stop_consuming(self, queue: str) -> None:
        """The open ``consume`` iterators of ``queue`` end (a new one starts afresh)."""
        with self._cond:
            self._ready(queue)
            self._stopped.add(queue)
            self._cond.notify_all()

    def consumers(self, queue: str) -> int:
        """Consumers of ``queue`` in this process: its ``consume`` iterators still open."""
        with self._cond:
            return self._consumers[queue]

    def depth(self, queue: str) -> int:
        """Messages ready in ``queue`` (not counting deliveries not yet settled)."""
        with self._cond:
            return len(self._ready(queue))

    def dead_letters(self) -> list[DeadLetter]:
        """The dead letters ready in ``topology.dead``, in order; they stay there."""
        with self._cond:
            return [
                DeadLetter.from_headers(message.headers)
                for message in self._queues[self.topology.dead]
            ]

    def replay(self, select: Select) -> Replayed:
        """Move the ``select``-ed dead letters to the tail of the work queue each died in."""
        replayed = Replayed()
        with self._cond:
            self._check_open()
            letters = self._queues[self.topology.dead]
            kept = []
            for message in letters:
                letter = DeadLetter.from_headers(message.headers)
                queue = replayed.target(letter, select, self.topology.work_queues)
                if queue is None:
                    kept.append(message)
                    continue
                headers = replay_headers(message.headers, letter)
                self._queues[queue].append(_Message(message.body, headers))
                replayed.count(letter, queue)
            letters.clear()
            letters.extend(kept)
            self._cond.notify_all()
        return replayed

    def purge(self, queue: str) -> int:
        """Drop the ready messages of ``queue``; return how many there were."""
        with self._cond:
            ready = self._ready(queue)
            count = len(ready)
            ready.clear()
            return count

    def delete(self) -> None:
        """Drop every message of every queue (the in-process twin of deleting the queues)."""
        with self._cond:
            for ready in self._queues.values():
                ready.clear()

    def close(self) -> None:
        """Requeue unsettled deliveries (as a closed channel does) and stop all consumers."""
        with self._cond:
            for delivery in list(self._unacked):
                delivery._settled = True
                self._requeue(delivery._queue, delivery._message, delivery)
            self._closed = True
            self._cond.notify_all()

    def _ready(self, queue: str) -> collections.deque[_Message]:
        try:
            return self._queues[queue]
        except KeyError:
            raise BrokerConfigError(
                f"no queue {queue!r} (unroutable); known: {', '.join(sorted(self._queues))}"
            ) from None

    def _check_open(self) -> None:
        if self._closed:
            raise BrokerError("the in-process broker is closed")

    def _forget(self, delivery: MemoryDelivery) -> None:
        with self._cond:
            self._unacked.discard(delivery)

    def _requeue(self, queue: str, message: _Message, delivery: MemoryDelivery) -> None:
        with self._cond:
            self._unacked.discard(delivery)
            message.deliveries += 1
            limit = self.topology.max_deliveries
            if queue in self.topology.work_queues and message.deliveries > limit:
                log.error(
                    "batch %s exceeded %d deliveries in %s; dead-lettered",
                    message.headers.get(BATCH_ID_HEADER, "?"),
                    limit,
                    queue,
                )
                headers = {
                    **message.headers,
                    DEATH_REASON_HEADER: "delivery_limit",
                    DEATH_QUEUE_HEADER: queue,
                }
                self._queues[self.topology.dead].append(_Message(message.body, headers))
            else:
                self._queues[queue].appendleft(message)
            self._cond.notify_all()

    def _dead_letter(
        self, queue: str, message: _Message, reason: str, delivery: MemoryDelivery
    ) -> None:
        with self._cond:
            self._unacked.discard(delivery)
            headers = buried_headers(message.headers, queue, reason)
            self._queues[self.topology.dead].append(_Message(message.body, headers))
            self._cond.notify_all()
