"""The DDL of each warehouse dialect, read from ``sql/<dialect>/NNN_*.sql``.

The repository's ``sql/`` folder is the canonical copy (``sql/<dialect>/upgrade/`` holds the
one-off statements that fill a table added by a release, :data:`UPGRADE`); it is installed
with the package as data files (``setup.cfg`` ``[options.data_files]``) under
``<prefix>/share/etl4all/sql/``.
:func:`files` looks in the source checkout first (also what an editable install sees), then
in the installed data folders. Python never embeds DDL.
"""

from __future__ import annotations

import re
import site
import sys
import sysconfig
from pathlib import Path

from etl4all.errors import ConfigError

_CREATE_TABLE = re.compile(r"^CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?`?(\w+)`?", re.I)
_ADD_COLUMN = re.compile(
    r"^ALTER\s+TABLE\s+`?(\w+)`?\s+ADD\s+COLUMN\s+(?:IF\s+NOT\s+EXISTS\s+)?`?(\w+)`?", re.I
)


def files(dialect: str, folder: str = "") -> list[Path]:
    """The DDL files of ``dialect`` (``mysql``, ``duckdb``), in the order to run them; those
    of its subfolder ``folder`` (``upgrade``) when given.

    Raises:
        ConfigError: no folder holds them (a broken installation).
    """
    where = Path("sql", dialect, folder)
    candidates = [Path(__file__).resolve().parents[2] / where]
    data_dirs = [sysconfig.get_path("data"), sys.prefix, site.USER_BASE or ""]
    candidates += [Path(d) / "share" / "etl4all" / where for d in data_dirs if d]
    for candidate in candidates:
        found = sorted(candidate.glob("*.sql"))
        if found:
            return found
    raise ConfigError(
        f"no {dialect} DDL files found in {', '.join(map(str, candidates))}; "
        "reinstall etl4all or run from a source checkout"
    )


def statements(dialect: str, folder: str = "") -> list[str]:
    """The DDL statements of ``dialect`` (of its subfolder ``folder`` when given): files
    split at a semicolon ending a line."""
    found: list[str] = []
    for path in files(dialect, folder):
        lines = [
            line
            for line in path.read_text(encoding="utf-8").splitlines()
            if not line.lstrip().startswith("--")
        ]
        text = "\n".join(lines)
        found += [part.strip() for part in text.split(";\n") if part.strip(" \n;")]
    return [s.rstrip(";") for s in found]


UPGRADE = "upgrade"
"""The subfolder of statements that fill tables a release added, run once by ``init()`` when
``address`` has rows and ``address_source`` has none (:func:`needs_upgrade`)."""


def needs_upgrade(address_rows: int, source_rows: int) -> bool:
    """Whether the ``UPGRADE`` statements are to run: rows loaded before file versions."""
    return address_rows > 0 and source_rows == 0


def tables(dialect: str) -> list[str]:
    """The tables the DDL of ``dialect`` creates (``address``, ``reject``), in file order."""
    found = (_CREATE_TABLE.match(statement) for statement in statements(dialect))
    return [match.group(1) for match in found if match]


def added_columns(dialect: str) -> list[tuple[str, str]]:
    """The ``(table, column)`` pairs the DDL of ``dialect`` adds to tables after creating them
    (upgrades of older tables: ``reject.detail``)."""
    found = (_ADD_COLUMN.match(statement) for statement in statements(dialect))
    return [(match.group(1), match.group(2)) for match in found if match]


def adds_column(statement: str) -> bool:
    """Whether ``statement`` is an ``ALTER TABLE ... ADD COLUMN`` (an upgrade step)."""
    return _ADD_COLUMN.match(statement) is not None


def missing(dialect: str, present: set[tuple[str, str]]) -> list[str]:
    """What the DDL of ``dialect`` makes that is not among the ``present`` ``(table, column)``
    pairs: table names, and ``table.column`` for a column added later that an existing table
    lacks (``reject.detail``). Names compare in lowercase.
    """
    have = {(table.lower(), column.lower()) for table, column in present}
    have_tables = {table for table, _ in have}
    found = [name for name in tables(dialect) if name.lower() not in have_tables]
    found += [
        f"{table}.{column}"
        for table, column in added_columns(dialect)
        if table.lower() in have_tables and (table.lower(), column.lower()) not in have
    ]
    return found
