"""The warehouse roles: the ``address`` table, one row per distinct coordinate.

:class:`Warehouse` is the data path (load, look up, prune), what the stages and drivers use;
:class:`WarehouseAdmin` is the operator's path (create tables, the start-up check, status
counts, reads for reports and ``regeocode``). Both SQL backends implement both, as a
:class:`WarehouseBackend`, which the wiring opens; each caller is typed against the role it uses.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import polars as pl

from etl4all import frames
from etl4all.closing import Closes

LOAD_SCHEMA: dict[str, pl.DataType] = frames.ADDRESSES_SCHEMA
"""What ``load`` takes: addresses, one row per coordinate at 8 decimals."""

CHANGE_FIELDS = (*frames.ADDRESS_FIELDS, "geocoder", "geocode_status")
"""A stored row is updated when one of these differs (compared NULL-safely).

The provenance (``source_file``, ``source_line``, ``distance_km``, ``bearing_deg``) follows
the smallest (source_file, source_line) of the files that hold the coordinate, so replays in
any order agree.
"""


@dataclasses.dataclass
class LoadResult:
    """What a load did."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: int = 0
    """Rows not loaded: the warehouse holds a newer version of their file."""


class Reader(Protocol):
    """A read-only session on a warehouse that runs queries with ``?`` marks (the report's)."""

    def run(self, sql: str, params: Sequence[int | float | str]) -> pl.DataFrame:
        """The rows of ``sql`` with ``params`` bound to its ``?`` marks, in UTC.

        Raises:
            ConfigError: the warehouse lacks a table the query reads.
            WarehouseError: the database failed.
        """
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


@runtime_checkable
class Warehouse(Closes, Protocol):
    """The data path: load batches, look coordinates and answers up, apply prunes."""

    def load(
        self, inserts: pl.DataFrame, updates: pl.DataFrame, *, version: int | None = None
    ) -> LoadResult:
        """Insert new and update known coordinates in one transaction, and record that their
        files hold them (``address_source``).

        ``inserts`` are rows the lookup thinks are new, ``updates`` rows it thinks exist;
        the split is only a hint: a stale lookup never creates a duplicate or loses a row.
        Both frames follow ``LOAD_SCHEMA`` and hold distinct coordinates (``frames.canonical``).
        With ``version``, the rows are of that version of one file: when the warehouse has
        seen a newer one, nothing is loaded (``LoadResult.stale``). Without, they count as
        of their files' current versions (``regeocode``).

        Raises:
            DataError: a value the table refuses (nothing is committed).
            WarehouseError: the database failed (nothing is committed; retry).
        """
        ...

    def load_rejects(self, rejects: pl.DataFrame, *, version: int | None = None) -> int:
        """Record rejects (``frames.REJECTS_SCHEMA``) in the ``reject`` table; rows added.

        A reject already recorded (same file, line and reason) is kept, at the newer version.
        ``version`` as for :meth:`load`: rejects of an older version are not recorded.
        """
        ...

    def prune(
        self,
        source: str,
        version: int,
        keep: pl.Series | None = None,
        *,
        low: str | None = None,
        high: str | None = None,
    ) -> int:
        """Apply a prune of version ``version`` of file ``source`` (:mod:`etl4all.stages.prune`).

        ``keep`` None: drop the file's memberships older than ``version`` (every batch of it
        is loaded), and the rows no file holds any more. Else mark those of ``version`` or
        older whose key ``keep`` lacks, among the keys ``k`` with ``low <= k < high``
        (ordered by latitude, then longitude; None leaves that end open), for
        :meth:`finalize` to drop (at once when it came already). ``keep``, ``low`` and
        ``high`` are canonical keys (``frames.coordinate_key``). A prune by version of an
        older version than the file's changes nothing; one by keys does nothing only for a
        version a revert voided. Returns the address rows deleted (one transaction).

        Raises:
            DataError: a key is not canonical.
            WarehouseError: the database failed (nothing is committed; retry).
        """
        ...

    def finalize(self, source: str, version: int) -> int:
        """End a prune by keys of version ``version`` of file ``source``: drop the
        memberships its parts (and those of older versions) marked, the rows no file holds
        any more, and the file's rejects older than ``version``; the address rows deleted.
        Nothing for a version a revert voided.

        Raises:
            WarehouseError: the database failed (nothing is committed; retry).
        """
        ...

    def revert(self, source: str, version: int, to: int) -> int:
        """Drop from file ``source`` what only its versions after ``to`` added (memberships
        and rejects first loaded by them), and take back the marks of their prunes, as
        version ``version`` (nothing when the warehouse has seen a newer one); the address
        rows deleted. The file is set back to version ``to``: late work of it still applies,
        work of the versions voided (between ``to`` and ``version``) changes nothing.

        Raises:
            WarehouseError: the database failed (nothing is committed; retry).
        """
        ...

    def prune_rejects(self, source: str, version: int) -> int:
        """Delete the rejects of file ``source`` recorded for versions older than ``version``
        (nothing when the warehouse has seen a newer one); the rows deleted.

        Raises:
            WarehouseError: the database failed (nothing is committed; retry).
        """
        ...

    def existing(self, keys: pl.Series) -> pl.Series:
        """Those canonical coordinate keys (``frames.coordinate_key``) present in the table."""
        ...

    def answers(self, keys: pl.Series, geocoder: str, since: dt.datetime) -> pl.DataFrame:
        """The stored answers of ``geocoder`` given at ``since`` or later for those canonical
        coordinate keys present: ``key`` plus ``frames.GEOCODE_SCHEMA`` (what was paid for,
        asked before paying again when the geocode cache lost it).

        Raises:
            DataError: a key is not canonical.
            WarehouseError: the database failed.
        """
        ...


