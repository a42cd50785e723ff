"""The Broker role: durable queues of batches between the stages, and the header names.

Every message header that more than one module reads or writes is named here once: the
batch headers (:mod:`etl4all.broker.batch` writes them), the delivery count both brokers keep, and
the headers of a dead letter, which :class:`DeadLetter` reads.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any, Protocol, Self, runtime_checkable

from etl4all import urls
from etl4all.broker.queues import Topology

log = logging.getLogger(__name__)

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


@dataclasses.dataclass(frozen=True)
class DeadLetter:
    """One dead letter as its headers describe it (values as stored: redact before showing).

    A message reaches the dead-letter queue in one of two ways: a worker rejected it
    (``reject(requeue=False, reason=...)``), and the broker added ``x-etl4all-error`` (the
    reason) and ``x-etl4all-queue``; or the broker dead-lettered it itself after too many
    deliveries: RabbitMQ adds ``x-death`` (a list of ``{queue, reason, count, ...}``, newest
    first), ``x-first-death-queue`` and ``x-first-death-reason: delivery_limit``, the
    in-process broker the last two.
    """

    queue: str | None
    """The work queue it died in; None when no header names one."""
    source: str | None
    """The file its rows come from (``source`` header)."""
    batch_id: str | None
    """Its ``batch_id`` header."""
    rows: int | None
    """Its ``rows`` header."""
    reason: str
    """Why it died: the worker's reason, else the broker's (``delivery_limit``), else ``?``."""
    deaths: int
    """Times it was dead-lettered, this time included."""

    @classmethod
    def from_headers(cls, headers: Mapping[str, Any]) -> DeadLetter:
        """Read a dead letter's headers (either kind of death); odd values never fail it."""
        x_death = _x_death(headers)
        queue = headers.get(QUEUE_HEADER) or headers.get(DEATH_QUEUE_HEADER)
        if not queue and x_death:
            queue = x_death[0].get("queue")
        reason = headers.get(ERROR_HEADER) or headers.get(DEATH_REASON_HEADER) or "?"
        native = sum(_int(entry.get("count")) or 0 for entry in x_death)
        return cls(
            queue=_text(queue),
            source=_text(headers.get(SOURCE_HEADER)),
            batch_id=_text(headers.get(BATCH_ID_HEADER)),
            rows=_int(headers.get(ROWS_HEADER)),
            reason=_text(reason) or "?",
            deaths=(_int(headers.get(DEATHS_HEADER)) or 0) + max(native, 1),
        )

    def shown(self) -> dict[str, Any]:
        """Its fields with every text redacted (:func:`etl4all.urls.redact`), for output."""
        return {
            key: urls.redact(value) if isinstance(value, str) else value
            for key, value in dataclasses.asdict(self).items()
        }


@dataclasses.dataclass
class Replayed:
    """What a replay did."""

    sent: dict[str, int] = dataclasses.field(default_factory=dict)
    """Dead letters sent back, per work queue."""
    stranded: int = 0
    """Selected dead letters left in place: no header names a work queue of this topology."""

    def target(
        self, letter: DeadLetter, select: Select, work_queues: Collection[str]
    ) -> str | None:
        """The work queue to send ``letter`` back to; None to leave it (stranded if selected)."""
        if not select(letter):
            return None
        if letter.queue is None or letter.queue not in work_queues:
            self.stranded += 1
            return None
        return letter.queue

    def count(self, letter: DeadLetter, queue: str) -> None:
        """``letter`` was sent back to ``queue``."""
        self.sent[queue] = self.sent.get(queue, 0) + 1
        log.info(
            "replayed batch %s of %s to %s",
            letter.batch_id,
            urls.redact(str(letter.source)),
            queue,
        )


Select = Callable[[DeadLetter], bool]
"""Chooses the dead letters to replay."""


def _x_death(headers: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    entries = headers.get(X_DEATH_HEADER)
    if not isinstance(entries, list):
        return []
    return [entry for entry in entries if isinstance(entry, Mapping)]


def _int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


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

    def stop_consuming(self, queue: str) -> None:
        """Take no more messages from ``queue``; those held stay held until settled (a
        worker that stops gives back the one it holds, and no other comes to it to be counted
        as a failed delivery when it exits)."""
        ...

    def depth(self, queue: str) -> int:
        """Messages ready in ``queue`` (not counting those held unacknowledged)."""
        ...

    def consumers(self, queue: str) -> int:
        """Consumers attached to ``queue`` now (for status commands)."""
        ...

    def dead_letters(self) -> list[DeadLetter]:
        """The dead letters ready in ``topology.dead``, in queue order; they stay there.

        Raises:
            BrokerError: the connection failed (every dead letter is still in the queue).
        """
        ...

    def replay(self, select: Select) -> Replayed:
        """Move the ``select``-ed dead letters back to the work queue each died in.

        Each is published (confirmed) with its body and :func:`~etl4all.broker.dead.replay_headers`
        before it leaves the dead-letter queue; the rest stay, in order.

        Raises:
            BrokerError: a publish failed; the dead letters not yet sent back stay where they were.
        """
        ...

    def purge(self, queue: str) -> int:
        """Drop the ready messages of ``queue``; return how many there were."""
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
