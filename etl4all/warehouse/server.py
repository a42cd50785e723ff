"""What the warehouses on a database server (MySQL, PostgreSQL) share: the methods that lock
a file's ``source_file`` row in their transaction and call the backend's SQL of it."""

from __future__ import annotations

import contextlib
import datetime as dt
from types import ModuleType
from typing import Any, ClassVar

import polars as pl

from etl4all.warehouse import file_versions
from etl4all.warehouse.file_versions import FileRow
from etl4all.warehouse.table import SqlWarehouse


class ServerWarehouse(SqlWarehouse):
    """A :class:`SqlWarehouse` whose backend names its modules of file rows, prunes, loads and
    reads (same functions, each in its dialect) and runs them in :meth:`_transaction`."""

    _file_rows: ClassVar[ModuleType]
    """The backend's SQL of ``source_file`` rows: ``ids``, ``register``, the ``SHARE`` lock."""
    _prunes: ClassVar[ModuleType]
    """Its SQL of ``prune``, ``finalize``, ``revert`` and ``prune_rejects``."""
    _loads: ClassVar[ModuleType]
    """Its SQL of ``merge_rejects``, ``find_keys`` and ``find_answers``."""
    _reads: ClassVar[ModuleType]
    """Its ``query``."""

    def _transaction(self, what: str) -> contextlib.AbstractContextManager[Any]:
        """A cursor in one transaction, committed on success; errors mapped (``what``)."""
        raise NotImplementedError

    def _staging(self) -> dict[str, Any]:
        """What the backend's loads, look-ups and prunes take besides the cursor and the data
        (MySQL: where its ``LOAD DATA`` files go)."""
        return {}

    def _lock(
        self,
        cur: Any,
        file_id: int,
        version: int,
        *,
        current: int,
        exclusive: bool = False,
        revert_to: int | None = None,
    ) -> FileRow:
        """:func:`file_versions.lock` in the backend's dialect."""
        share = self._file_rows.SHARE
        return file_versions.lock(
            cur,
            file_id,
            version,
            current=current,
            share=share,
            exclusive=exclusive,
            revert_to=revert_to,
        )

    def _files(self, names: list[str]) -> dict[str, tuple[int, int]]:
        """``name → (id, version)`` of files ``names``, registered when new."""
        with self._transaction("looking up files") as cur:
            found: dict[str, tuple[int, int]] = self._file_rows.ids(cur, names)
        if missing := [name for name in names if name not in found]:
            with self._transaction(f"registering {len(missing)} files") as cur:
                self._file_rows.register(cur, missing)
                found.update(self._file_rows.ids(cur, missing))
        return found

    def _load_rejects(self, rejects: pl.DataFrame, sources: list[str], version: int | None) -> int:
        """Bulk-loaded, then one insert."""
        files = self._files(sources)
        with self._transaction(f"recording {rejects.height} rejects") as cur:
            if version is not None:
                file_id, current = files[sources[0]]
                if self._lock(cur, file_id, version, current=current).stale:
                    return 0
            return int(self._loads.merge_rejects(cur, rejects, files, version))

    def finalize(self, source: str, version: int) -> int:
        """The backend's ``finalize`` in one transaction, the file's row locked first."""
        file_id, current = self._files([source])[source]
        with self._transaction(f"finalizing {source}") as cur:
            row = self._lock(cur, file_id, version, current=current, exclusive=True)
            if row.void:
                return 0
            return int(self._prunes.finalize(cur, file_id, source, version))

    def revert(self, source: str, version: int, to: int) -> int:
        """Drop what only the versions of ``source`` after ``to`` added; the rows deleted."""
        file_id, current = self._files([source])[source]
        with self._transaction(f"reverting {source}") as cur:
            row = self._lock(cur, file_id, version, current=current, revert_to=to)
            if row.stale:
                return 0
            return int(self._prunes.revert(cur, file_id, source, to))

    def prune_rejects(self, source: str, version: int) -> int:
        """Delete the rejects of ``source`` older than ``version``; the rows deleted."""
        file_id, current = self._files([source])[source]
        with self._transaction(f"pruning the rejects of {source}") as cur:
            self._lock(cur, file_id, version, current=current, exclusive=True)
            return int(self._prunes.prune_rejects(cur, source, version))

    def _answers(self, keys: pl.DataFrame, geocoder: str, since: dt.datetime) -> pl.DataFrame:
        with self._transaction(f"looking up {keys.height} answers") as cur:
            found: pl.DataFrame = self._loads.find_answers(
                cur, keys, geocoder, since, **self._staging()
            )
            return found

    def _find(self, keys: pl.DataFrame) -> pl.Series:
        with self._transaction(f"looking up {keys.height} keys") as cur:
            found: pl.Series = self._loads.find_keys(cur, keys, **self._staging())
            return found

    def _prune(
        self,
        source: str,
        version: int,
        keep: pl.DataFrame | None,
        bounds: tuple[str, str, str, str],
    ) -> int:
        """The backend's ``prune`` in one transaction, the file's row locked first."""
        file_id, current = self._files([source])[source]
        with self._transaction(f"pruning {source}") as cur:
            row = self._lock(cur, file_id, version, current=current, exclusive=True)
            if row.void or (row.stale and keep is None):
                return 0  # by keys, it only marks what its own version and older ones hold
            return int(
                self._prunes.prune(cur, file_id, source, version, keep, bounds, **self._staging())
            )

    def _query(self, what: str, sql: str, params: list[Any]) -> pl.DataFrame:
        with self._transaction(what) as cur:
            found: pl.DataFrame = self._reads.query(cur, sql, params)
            return found
