"""MySQL: a file's row of ``source_file``, and the version check that orders a file's work.

Every load, reject load or prune of a file version locks its file's row in the caller's
transaction: in share mode while the version is the file's current one (batches of one
version load side by side), exclusively to raise the version (a new version's first item, or
a prune), which waits for the loads of the older version in flight and makes the later ones
stale. A revert sets the version back to the one kept and voids those between it and its
own (:func:`~etl4all.warehouse.table.is_stale`). Rows are created beforehand, in their own
transaction (:func:`register`), so that no two loaders race to insert one inside a longer
transaction.
"""

from __future__ import annotations

import dataclasses

import pymysql.cursors

from etl4all.warehouse.table import is_stale, is_void

_IDS_SQL = "SELECT name, id, version FROM source_file WHERE name IN ({marks})"
_REGISTER_SQL = "INSERT IGNORE INTO source_file (name) VALUES (%s)"
_LOCK_SQL = "SELECT id, version, replaced, void_from, void_to FROM source_file WHERE id = %s "
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


def ids(cur: pymysql.cursors.Cursor, names: list[str]) -> dict[str, tuple[int, int]]:
    """``name → (id, version)`` of those ``names`` registered."""
    if not names:
        return {}
    cur.execute(_IDS_SQL.format(marks=", ".join(["%s"] * len(names))), names)
    return {str(name): (int(id_), int(version)) for name, id_, version in cur.fetchall()}


def register(cur: pymysql.cursors.Cursor, names: list[str]) -> None:
    """Create the rows of ``names`` that are missing (at version 0)."""
    cur.executemany(_REGISTER_SQL, [(name,) for name in names])


def lock(
    cur: pymysql.cursors.Cursor,
    file_id: int,
    version: int,
    *,
    current: int,
    exclusive: bool = False,
    revert_to: int | None = None,
) -> FileRow:
    """Lock file ``file_id``'s row for work of ``version`` and raise its version to it; with
    ``revert_to``, set it back to that version, the versions up to ``version`` voided
    (:func:`etl4all.warehouse.table.is_stale`).

    ``current`` is the version read without a lock: equal to ``version``, a share lock
    suffices (unless ``exclusive``: a prune, which deletes what loads may be adding); below,
    the row is locked exclusively and raised.
    """
    exclusive = exclusive or current < version or revert_to is not None
    cur.execute(_LOCK_SQL + ("FOR UPDATE" if exclusive else "LOCK IN SHARE MODE"), (file_id,))
    _, stored, replaced, void_from, void_to = cur.fetchone()
    if is_stale(version, stored, void_from, void_to):
        void = is_void(version, void_from, void_to)
        return FileRow(file_id, stale=True, replaced=bool(replaced), void=void)
    if revert_to is not None:
        cur.execute(_REVERT_SQL, (revert_to, revert_to, version, file_id))
    elif stored < version:
        if not exclusive:  # raised by nobody since: read without a lock, it was equal
            return lock(cur, file_id, version, current=stored, exclusive=True)
        cur.execute(_BUMP_SQL, (version, file_id, version))
    return FileRow(file_id, stale=False, replaced=bool(replaced) or 0 < stored < version)
