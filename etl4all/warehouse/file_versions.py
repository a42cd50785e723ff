"""A file's versions in the warehouse: whether work of one version still applies, and the lock
of the file's ``source_file`` row that orders that work on a database server.

Every load, reject load or prune of a file version locks its file's row in the caller's
transaction: shared while the version is the file's current one (batches of one version load
side by side), exclusively to raise the version (a new version's first item, or a prune),
which waits for the loads of the older version in flight and makes the later ones stale. A
revert sets the version back to the one kept and voids those between it and its own. DuckDB
has one writer and needs no lock, but follows the same rule (:func:`seen`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import polars as pl

_LOCK_SQL = "SELECT version, replaced, void_from, void_to FROM source_file WHERE id = %s "
_REVERT_SQL = "UPDATE source_file SET version = %s, void_from = %s, void_to = %s WHERE id = %s"
_BUMP_SQL = (
    "UPDATE source_file SET replaced = replaced OR version > 0, version = %s"
    " WHERE id = %s AND version < %s"
)


@dataclasses.dataclass(frozen=True)
class FileRow:
    """A file's row of ``source_file``, as a load or a prune of one of its versions sees it."""

    id: int
    stale: bool
    """The warehouse has seen a newer version, or a revert voided this one: a load changes
    nothing."""
    replaced: bool
    """The file has had other versions (rows may have moved to other lines)."""
    void: bool = False
    """A revert voided this version: nothing of it applies, not even a prune by keys."""


def is_void(version: int, void_from: int | None, void_to: int | None) -> bool:
    """Whether a revert voided ``version`` of a file: it lies strictly between ``void_from``
    (the version kept, whose late work still applies) and ``void_to`` (the revert's own)."""
    return void_from is not None and void_to is not None and void_from < version < void_to


def seen(
    file_id: int,
    version: int,
    stored: int,
    replaced: bool,
    void_from: int | None,
    void_to: int | None,
) -> FileRow:
    """The file's row (its ``stored`` version, ``replaced`` flag and voided range) as work of
    ``version`` sees it: stale when the warehouse has seen a newer version or a revert voided
    this one."""
    if version < stored or is_void(version, void_from, void_to):
        void = is_void(version, void_from, void_to)
        return FileRow(file_id, stale=True, replaced=bool(replaced), void=void)
    return FileRow(file_id, stale=False, replaced=bool(replaced) or 0 < stored < version)


def lock(
    cur: Any,
    file_id: int,
    version: int,
    *,
    current: int,
    share: str,
    exclusive: bool = False,
    revert_to: int | None = None,
) -> FileRow:
    """Lock file ``file_id``'s row for work of ``version`` and raise its version to it; with
    ``revert_to``, set it back to that version, the versions up to ``version`` voided.

    ``current`` is the version read without a lock: equal to ``version``, the dialect's
    ``share`` lock clause suffices (unless ``exclusive``: a prune, which deletes what loads may
    be adding); below, the row is locked ``FOR UPDATE`` and raised. ``cur`` is a DB-API
    cursor with ``%s`` parameters (PyMySQL, psycopg).
    """
    exclusive = exclusive or current < version or revert_to is not None
    cur.execute(_LOCK_SQL + ("FOR UPDATE" if exclusive else share), (file_id,))
    found = cur.fetchone()
    assert found is not None, f"source_file {file_id} vanished"  # rows are never deleted
    stored, replaced, void_from, void_to = found
    row = seen(file_id, version, stored, replaced, void_from, void_to)
    if row.stale:
        return row
    if revert_to is not None:
        cur.execute(_REVERT_SQL, (revert_to, revert_to, version, file_id))
    elif stored < version:
        if not exclusive:  # raised by nobody since: read without a lock, it was equal
            return lock(cur, file_id, version, current=stored, share=share, exclusive=True)
        cur.execute(_BUMP_SQL, (version, file_id, version))
    return row


def recorded_at(files: dict[str, tuple[int, int]], version: int | None, column: str) -> pl.Expr:
    """The version each row is recorded at: ``version``, or when None the current version of
    the file named in ``column`` (``files``: name → (id, current version))."""
    if version is not None:
        return pl.lit(version, pl.Int64)
    versions = {name: current for name, (_, current) in files.items()}
    return pl.col(column).replace_strict(versions, return_dtype=pl.Int64)
