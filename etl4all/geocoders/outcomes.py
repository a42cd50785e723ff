"""What one run of the HTTP runner collects: each key's outcome, its counters, and the
answers handed to ``on_results`` as they arrive (:data:`FLUSH_SECONDS`, :data:`FLUSH_ROWS`)."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
from datetime import UTC, datetime
from typing import Any

import polars as pl

from etl4all import liveness
from etl4all.errors import GeocodeError
from etl4all.geocoders.base import FAILED_SCHEMA, RESULT_SCHEMA, ResultSink

FLUSH_SECONDS = 0.25
"""Seconds: answers wait at most this long before they are handed to ``on_results``."""
FLUSH_ROWS = 200
"""Answers handed to ``on_results`` at once when they arrive faster."""


@dataclasses.dataclass(frozen=True)
class Failed:
    """A key the provider refused for good (e.g. ``INVALID_REQUEST``): it becomes a reject."""

    reason: str
    """Short machine-readable reason, e.g. ``invalid_request``."""
    text: str
    """What the provider said."""


Outcome = dict[str, Any] | Failed
"""What one response maps to: an address row (``GEOCODE_SCHEMA`` fields except ``geocoder``
and ``geocoded_at``) or a :class:`Failed`."""


class RunState:
    """Counters and output columns of one run (one event loop: no locking needed)."""

    def __init__(self, on_results: ResultSink | None = None) -> None:
        self.calls = 0
        self.retries = 0
        self.rate_limited = 0
        self.retried_keys = 0
        self.causes: collections.Counter[str] = collections.Counter()
        self.fatal: GeocodeError | None = None
        """The error that aborts the run, once one came."""
        self.columns: dict[str, list[Any]] = {name: [] for name in RESULT_SCHEMA}
        self.failed: dict[str, list[Any]] = {name: [] for name in FAILED_SCHEMA}
        self._on_results = on_results
        self._flushed = 0

    async def flush_every(self, seconds: float) -> None:
        """Hand new answers to ``on_results`` every ``seconds``, until cancelled."""
        while self._on_results is not None:
            await asyncio.sleep(seconds)
            self.flush()

    def flush(self) -> None:
        """Hand the answers not handed yet to ``on_results``."""
        end = len(self.columns["latitude"])
        if self._on_results is None or end == self._flushed:
            return
        rows = {name: values[self._flushed : end] for name, values in self.columns.items()}
        self._on_results(pl.DataFrame(rows, schema=RESULT_SCHEMA))
        self._flushed = end

    def add(self, lat: float, lon: float, outcome: Outcome, name: str) -> None:
        """Append one key's outcome to the output columns."""
        liveness.PROCESS.progressed()
        if isinstance(outcome, Failed):
            for column, value in zip(
                FAILED_SCHEMA, (lat, lon, outcome.reason, outcome.text), strict=True
            ):
                self.failed[column].append(value)
            return
        row = {
            **outcome,
            "latitude": lat,
            "longitude": lon,
            "geocoder": name,
            "geocoded_at": datetime.now(UTC),
        }
        for column, values in self.columns.items():
            values.append(row.get(column))
        if len(self.columns["latitude"]) - self._flushed >= FLUSH_ROWS:
            self.flush()
