"""MySQL: the rows of ``source_file``, created beforehand in their own transaction
(:func:`register`) so that no two loaders race to insert one inside a longer transaction; a
row's lock is :func:`etl4all.warehouse.file_versions.lock` with :data:`SHARE`."""

from __future__ import annotations

import pymysql.cursors

SHARE = "LOCK IN SHARE MODE"
"""MariaDB's shared row lock (it has no ``FOR SHARE``)."""
_IDS_SQL = "SELECT name, id, version FROM source_file WHERE name IN ({marks})"
_REGISTER_SQL = "INSERT IGNORE INTO source_file (name) VALUES (%s)"


def ids(cur: pymysql.cursors.Cursor, names: list[str]) -> dict[str, tuple[int, int]]:
    """``name → (id, version)`` of those ``names`` registered."""
    if not names:
        return {}
    cur.execute(_IDS_SQL.format(marks=", ".join(["%s"] * len(names))), names)
    return {str(name): (int(id_), int(version)) for name, id_, version in cur.fetchall()}


def register(cur: pymysql.cursors.Cursor, names: list[str]) -> None:
    """Create the rows of ``names`` that are missing (at version 0)."""
    cur.executemany(_REGISTER_SQL, [(name,) for name in names])
