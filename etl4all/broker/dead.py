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
    Select,
)

_DEATH_PREFIXES = ("x-first-death-", "x-last-death-")
_DROPPED = frozenset({X_DEATH_HEADER, DELIVERY_COUNT_HEADER, ERROR_HEADER, QUEUE_HEADER})


def everything(_letter: DeadLetter) -> bool:
    """Select every dead letter."""
    return True


def matching(batch_ids: Iterable[str] = (), sources: Iterable[str] = ()) -> Select:
    """Select the dead letters of any of ``batch_ids`` and any of ``sources`` (empty: any)."""
    wanted_batches, wanted_sources = frozenset(batch_ids), frozenset(sources)

    def select(letter: DeadLetter) -> bool:
        return (not wanted_batches or letter.batch_id in wanted_batches) and (
            not wanted_sources or letter.source in wanted_sources
        )

    return select


def replay_headers(headers: Mapping[str, Any], letter: DeadLetter) -> dict[str, Any]:
    """The headers to publish ``letter`` back with: its own, minus the death and delivery ones."""
    kept = {
        key: value
        for key, value in headers.items()
        if key not in _DROPPED and not key.startswith(_DEATH_PREFIXES)
    }
    return {**kept, DEATHS_HEADER: letter.deaths}
