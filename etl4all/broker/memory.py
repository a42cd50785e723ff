"""In-process broker (``memory://``): thread-safe queues with RabbitMQ's delivery semantics.

URL: ``memory://`` (no options). Settings read: ``queue_prefix``, ``max_deliveries``.
No driver. Used by embedded mode and by the worker-loop tests; messages live only as long
as the broker object.

It declares the same queues as :class:`etl4all.broker.amqp.AmqpBroker` and behaves like
its quorum queues:

- publishing to a queue that was not declared raises :class:`~etl4all.errors.BrokerError`
  (RabbitMQ returns such a message as unroutable);
- every delivery carries ``x-delivery-count`` (failed deliveries so far); a requeued message
  comes back first with ``redelivered=True``;
- ``reject(requeue=False, reason=...)`` moves the message to ``{prefix}.dead`` with the reason
  in ``x-etl4all-error`` and the origin queue in ``x-etl4all-queue``;
- a message requeued more than ``max_deliveries`` times (RabbitMQ's ``x-delivery-limit``) is
  dead-lettered with ``x-first-death-reason: delivery_limit``;
- deliveries not settled when the broker closes are requeued, as when a channel closes.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from etl4all.broker import queues
from etl4all.closing import Closing
from etl4all.errors import BrokerError
from etl4all.settings import Settings

log = logging.getLogger(__name__)

ERROR_HEADER = "x-etl4all-error"
"""Header of a dead letter that holds the reason it was rejected."""
QUEUE_HEADER = "x-etl4all-queue"
"""Header of a dead letter that names the queue it was rejected from."""


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
        self.headers = {**message.headers, "x-delivery-count": message.deliveries}
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

    def __init__(self, *, url: str = "memory://", settings: Settings) -> None:
        """Declare ``{prefix}.points``, ``{prefix}.addresses`` and ``{prefix}.dead``."""
        self.url = url
        self._limit = settings.max_deliveries
        self._dead = queues.name(settings.queue_prefix, queues.DEAD)
        names = [queues.name(settings.queue_prefix, q) for q in (queues.POINTS, queues.ADDRESSES)]
        self._queues: dict[str, collections.deque[_Message]] = {
            name: collections.deque() for name in [*names, self._dead]
        }
        self._unacked: set[MemoryDelivery] = set()
        self._cond = threading.Condition()
        self._closed = False

    def publish(self, queue: str, body: bytes, headers: dict[str, Any]) -> None:
        """Append a message to ``queue``.

        Raises:
            BrokerError: ``queue`` is not declared, or the broker is closed.
        """
        with self._cond:
            self._check_open()
            self._ready(queue).append(_Message(bytes(body), dict(headers)))
            self._cond.notify_all()

    def consume(self, queue: str, *, timeout: float | None = None) -> Iterator[MemoryDelivery]:
        """Deliveries from ``queue`` until ``timeout`` seconds pass without one (None: never).

        Raises:
            BrokerError: ``queue`` is not declared.
        """
        while True:
            with self._cond:
                ready = self._ready(queue)
                deadline = None if timeout is None else time.monotonic() + timeout
                while not ready and not self._closed:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return
                    self._cond.wait(remaining)
                if self._closed:
                    return
                delivery = MemoryDelivery(self, queue, ready.popleft())
                delivery._message.delivered = True
                self._unacked.add(delivery)
            yield delivery

    def depth(self, queue: str) -> int:
        """Messages ready in ``queue`` (not counting deliveries not yet settled)."""
        with self._cond:
            return len(self._ready(queue))

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
            raise BrokerError(
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
            if queue != self._dead and message.deliveries > self._limit:
                log.error(
                    "batch %s exceeded %d deliveries in %s; dead-lettered",
                    message.headers.get("batch_id", "?"),
                    self._limit,
                    queue,
                )
                headers = {**message.headers, "x-first-death-reason": "delivery_limit"}
                self._queues[self._dead].append(_Message(message.body, headers))
            else:
                self._queues[queue].appendleft(message)
            self._cond.notify_all()

    def _dead_letter(
        self, queue: str, message: _Message, reason: str, delivery: MemoryDelivery
    ) -> None:
        with self._cond:
            self._unacked.discard(delivery)
            headers = {
                **message.headers,
                ERROR_HEADER: reason,
                QUEUE_HEADER: queue,
                "x-first-death-reason": "rejected",
            }
            self._queues[self._dead].append(_Message(message.body, headers))
            self._cond.notify_all()
