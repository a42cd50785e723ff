"""The Geocoder role: reverse-geocode a frame of distinct coordinates."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Protocol, Self, runtime_checkable

import polars as pl

from etl4all import frames
from etl4all.quota.base import RateReport

KEYS_SCHEMA: dict[str, pl.DataType] = {"latitude": pl.Float64(), "longitude": pl.Float64()}
"""What a geocoder receives: distinct coordinates, already rounded to the geocode precision."""

RESULT_SCHEMA: dict[str, pl.DataType] = {**KEYS_SCHEMA, **frames.GEOCODE_SCHEMA}
"""What a geocoder returns: one row per coordinate it could answer."""

FAILED_SCHEMA: dict[str, pl.DataType] = {**KEYS_SCHEMA, "reason": pl.String(), "text": pl.String()}
"""Coordinates the provider refused (e.g. INVALID_REQUEST): they become rejects."""


ResultSink = Callable[[pl.DataFrame], None]
"""``on_results(rows)``: a geocoder's answers as they arrive (``RESULT_SCHEMA``)."""


@dataclasses.dataclass
class Geocoded:
    """The answer of a geocoder for one frame of keys."""

    addresses: pl.DataFrame
    """``RESULT_SCHEMA`` rows, at most one per key."""
    failed: pl.DataFrame = dataclasses.field(default_factory=lambda: frames.empty(FAILED_SCHEMA))
    """``FAILED_SCHEMA`` rows for keys that could not be geocoded."""
    calls: int = 0
    """API requests made (including retries)."""
    retries: int = 0
    """Requests that were retries of an earlier failed request."""
    seconds: float = 0.0
    """Wall time spent calling the API."""
    rate_limited: int = 0
    """Requests answered OVER_QUERY_LIMIT or HTTP 429."""
    rate: RateReport | None = None
    """The adaptive request rate after the frame (API geocoders only)."""


@runtime_checkable
class Geocoder(Protocol):
    """Turns coordinates into addresses; a context manager."""

    name: str
    """Provider name, stored in the ``geocoder`` column and in cache keys."""
    paid: bool
    """True for API providers: results are cached and calls are counted and budgeted."""

    def reverse(self, keys: pl.DataFrame, on_results: ResultSink | None = None) -> Geocoded:
        """Geocode ``keys`` (``KEYS_SCHEMA``, distinct).

        Args:
            on_results: given the answers as they arrive (``RESULT_SCHEMA``), at least every
                quarter second and before ``reverse`` returns or raises, so a caller can cache
                what was paid for even when the batch fails or is interrupted.

        Raises:
            GeocodeUnavailableError: the provider stayed unavailable (retryable).
            GeocodeAuthError, GeocodeQuotaError: the whole batch must stop.
        """
        ...

    def close(self) -> None:
        """Release sessions."""
        ...

    def __enter__(self) -> Self:
        """Use as a context manager: ``close()`` on exit."""
        ...

    def __exit__(self, *exc: object) -> None:
        """Close."""
        ...
