"""Dead letters: the :class:`DeadLetters` role and what every broker shares about them.

A message reaches the dead-letter queue ``{prefix}.dead`` in one of two ways: a worker
rejected it (``reject(requeue=False, reason=...)``) and the broker buried it with
:func:`buried_headers`; or the broker dead-lettered it itself after too many deliveries
(RabbitMQ's ``x-death`` and ``x-first-death-*``; the in-process broker imitates the latter).
:class:`DeadLetter` reads either kind from its headers.

A replay publishes the same body with the batch headers it had before it died
(:func:`replay_headers`): everything dead-lettering and delivery added is dropped, and
``x-etl4all-deaths`` keeps how often it died so far, so a batch that dies again shows it. The
backend-specific parts (how a broker takes, returns and republishes them) stay in each broker:
:mod:`etl4all.broker.memory`, :mod:`etl4all.broker.amqp` (burying) and
:mod:`etl4all.broker.amqp_admin` (reading, replaying).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

from etl4all import urls
from etl4all.broker.base import (
    BATCH_ID_HEADER,
    DEATH_QUEUE_HEADER,
    DEATH_REASON_HEADER,
    DEATHS_HEADER,
    DELIVERY_COUNT_HEADER,
    ERROR_HEADER,
    QUEUE_HEADER,
    ROWS_HEADER,
    SOURCE_HEADER,
    X_DEATH_HEADER,
)
from etl4all.broker.queues import Topology
from etl4all.closing import Closes

log = logging.getLogger(__name__)

_DEATH_PREFIXES = ("x-first-death-", "x-last-death-")
_DROPPED = frozenset({X_DEATH_HEADER, DELIVERY_COUNT_HEADER, ERROR_HEADER, QUEUE_HEADER})


@dataclasses.dataclass(frozen=True)
class DeadLetter:
    """One dead letter as its headers describe it (values as stored: redact before showing).

    A worker's dead letter carries ``x-etl4all-error`` (the reason) and ``x-etl4all-queue``;
    one the broker dead-lettered itself carries ``x-first-death-queue`` and
    ``x-first-death-reason: delivery_limit``, and on RabbitMQ ``x-death`` (a list of
    ``{queue, reason, count, ...}``, newest first).
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


Select = Callable[[DeadLetter], bool]
"""Chooses the dead letters to replay."""


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


@runtime_checkable
class DeadLetters(Closes, Protocol):
    """The dead letters of a broker's :attr:`topology`, for the operator: read and replay."""

    topology: Topology
    """The queue names: the dead letters wait in ``topology.dead``."""

    def dead_letters(self) -> list[DeadLetter]:
        """The dead letters ready in ``topology.dead``, in queue order; they stay there.

        Raises:
            BrokerError: the connection failed (every dead letter is still in the queue).
        """
        ...

    def replay(self, select: Select) -> Replayed:
        """Move the ``select``-ed dead letters back to the work queue each died in.

        Each is published (confirmed) with its body and :func:`replay_headers` before it
        leaves the dead-letter queue; the rest stay, in order.

        Raises:
            BrokerError: a publish failed; the dead letters not yet sent back stay where they were.
        """
        ...


def everything(_letter: DeadLetter) -> bool:
    """Select every dead letter."""
    return True


class Matching:
    """A :data:`Select` of the dead letters of any of ``batch_ids`` and any of ``sources``
    (empty: any) that remembers which of them it chose, so that a batch id or file that
    matched no dead letter can be named (:meth:`unmatched`)."""

    def __init__(self, batch_ids: Iterable[str] = (), sources: Iterable[str] = ()) -> None:
        self.batch_ids, self.sources = frozenset(batch_ids), frozenset(sources)
        self._chosen: list[DeadLetter] = []

    def __call__(self, letter: DeadLetter) -> bool:
        chosen = (not self.batch_ids or letter.batch_id in self.batch_ids) and (
            not self.sources or letter.source in self.sources
        )
        if chosen:
            self._chosen.append(letter)
        return chosen

    def unmatched(self) -> list[str]:
        """The batch ids and files asked for that no chosen dead letter has, e.g.
        ``batch id nosuch``."""
        batches = {letter.batch_id for letter in self._chosen}
        sources = {letter.source for letter in self._chosen}
        return [f"batch id {b}" for b in sorted(self.batch_ids - batches)] + [
            f"file {s}" for s in sorted(self.sources - sources)
        ]


def matching(batch_ids: Iterable[str] = (), sources: Iterable[str] = ()) -> Matching:
    """Select the dead letters of any of ``batch_ids`` and any of ``sources`` (empty: any)."""
    return Matching(batch_ids, sources)


def buried_headers(headers: Mapping[str, Any], queue: str, reason: str) -> dict[str, Any]:
    """The headers a worker's dead letter of ``queue`` is stored with: its own (without the
    delivery count, which the dead-letter queue keeps afresh), ``reason`` and ``queue``."""
    kept = {key: value for key, value in headers.items() if key != DELIVERY_COUNT_HEADER}
    return {**kept, ERROR_HEADER: reason, QUEUE_HEADER: queue}


def replay_headers(headers: Mapping[str, Any], letter: DeadLetter) -> dict[str, Any]:
    """The headers to publish ``letter`` back with: its own, minus the death and delivery ones."""
    kept = {
        key: value
        for key, value in headers.items()
        if key not in _DROPPED and not key.startswith(_DEATH_PREFIXES)
    }
    return {**kept, DEATHS_HEADER: letter.deaths}


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
