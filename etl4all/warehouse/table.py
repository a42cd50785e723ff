"""The address table as both SQL warehouses see it, and :class:`SqlWarehouse`, their base.

Here: the columns a load writes, the rows to load built from the load frames, canonical
keys as exact decimal strings, the shape a read returns, and the update rule written once
as SQL (each dialect only says how it compares values). No database driver is imported.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from etl4all import frames
from etl4all.closing import Closing
from etl4all.errors import ConfigError, DataError
from etl4all.warehouse.base import CHANGE_FIELDS, LOAD_SCHEMA, LoadResult

KEY = ("latitude", "longitude")
"""The table's unique business key."""

PROVENANCE = ("source_file", "source_line", "distance_km", "bearing_deg")
"""Columns that follow the smallest (source_file, source_line) ever loaded."""

COLUMNS = (*KEY, *CHANGE_FIELDS, "geocoded_at", *PROVENANCE)
"""Columns a load writes, in this order (``id``, ``created_at``, ``updated_at`` aside)."""

READ_SQL = "SELECT * FROM address ORDER BY id"
ANSWER_COLUMNS = ", ".join(f"a.{c}" for c in frames.GEOCODE_SCHEMA)
"""The geocode columns of an ``address`` row ``a``, as an answers query selects them."""
"""The query of a whole-table read; its result goes through :func:`table_frame`."""

SELECTABLE = {
    "address": (*COLUMNS, "id", "created_at", "updated_at"),
    "reject": (
        "id",
        "source_file",
        "source_line",
        "reason",
        "text",
        "detail",
        "reasons",
        "created_at",
    ),
}
"""The tables :meth:`SqlWarehouse.select` reads, and the columns it may filter on."""

_KEY_PATTERN = r"^-?\d{1,3}\.\d{8},-?\d{1,3}\.\d{8}$"
_BELOW_ALL = "-99.99999999,-999.99999999"
_ABOVE_ALL = "99.99999999,999.99999999"
"""Open ends of a key range: beyond every coordinate, and still a DECIMAL(10,8)/(11,8)."""