@runtime_checkable
class WarehouseAdmin(Closes, Protocol):
    """The operator's path: create and check the tables, count, and read for reports."""

    def init(self) -> None:
        """Create the database objects from ``sql/<dialect>/`` (idempotent)."""
        ...

    def missing_schema(self) -> list[str]:
        """What ``sql/<dialect>/`` makes that the database lacks: table names, and
        ``table.column`` for a column a later release added (``reject.detail``); empty when
        it is ready.

        One cheap catalogue query: the start-up check (``etl4all check``) calls it.

        Raises:
            WarehouseError: the database cannot be reached.
        """
        ...

    def count(self) -> int:
        """Rows in the address table."""
        ...

    def last_loaded(self) -> dt.datetime | None:
        """When a row was last inserted or updated (UTC); None for an empty table."""
        ...

    def select(
        self, table: str, where: Mapping[str, Sequence[str]], *, after_id: int, limit: int
    ) -> pl.DataFrame:
        """A page of chosen rows: at most ``limit`` rows of ``table`` (``address`` or
        ``reject``) whose ``id`` is above ``after_id`` and whose every column named in
        ``where`` holds one of its values, ordered by ``id`` (values are query parameters).

        Address rows come in the shape of :meth:`read`; reject rows as stored.

        Raises:
            ConfigError: an unknown table or column, or a column with no values.
            WarehouseError: the database failed.
        """
        ...

    def read(self) -> pl.DataFrame:
        """The whole address table ordered by ``id``, for analysis and tests.

        Every backend gives the same shape: ``latitude``/``longitude`` as Float64 and the
        timestamps as ``Datetime("us", "UTC")``.
        """
        ...

    @classmethod
    def read_url(cls, url: str) -> pl.DataFrame:
        """What :meth:`read` returns, for the warehouse at ``url``, without building one.

        Reads only: no DDL, no write connection (what ``etl4all.read_warehouse`` calls).
        """
        ...

    @classmethod
    def reader(cls, url: str) -> Reader:
        """A read-only session on the warehouse at ``url``, through the backend's one way to
        SQL (what the report's queries run on): no DDL, no write connection.

        Raises:
            ConfigError: a bad URL, no such database or file, refused credentials.
            WarehouseError: the database cannot be reached.
        """
        ...


@runtime_checkable
class WarehouseBackend(Warehouse, WarehouseAdmin, Protocol):
    """One warehouse serving both roles, as the wiring opens it."""
