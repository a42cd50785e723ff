"""PostgreSQL: the rows of ``source_file``, created beforehand in their own transaction
(:func:`register`); a row's lock is :func:`etl4all.warehouse.file_versions.lock` with
:data:`SHARE`."""

from __future__ import annotations

import psycopg

SHARE = "FOR SHARE"
_IDS_SQL = "SELECT name, id, version FROM source_file WHERE name = ANY(%s)"
_REGISTER_SQL = (
    "INSERT INTO source_file (name) SELECT unnest(%s::text[]) ON CONFLICT (name) DO NOTHING"
)


def ids(cur: psycopg.Cursor, names: list[str]) -> dict[str, tuple[int, int]]:
    """``name → (id, version)`` of those ``names`` registered."""
    cur.execute(_IDS_SQL, (names,))
    return {str(name): (int(id_), int(version)) for name, id_, version in cur.fetchall()}


def register(cur: psycopg.Cursor, names: list[str]) -> None:
    """Create the rows of ``names`` that are missing (at version 0)."""
    cur.execute(_REGISTER_SQL, (names,))
