"""PostgreSQL: a file's row of ``source_file``, and the version check that orders a file's work.

As on MySQL (:mod:`etl4all.warehouse.mysql_files`): every load, reject load or prune of a
file version locks its file's row in the caller's transaction, ``FOR SHARE`` while the
version is the file's current one (batches of one version load side by side), ``FOR UPDATE``
to raise it (a new version's first item, or a prune), which waits for the loads of the older
version in flight and makes later ones stale. Rows are created beforehand in their own
transaction (:func:`register`).
"""

from __future__ import annotations

import dataclasses

import psycopg

from etl4all.warehouse.table import is_stale, is_void

_IDS_SQL = "SELECT name, id, version FROM source_file WHERE name = ANY(%s)"
_REGISTER_SQL = (
    "INSERT INTO source_file (name) SELECT unnest(%s::text[]) ON CONFLICT (name) DO NOTHING"
)
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
    """The warehouse has seen a newer version, or a revert voided this one."""
    replaced: bool
    """The file has had other versions (rows may have moved to other lines)."""
    void: bool = False
    """A revert voided this version: nothing of it applies, not even a prune by keys."""


def ids(cur: psycopg.Cursor, names: list[str]) -> dict[str, tuple[int, int]]:
    """``name → (id, version)`` of those ``names`` registered."""
    cur.execute(_IDS_SQL, (names,))
    return {str(name): (int(id_), int(version)) for name, id_, version in cur.fetchall()}


def register(cur: psycopg.Cursor, names: list[str]) -> None:
    """Create the rows of ``names`` that are missing (at version 0)."""
    cur.execute(_REGISTER_SQL, (names,))


def lock(
    cur: psycopg.Cursor,
    file_id: int,
    version: int,
    *,
    current: int,
    exclusive: bool = False,
    revert_to: int | None = None,
) -> FileRow:
    """Lock file ``file_id``'s row for work of ``version`` and raise its version to it; with
    ``revert_to``, set it back to that version, the versions up to ``version`` voided.

    ``current`` is the version read without a lock: equal to ``version``, a share lock
    suffices (unless ``exclusive``: a prune); below, the row is locked for update and raised.
    """
    exclusive = exclusive or current < version or revert_to is not None
    cur.execute(_LOCK_SQL + ("FOR UPDATE" if exclusive else "FOR SHARE"), (file_id,))
    row = cur.fetchone()
    assert row is not None, f"source_file {file_id} vanished"  # rows are never deleted
    stored, replaced, void_from, void_to = row
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
