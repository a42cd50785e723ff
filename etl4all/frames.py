"""Schemas of the frames passed between stages, and the canonical coordinate key.

- points: one row per parsed coordinate record.
- addresses: points plus the reverse-geocoded address columns.
- rejects: input that could not be read, with file and line; a batch row whose coordinate is
  not a real one becomes a reject too (:func:`split_invalid_coordinates`).
- prune: the coordinates a file version holds, in one key range (``prune_rejects``,
  ``finalize`` and ``revert`` carry only headers: an empty body in the rejects schema).

Every stage casts what it receives with :func:`cast_frame`, so a batch that does not fit
fails loudly with :class:`~etl4all.errors.DataError` instead of loading garbage.
"""

from __future__ import annotations

import hashlib

import polars as pl

from etl4all.errors import DataError

KEY_DECIMALS = 8
"""A coordinate's identity is (latitude, longitude) at this many decimals."""

POINTS_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String(),
    "line": pl.UInt32(),
    "latitude": pl.Float64(),
    "longitude": pl.Float64(),
    "distance_km": pl.Float64(),
    "bearing_deg": pl.Float64(),
}

GEOCODE_SCHEMA: dict[str, pl.DataType] = {
    "street": pl.String(),
    "number": pl.String(),
    "neighborhood": pl.String(),
    "city": pl.String(),
    "postal_code": pl.String(),
    "state": pl.String(),
    "country": pl.String(),
    "formatted_address": pl.String(),
    "place_id": pl.String(),
    "location_type": pl.String(),
    "geocoder": pl.String(),
    "geocode_status": pl.String(),
    "geocoded_at": pl.Datetime("us", "UTC"),
}
"""Columns a geocoder returns for each key (besides the key's latitude/longitude)."""

ADDRESS_FIELDS = (
    "street",
    "number",
    "neighborhood",
    "city",
    "postal_code",
    "state",
    "country",
    "formatted_address",
    "place_id",
    "location_type",
)
"""The address proper: a row 'changes' only when one of these or the status changes."""

ADDRESSES_SCHEMA: dict[str, pl.DataType] = {**POINTS_SCHEMA, **GEOCODE_SCHEMA}

REJECTS_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String(),
    "line": pl.UInt32(),
    "reason": pl.String(),
    "text": pl.String(),
    "detail": pl.String(),
    "reasons": pl.String(),
}
"""A reject: where (file, first line), why (a stable ``reason``), the input ``text`` (all the
lines of the record), a short human ``detail`` naming the likely cause when one is known
(else null), and ``reasons``: every reason found, comma-separated, ``reason`` first (see
:mod:`etl4all.parsing.parse`; a single reason for rejects made after parsing)."""

ADDED_LATER = frozenset({"detail", "reasons"})
"""Nullable columns added after the first release: a batch from an older worker lacks them and
gets them as nulls (see :func:`cast_frame`), so a rolling upgrade loses nothing."""

REJECT_TEXT_CHARS = 2000
"""A reject keeps at most this many characters of its text (a garbage line can be megabytes;
MySQL's TEXT column holds 64 KiB)."""


NUL_SHOWN = "\u2400"
"""What a NUL byte of the input shows as in a reject's text: ``␀`` (SYMBOL FOR NULL), one
character for one, so the text keeps its length. A NUL has no place in a text column
(PostgreSQL refuses it, tools cut the text there) and shows as nothing."""


def reject_text(text: pl.Expr) -> pl.Expr:
    """``text`` cut to at most :data:`REJECT_TEXT_CHARS` characters, its NUL bytes shown as
    :data:`NUL_SHOWN`.

    A cut text ends with ``… [cut: N chars, sha256 H]``: its full length and the hash of the
    whole text (UTF-8, NUL bytes and all), so the original line can still be told apart and
    found.
    """
    return text.map_batches(_cut_long_texts, return_dtype=pl.String()).str.replace_all(
        "\x00", NUL_SHOWN, literal=True
    )


def _cut_long_texts(texts: pl.Series) -> pl.Series:
    """:func:`reject_text` on a Series: only the (rare) long texts are touched, in Python."""
    long = texts.str.len_chars() > REJECT_TEXT_CHARS
    if not long.any():
        return texts
    cut = [_cut_text(value) for value in texts.filter(long)]
    return texts.scatter(long.arg_true(), cut)


def _cut_text(value: str) -> str:
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    mark = f"… [cut: {len(value)} chars, sha256 {digest}]"
    return value[: REJECT_TEXT_CHARS - len(mark)] + mark


