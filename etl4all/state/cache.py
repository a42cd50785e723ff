"""The geocode cache's shared half: the value format and :class:`PayloadCache`.

A cached result is one JSON object per coordinate key holding the ``frames.GEOCODE_SCHEMA``
columns; datetimes travel as integer microseconds since the epoch, so ``geocoded_at``
round-trips exactly. Encoding and decoding are Polars expressions over whole frames.

:class:`PayloadCache` implements :class:`~etl4all.state.base.GeocodeCache` once: it checks
keys, rows and TTLs, encodes and decodes; a backend only fetches and stores payloads.
"""

from __future__ import annotations

import abc
import logging

import polars as pl

from etl4all import frames
from etl4all.state.base import CACHE_KEYS_SCHEMA, CACHE_SCHEMA, checked_ttl

log = logging.getLogger(__name__)

PAYLOADS_SCHEMA: dict[str, pl.DataType] = {**CACHE_KEYS_SCHEMA, "payload": pl.String()}
"""Encoded cache rows: the key and the JSON payload, as a backend stores them."""

_DATETIMES = {
    name: dtype for name, dtype in frames.GEOCODE_SCHEMA.items() if isinstance(dtype, pl.Datetime)
}
_JSON_DTYPE = pl.Struct(
    {
        name: pl.Int64() if name in _DATETIMES else dtype
        for name, dtype in frames.GEOCODE_SCHEMA.items()
    }
)


class PayloadCache(abc.ABC):
    """A :class:`~etl4all.state.base.GeocodeCache` over a store of JSON payloads by key."""

    def cache_get(self, scope: str, keys: pl.DataFrame) -> pl.DataFrame:
        """Unexpired cached results of ``keys`` in ``scope``: one row per distinct key found.

        Raises:
            DataError: ``keys`` do not fit ``CACHE_KEYS_SCHEMA``.
            StoreError: the store failed.
        """
        wanted = keys_of(keys)
        if wanted.is_empty():
            return frames.empty(CACHE_SCHEMA)
        found = self._fetch(scope, wanted)
        log.debug("cache get scope=%s: %d of %d keys found", scope, found.height, wanted.height)
        return decode(found)

    def cache_put(self, scope: str, rows: pl.DataFrame, ttl: float) -> None:
        """Cache ``rows`` (``CACHE_SCHEMA``) in ``scope`` for ``ttl`` seconds.

        Raises:
            ConfigError: ``ttl`` is not a positive number of seconds.
            DataError: ``rows`` do not fit ``CACHE_SCHEMA``.
            StoreError: the store failed.
        """
        ttl = checked_ttl(ttl)
        encoded = encode(rows)
        self._store(scope, encoded, ttl)
        log.debug("cache put scope=%s: %d rows", scope, encoded.height)

    @abc.abstractmethod
    def _fetch(self, scope: str, keys: pl.DataFrame) -> pl.DataFrame:
        """The unexpired payloads (``PAYLOADS_SCHEMA``) of distinct ``keys`` in ``scope``."""

    @abc.abstractmethod
    def _store(self, scope: str, payloads: pl.DataFrame, ttl: float) -> None:
        """Store ``payloads`` (``PAYLOADS_SCHEMA``) in ``scope`` for ``ttl`` seconds."""


def encode(rows: pl.DataFrame) -> pl.DataFrame:
    """``lat_key``, ``lon_key`` and ``payload`` (JSON text) of cache ``rows``.

    Raises:
        DataError: ``rows`` do not fit ``CACHE_SCHEMA``.
    """
    rows = frames.cast_frame(rows, CACHE_SCHEMA)
    fields = [
        pl.col(name).dt.epoch("us") if name in _DATETIMES else pl.col(name)
        for name in frames.GEOCODE_SCHEMA
    ]
    encoded = pl.struct(fields).struct.json_encode().alias("payload")
    return rows.select("lat_key", "lon_key", encoded)


def decode(found: pl.DataFrame) -> pl.DataFrame:
    """Cache rows (``CACHE_SCHEMA``) from ``lat_key``, ``lon_key`` and ``payload`` columns."""
    if found.is_empty():
        return frames.empty(CACHE_SCHEMA)
    decoded = found.select(
        pl.col("lat_key").cast(pl.Int64),
        pl.col("lon_key").cast(pl.Int64),
        pl.col("payload").str.json_decode(_JSON_DTYPE),
    ).unnest("payload")
    return decoded.with_columns(
        pl.col(name).cast(pl.Datetime(dtype.time_unit)).dt.replace_time_zone(dtype.time_zone)
        for name, dtype in _DATETIMES.items()
    ).select(list(CACHE_SCHEMA))


def keys_of(keys: pl.DataFrame) -> pl.DataFrame:
    """Distinct, non-null cache keys (``CACHE_KEYS_SCHEMA``) in first-seen order.

    Raises:
        DataError: ``keys`` do not fit ``CACHE_KEYS_SCHEMA``.
    """
    keys = frames.cast_frame(keys, CACHE_KEYS_SCHEMA)
    return keys.drop_nulls().unique(maintain_order=True)
