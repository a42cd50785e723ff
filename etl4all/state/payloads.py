"""The geocode cache's value format: its schemas, and the encoding of its rows.

A cached result is one JSON object per coordinate key holding the ``frames.GEOCODE_SCHEMA``
columns; datetimes travel as integer microseconds since the epoch, so ``geocoded_at``
round-trips exactly. Encoding and decoding are Polars expressions over whole frames.
"""

from __future__ import annotations

import polars as pl

from etl4all import frames

CACHE_KEYS_SCHEMA: dict[str, pl.DataType] = {"lat_key": pl.Int64(), "lon_key": pl.Int64()}
"""Cache keys: the coordinate as integers of 10**-precision degrees."""

CACHE_SCHEMA: dict[str, pl.DataType] = {**CACHE_KEYS_SCHEMA, **frames.GEOCODE_SCHEMA}
"""A cached geocode result."""

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
