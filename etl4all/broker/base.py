"""The broker roles: durable queues of batches between the stages, and the header names.

:class:`Broker` is the data path (publish, consume; :class:`Delivery` acks or rejects), what
the stages and drivers use; :class:`BrokerAdmin` is the operator's path (queue depths and
consumers, purge). The third role, :class:`~etl4all.broker.dead.DeadLetters`, lives with the
rest of the dead-letter logic; :class:`etl4all.broker.BrokerBackend` is all three, as the
wiring opens it.

Every message header that more than one module reads or writes is named here once: the
batch headers (:mod:`etl4all.broker.batch` writes them), the delivery count both brokers keep, and
the headers of a dead letter, which :class:`~etl4all.broker.dead.DeadLetter` reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

from etl4all.broker.queues import Topology
from etl4all.closing import Closes

MAX_BYTES = 8 * 1024 * 1024
"""Default upper bound of an encoded message body (half of RabbitMQ 4's 16 MiB limit)."""

BATCH_ID_HEADER = "batch_id"
"""The batch's deterministic id (:func:`~etl4all.broker.batch.batch_id`); the AMQP message id."""
SOURCE_HEADER = "source"
"""The file the batch's rows come from."""
ROWS_HEADER = "rows"
"""The batch's row count."""
SCHEMA_HEADER = "schema"
"""The :data:`etl4all.frames.SCHEMAS` name of the batch's body."""
SHA256_HEADER = "sha256"
"""Hex digest of the body, verified before the body is read."""
VERSION_HEADER = "version"
"""The version of the file the batch belongs to (:mod:`etl4all.stages.filework`); absent in
batches of older workers (loaded as of the file's current version)."""
PRUNE_LOW_HEADER = "prune_low"
"""A ``prune`` batch's lower key (inclusive; absent: open); see :mod:`etl4all.stages.prune`."""
PRUNE_HIGH_HEADER = "prune_high"
"""A ``prune`` batch's upper key (exclusive; absent: open)."""
REVERT_TO_HEADER = "revert_to"
"""A ``revert`` message's version to keep (see :class:`etl4all.stages.prune.Revert`)."""
DELIVERY_COUNT_HEADER = "x-delivery-count"
"""Failed deliveries so far (RabbitMQ quorum queues; the in-process broker imitates it)."""
ERROR_HEADER = "x-etl4all-error"
"""Header of a dead letter that holds the reason it was rejected."""
QUEUE_HEADER = "x-etl4all-queue"
"""Header of a dead letter that names the queue it was rejected from."""
DEATH_REASON_HEADER = "x-first-death-reason"
"""Set only on a message the broker dead-lettered itself: ``delivery_limit``."""
DEATH_QUEUE_HEADER = "x-first-death-queue"
"""Set only on a message the broker dead-lettered itself: the queue it died in."""
DEATHS_HEADER = "x-etl4all-deaths"
"""Times a replayed message was dead-lettered before (set by a replay)."""
X_DEATH_HEADER = "x-death"
"""RabbitMQ's record of a message's deaths: ``{queue, reason, count, ...}`` per queue."""


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
class Broker(Closes, Protocol):
    """The data path: publishes and consumes batches on the queues of its :attr:`topology`."""

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

    def stop_consuming(self, queue: str) -> None:
        """Take no more messages from ``queue``; those held stay held until settled (a
        worker that stops gives back the one it holds, and no other comes to it to be counted
        as a failed delivery when it exits)."""
        ...


@runtime_checkable
class BrokerAdmin(Closes, Protocol):
    """The operator's path: the queues of :attr:`topology` counted and emptied."""

    topology: Topology
    """The queue names (``topology.points``, ``.addresses``, ``.dead``) and delivery limit."""

    def depth(self, queue: str) -> int:
        """Messages ready in ``queue`` (not counting those held unacknowledged)."""
        ...

    def consumers(self, queue: str) -> int:
        """Consumers attached to ``queue`` now (for status commands)."""
        ...

    def purge(self, queue: str) -> int:
        """Drop the ready messages of ``queue``; return how many there were."""
        ...
