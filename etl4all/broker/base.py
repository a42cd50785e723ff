"""The Broker role: durable queues of batches between the stages, and the header names.

Every message header that more than one module reads or writes is named here once: the
batch headers (:mod:`etl4all.batch` writes them), the delivery count both brokers keep, and
the headers of a dead letter.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol, Self, runtime_checkable

from etl4all.broker.queues import Topology

BATCH_ID_HEADER = "batch_id"
"""The batch's deterministic id (:func:`etl4all.batch.batch_id`); also the AMQP message id."""
SOURCE_HEADER = "source"
"""The file the batch's rows come from."""
ROWS_HEADER = "rows"
"""The batch's row count."""
SCHEMA_HEADER = "schema"
"""The :data:`etl4all.frames.SCHEMAS` name of the batch's body."""
SHA256_HEADER = "sha256"
"""Hex digest of the body, verified before the body is read."""
PRUNE_LOW_HEADER = "prune_low"
"""A ``prune`` batch's lower key (inclusive; absent: open); see :mod:`etl4all.stages.prune`."""
PRUNE_HIGH_HEADER = "prune_high"
"""A ``prune`` batch's upper key (exclusive; absent: open)."""
DELIVERY_COUNT_HEADER = "x-delivery-count"
"""Failed deliveries so far (RabbitMQ quorum queues; the in-process broker imitates it)."""
ERROR_HEADER = "x-etl4all-error"
"""Header of a dead letter that holds the reason it was rejected."""
QUEUE_HEADER = "x-etl4all-queue"
"""Header of a dead letter that names the queue it was rejected from."""
DEATH_REASON_HEADER = "x-first-death-reason"
"""Set only on a message the broker dead-lettered itself: ``delivery_limit``."""


@runtime_checkable
class Delivery(Protocol):
    """One received message."""

    body: bytes
    headers: dict[str, Any]
    redelivered: bool

    def ack(self) -> None:
        """The message's effect is committed: forget it."""
        ...

    def reject(self, *, requeue: bool, reason: str | None = None) -> None:
        """Give the message back (``requeue``) or dead-letter it with ``reason``."""
        ...


@runtime_checkable
class Broker(Protocol):
    """Publishes and consumes batches on the queues of its :attr:`topology`; a context manager."""

    topology: Topology
    """The queue names (``topology.points``, ``.addresses``, ``.dead``) and delivery limit."""

    def publish(self, queue: str, body: bytes, headers: dict[str, Any]) -> None:
        """Publish persistently; returns only once the broker confirmed the message.

        Raises:
            BrokerConfigError: unroutable (no such queue).
            BrokerError: not confirmed (nacked, connection lost).
        """
        ...

    def consume(self, queue: str, *, timeout: float | None = None) -> Iterator[Delivery]:
        """Deliveries from ``queue``; stops after ``timeout`` idle seconds (None: never)."""
        ...

    def depth(self, queue: str) -> int:
        """Messages ready in ``queue`` (not counting those held unacknowledged)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...

    def __enter__(self) -> Self:
        """Use as a context manager: ``close()`` on exit."""
        ...

    def __exit__(self, *exc: object) -> None:
        """Close."""
        ...