def load_rows(inserts: pl.DataFrame, updates: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The rows to load, as table columns (``COLUMNS``), from the two load frames.

    The coordinates become their fixed 8-decimal strings (exact DECIMAL input), floats'
    NaN becomes NULL, ``geocoded_at`` becomes naive UTC, ``source``/``line`` become
    ``source_file``/``source_line``. A coordinate present in both frames (or twice) is
    kept once, the row with the smallest (source, line) winning, as in
    :func:`etl4all.frames.canonical`; it stays in the frame it came from.

    Raises:
        DataError: a frame does not fit ``LOAD_SCHEMA``.
    """
    both = pl.concat(
        [
            frames.cast_frame(inserts, LOAD_SCHEMA).with_columns(_update=pl.lit(False)),
            frames.cast_frame(updates, LOAD_SCHEMA).with_columns(_update=pl.lit(True)),
        ]
    )
    scaled = [frames.scaled_key(pl.col(c), frames.KEY_DECIMALS).alias(f"_{c}") for c in KEY]
    both = both.with_columns(scaled)
    # A hash collision only costs the exact path below, never a wrong answer.
    if both.select(pl.struct("_latitude", "_longitude").hash().n_unique()).item() < both.height:
        both = both.sort("source", "line").unique(
            subset=["_latitude", "_longitude"], keep="first", maintain_order=True
        )
    rows = both.select(
        frames.fixed(pl.col("latitude"), frames.KEY_DECIMALS).alias("latitude"),
        frames.fixed(pl.col("longitude"), frames.KEY_DECIMALS).alias("longitude"),
        *CHANGE_FIELDS,
        pl.col("geocoded_at").dt.convert_time_zone("UTC").dt.replace_time_zone(None),
        pl.col("source").alias("source_file"),
        pl.col("line").alias("source_line"),
        pl.col("distance_km").fill_nan(None),
        pl.col("bearing_deg").fill_nan(None),
        "_update",
    )
    return (
        rows.filter(~pl.col("_update")).drop("_update"),
        rows.filter(pl.col("_update")).drop("_update"),
    )


def key_frame(keys: pl.Series) -> pl.DataFrame:
    """``keys`` (canonical coordinate strings) as columns ``key``, ``latitude``, ``longitude``.

    The coordinates stay strings, for exact DECIMAL comparison in SQL.

    Raises:
        DataError: a key is not a canonical coordinate key.
    """
    frame = pl.DataFrame({"key": keys.cast(pl.String)}).unique(maintain_order=True)
    bad = frame.filter(~pl.col("key").str.contains(_KEY_PATTERN) | pl.col("key").is_null())
    if bad.height:
        raise DataError(
            f"{bad.height} keys are not canonical coordinate keys, e.g. {bad['key'][0]!r}; "
            'expected "-30.04982864,-51.20150245" (frames.coordinate_key)'
        )
    parts = pl.col("key").str.split_exact(",", 1)
    return frame.with_columns(
        parts.struct.field("field_0").alias("latitude"),
        parts.struct.field("field_1").alias("longitude"),
    )


def key_range(low: str | None, high: str | None) -> tuple[str, str, str, str]:
    """``(low_lat, low_lon, high_lat, high_lon)`` of the key range ``low <= key < high``,
    as exact decimal strings; an open end (None) lies beyond every coordinate.

    Raises:
        DataError: a bound is not a canonical coordinate key.
    """
    bounds = key_frame(pl.Series([low or _BELOW_ALL, high or _ABOVE_ALL]))
    if bounds.height < 2:
        raise DataError(f"empty key range: low {low!r} is not below high {high!r}")
    (low_lat, low_lon), (high_lat, high_lon) = bounds.select("latitude", "longitude").rows()
    return low_lat, low_lon, high_lat, high_lon


def table_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """A read address table in the common shape: float coordinates, UTC timestamps."""
    stamps = [c for c in ("geocoded_at", "created_at", "updated_at") if c in frame.columns]
    return frame.with_columns(
        pl.col("latitude", "longitude").cast(pl.Float64),
        *(pl.col(c).cast(pl.Datetime("us")).dt.replace_time_zone("UTC") for c in stamps),
    )


def select_sql(table: str, where: Mapping[str, Sequence[str]]) -> tuple[str, list[Any]]:
    """SQL and parameters of a page of chosen rows (see ``WarehouseAdmin.select``), a ``?`` mark
    standing for ``after_id``, every value and ``limit``.

    Raises:
        ConfigError: an unknown table or column, or a column with no values.
    """
    if table not in SELECTABLE:
        raise ConfigError(f"cannot select from table {table!r}; known: {sorted(SELECTABLE)}")
    conditions, params = ["id > ?"], []
    for column, values in where.items():
        if column not in SELECTABLE[table]:
            raise ConfigError(f"table {table} has no column {column!r} to select on")
        if not values:
            raise ConfigError(f"no values to select {table}.{column} on")
        conditions.append(f"{column} IN ({', '.join(['?'] * len(values))})")
        params += list(values)
    sql = f"SELECT * FROM {table} WHERE {' AND '.join(conditions)} ORDER BY id LIMIT ?"
    return sql, params


def changed_sql(distinct: str) -> str:
    """SQL: the staged row ``s`` and the stored row ``a`` differ in some ``CHANGE_FIELDS``.

    ``distinct`` is the dialect's NULL-safe, exact inequality of ``{s}`` and ``{a}``.
    """
    return " OR ".join(distinct.format(s=f"s.{c}", a=f"a.{c}") for c in CHANGE_FIELDS)


def smaller_sql(exact: str = "{}") -> str:
    """SQL: ``s``'s (source_file, source_line) sorts before ``a``'s.

    ``exact`` wraps a text column so that it compares byte by byte.
    """
    new, old = exact.format("s.source_file"), exact.format("a.source_file")
    return f"({new} < {old} OR ({new} = {old} AND s.source_line < a.source_line))"


def merge_sql(*, stored: str, changed: str, smaller: str) -> str:
    """SQL ``SET`` list that applies the staged row ``s`` to the row ``stored``: the update rule.

    The address fields take the staged values; ``geocoded_at`` too when ``changed``
    holds; the provenance when ``smaller`` holds (see ``CHANGE_FIELDS``). MySQL lets each
    assignment see the ones before it, so there the conditions are flags computed beforehand.
    """
    return ", ".join(
        [
            *(f"{c} = s.{c}" for c in CHANGE_FIELDS),
            f"geocoded_at = CASE WHEN {changed} THEN s.geocoded_at ELSE {stored}.geocoded_at END",
            *(f"{c} = CASE WHEN {smaller} THEN s.{c} ELSE {stored}.{c} END" for c in PROVENANCE),
        ]
    )


class SqlWarehouse(Closing):
    """What the SQL warehouses share: the frames around a load and around a key lookup.

    A subclass runs the SQL in :meth:`_merge` and :meth:`_find`, and the rest of the
    ``Warehouse`` protocol.
    """

    def load(
        self, inserts: pl.DataFrame, updates: pl.DataFrame, *, version: int | None = None
    ) -> LoadResult:
        """Insert new and update known coordinates in one transaction, with their files'
        memberships (see the ``Warehouse`` protocol).

        The split into ``inserts`` and ``updates`` is a hint: every row is matched against
        the table, so a stale lookup cannot duplicate or lose a row.

        Raises:
            DataError: a frame does not fit the schema, rows of several files with a
                ``version``, or a value does not fit the table (nothing is committed).
            WarehouseError: the database failed (nothing is committed; retry).
        """
        new, known = load_rows(inserts, updates)
        total = new.height + known.height
        if not total:
            return LoadResult()
        sources = pl.concat([new, known]).get_column("source_file").unique().to_list()
        if version is not None and len(sources) != 1:
            raise DataError(f"rows of one file version come from one file, not {sources[:3]}")
        merged = self._merge(new, known, sources, version)
        if merged is None:
            return LoadResult(stale=total)
        inserted, updated = merged
        return LoadResult(inserted, updated, total - inserted - updated)

    def existing(self, keys: pl.Series) -> pl.Series:
        """Those canonical coordinate keys present in the table, in the order given.

        Raises:
            DataError: a key is not a canonical coordinate key.
        """
        frame = key_frame(keys)
        if frame.is_empty():
            return keys.clear()
        return keys.filter(keys.is_in(self._find(frame).implode()))

    def answers(self, keys: pl.Series, geocoder: str, since: dt.datetime) -> pl.DataFrame:
        """The stored answers of ``geocoder`` since ``since`` for those of ``keys`` present
        (see the ``Warehouse`` protocol).

        Raises:
            DataError: a key is not canonical.
        """
        frame = key_frame(keys)
        if frame.is_empty():
            return frames.empty({"key": pl.String(), **frames.GEOCODE_SCHEMA})
        schema = {"key": pl.String(), **frames.GEOCODE_SCHEMA}
        naive = since.astimezone(dt.UTC).replace(tzinfo=None)
        found = self._answers(frame, geocoder, naive)
        if found.is_empty():
            return frames.empty(schema)
        stamp = pl.col("geocoded_at").cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
        return frames.cast_frame(found.with_columns(stamp), schema)

    def _answers(self, keys: pl.DataFrame, geocoder: str, since: dt.datetime) -> pl.DataFrame:
        """``key`` and the geocode columns of the rows of :func:`key_frame` rows ``keys``
        answered by ``geocoder`` at naive UTC ``since`` or later."""
        raise NotImplementedError

    def select(
        self, table: str, where: Mapping[str, Sequence[str]], *, after_id: int, limit: int
    ) -> pl.DataFrame:
        """A page of chosen rows of ``table``, ordered by ``id`` (see ``WarehouseAdmin.select``).

        Raises:
            ConfigError: an unknown table or column, or a column with no values.
            WarehouseError: the database failed.
        """
        sql, params = select_sql(table, where)
        frame = self._query(f"selecting {table} rows", sql, [after_id, *params, limit])
        return table_frame(frame) if table == "address" else frame

    def _query(self, what: str, sql: str, params: list[Any]) -> pl.DataFrame:
        """The rows of one query with ``?`` marks, as a frame (the backend's one read path)."""
        raise NotImplementedError

    def count(self) -> int:
        """Rows in the address table."""
        return int(self._query("counting rows", "SELECT COUNT(*) AS n FROM address", []).item())

    def last_loaded(self) -> dt.datetime | None:
        """The latest ``updated_at`` (UTC)."""
        sql = "SELECT MAX(updated_at) AS t FROM address"
        latest = self._query("reading the last load time", sql, []).item()
        if latest is None:
            return None
        return latest.replace(tzinfo=dt.UTC) if latest.tzinfo is None else latest.astimezone(dt.UTC)

    def prune(
        self,
        source: str,
        version: int,
        keep: pl.Series | None = None,
        *,
        low: str | None = None,
        high: str | None = None,
    ) -> int:
        """Apply a prune of version ``version`` of file ``source``; the address rows deleted
        (see the ``Warehouse`` protocol).

        Raises:
            DataError: a key is not canonical.
        """
        keys = None if keep is None else key_frame(keep)
        return self._prune(source, version, keys, key_range(low, high))

    def _prune(
        self,
        source: str,
        version: int,
        keep: pl.DataFrame | None,
        bounds: tuple[str, str, str, str],
    ) -> int:
        """Drop the memberships of ``source`` that version ``version`` lacks: older ones
        (``keep`` None), or those in the :func:`key_range` ``bounds`` whose coordinate is not
        one of the :func:`key_frame` rows ``keep``; then the rows nobody holds. One
        transaction; nothing when the file has a newer version."""
        raise NotImplementedError

    def load_rejects(self, rejects: pl.DataFrame, *, version: int | None = None) -> int:
        """Record rejects in the ``reject`` table; the rows added (see the ``Warehouse``
        protocol).

        Raises:
            DataError: rejects of one file version (``version`` given) from several files.
        """
        if rejects.is_empty():
            return 0
        rejects = frames.cast_frame(rejects, frames.REJECTS_SCHEMA)  # fills a missing detail
        sources = rejects.get_column("source").unique().to_list()
        if version is not None and len(sources) != 1:
            raise DataError(f"rejects of one file version come from one file, not {sources[:3]}")
        return self._load_rejects(rejects, sources, version)

    def _load_rejects(self, rejects: pl.DataFrame, sources: list[str], version: int | None) -> int:
        """Record ``rejects`` of files ``sources`` in one transaction; nothing when
        ``version`` is given and stale."""
        raise NotImplementedError

    def _merge(
        self, new: pl.DataFrame, known: pl.DataFrame, sources: list[str], version: int | None
    ) -> tuple[int, int] | None:
        """Load :func:`load_rows`' two frames (of the files ``sources``) and their
        memberships in one transaction: (inserted, updated), or None when ``version`` is
        older than the file's (nothing loaded)."""
        raise NotImplementedError

    def _find(self, keys: pl.DataFrame) -> pl.Series:
        """The ``key`` values of :func:`key_frame` rows whose coordinates are stored."""
        raise NotImplementedError
