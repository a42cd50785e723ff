"""Replaying dead letters: which ones, and the headers they go back with.

:class:`~etl4all.broker.base.DeadLetter` reads what a dead letter's headers tell (its queue,
file, batch, reason, deaths). A replay publishes the same body with the batch headers it had
before it died: everything that dead-lettering and delivery added (``x-death``,
``x-first-death-*``, ``x-last-death-*``, ``x-delivery-count``, ``x-etl4all-error``,
``x-etl4all-queue``) is dropped, and ``x-etl4all-deaths`` keeps how often it died so far, so
a batch that dies again shows it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from etl4all.broker.base import (
    DEATHS_HEADER,
    DELIVERY_COUNT_HEADER,
    ERROR_HEADER,
    QUEUE_HEADER,
    X_DEATH_HEADER,
    DeadLetter,
)

_DEATH_PREFIXES = ("x-first-death-", "x-last-death-")
_DROPPED = frozenset({X_DEATH_HEADER, DELIVERY_COUNT_HEADER, ERROR_HEADER, QUEUE_HEADER})


def everything(_letter: DeadLetter) -> bool:
    """Select every dead letter."""
    return True


class Matching:
    """A :data:`~etl4all.broker.base.Select` of the dead letters of any of ``batch_ids`` and
    any of ``sources`` (empty: any) that remembers which of them it chose, so that a batch id
    or file that matched no dead letter can be named (:meth:`unmatched`)."""

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


def replay_headers(headers: Mapping[str, Any], letter: DeadLetter) -> dict[str, Any]:
    """The headers to publish ``letter`` back with: its own, minus the death and delivery ones."""
    kept = {
        key: value
        for key, value in headers.items()
        if key not in _DROPPED and not key.startswith(_DEATH_PREFIXES)
    }
    return {**kept, DEATHS_HEADER: letter.deaths}