INVALID_COORDINATE = "invalid_coordinate"
"""Reject reason of a batch row whose coordinate is null, NaN, infinite or out of range."""


def split_invalid_coordinates(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(rows of ``frame`` with a real coordinate, the others as :data:`INVALID_COORDINATE`
    rejects).

    A real coordinate is finite, its latitude in [-90, 90] and its longitude in [-180, 180].
    The parser never produces another, but a batch from elsewhere may: one bad row must not
    take its whole batch down with it.
    """
    valid = frame.select(
        (pl.col("latitude").is_between(-90, 90) & pl.col("longitude").is_between(-180, 180))
        .fill_null(False)
        .alias("valid")
    ).to_series()
    if valid.all():
        return frame, empty(REJECTS_SCHEMA)
    as_text = [pl.col(c).cast(pl.String).fill_null("null") for c in ("latitude", "longitude")]
    rejects = frame.filter(~valid).select(
        "source",
        "line",
        reason=pl.lit(INVALID_COORDINATE),
        text=reject_text(pl.concat_str(as_text[0], pl.lit(","), as_text[1])),
        detail=pl.lit(None),
        reasons=pl.lit(INVALID_COORDINATE),
    )
    return frame.filter(valid), cast_frame(rejects, REJECTS_SCHEMA)


PRUNE_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String(),
    "latitude": pl.Float64(),
    "longitude": pl.Float64(),
}
"""The coordinates a changed file still holds, in one key range (:mod:`etl4all.stages.prune`)."""

SCHEMAS = {
    "points": POINTS_SCHEMA,
    "addresses": ADDRESSES_SCHEMA,
    "rejects": REJECTS_SCHEMA,
    "prune": PRUNE_SCHEMA,
    "prune_rejects": REJECTS_SCHEMA,
    "revert": REJECTS_SCHEMA,
    "finalize": REJECTS_SCHEMA,
}


def empty(schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """An empty frame with ``schema``."""
    return pl.DataFrame(schema=schema)


def cast_frame(frame: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Select and strictly cast ``frame`` to ``schema``.

    Raises:
        DataError: a column is missing or a value does not fit its type.
    """
    missing = [name for name in schema if name not in frame.columns]
    if missing and set(missing) <= ADDED_LATER:
        frame = frame.with_columns(pl.lit(None).alias(name) for name in missing)
    elif missing:
        raise DataError(f"batch is missing columns {missing}; has {frame.columns}")
    try:
        return frame.select(pl.col(name).cast(dtype, strict=True) for name, dtype in schema.items())
    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError) as exc:
        raise DataError(f"batch does not fit the frame schema: {exc}") from exc


def fixed(expr: pl.Expr, decimals: int) -> pl.Expr:
    """Format a float expression with exactly ``decimals`` decimals, like ``f"{x:.{d}f}"``."""
    scaled = (expr * 10**decimals).round(0).cast(pl.Int64)
    digits = scaled.abs().cast(pl.String).str.zfill(decimals + 1)
    sign = pl.when(scaled < 0).then(pl.lit("-")).otherwise(pl.lit(""))
    if decimals == 0:
        return pl.concat_str(sign, digits)
    whole = digits.str.head(-decimals)
    frac = digits.str.tail(decimals)
    return pl.concat_str(sign, whole, pl.lit("."), frac)


def scaled_key(expr: pl.Expr, decimals: int) -> pl.Expr:
    """The coordinate as an integer count of 10**-decimals degrees (exact join key)."""
    return (expr * 10**decimals).round(0).cast(pl.Int64)


def coordinate_key(
    lat: pl.Expr | str = "latitude", lon: pl.Expr | str = "longitude", decimals: int = KEY_DECIMALS
) -> pl.Expr:
    """The canonical key string ``"-30.04982864,-51.20150245"`` of a coordinate."""
    lat = pl.col(lat) if isinstance(lat, str) else lat
    lon = pl.col(lon) if isinstance(lon, str) else lon
    return pl.concat_str(fixed(lat, decimals), pl.lit(","), fixed(lon, decimals))


def canonical(frame: pl.DataFrame) -> pl.DataFrame:
    """Round coordinates to the key precision and keep one row per coordinate.

    Of several rows with the same coordinate the one with the smallest (source, line) wins,
    so the result does not depend on the order in which batches arrive.
    """
    rounded = frame.with_columns(
        pl.col("latitude").round(KEY_DECIMALS), pl.col("longitude").round(KEY_DECIMALS)
    )
    return rounded.sort("source", "line").unique(
        subset=["latitude", "longitude"], keep="first", maintain_order=True
    )
