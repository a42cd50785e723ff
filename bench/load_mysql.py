"""MySQL loading, like for like: ``MySqlWarehouse.load`` against what a user would hand-write.

Two jobs, each done by both sides from the same Polars frame of address rows, file writing
included in the time, alternated, median of ``--rounds``:

- **inserts**: ``--rows`` new coordinates into a table already holding ``--rows`` others.
  Baseline: the rows as a TSV (``table.load_rows`` + ``write_tsv``) and one raw
  ``LOAD DATA LOCAL INFILE`` into an identical ``address`` table. Budget (issue 18): ≥ 0.8 of
  the raw speed. ``load()`` does more: it also records which file holds each row
  (``address_source``) and registers the file.
- **updates**: ``--rows`` known coordinates whose address changed. Baseline: the TSV,
  ``LOAD DATA`` into a keyless staging table and one
  ``INSERT … SELECT … ON DUPLICATE KEY UPDATE`` (the usual staged upsert).

Each sample runs in a new throwaway database (dropped at the end) whose table is filled first
(not timed). Rows/s count the rows given, every one of which is written. Writes
bench/results/load_mysql.json.

    python bench/load_mysql.py [--rows 500000] [--rounds 3] [--url mysql://root@127.0.0.1:3306/]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import polars as pl
from results import Figure, write
from rows import addresses

from etl4all import frames
from etl4all.warehouse import mysql_load, table
from etl4all.warehouse.mysql import MySqlWarehouse

LOAD_SQL = (
    "LOAD DATA LOCAL INFILE %s INTO TABLE {table} CHARACTER SET utf8mb4"
    " FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n'"
    f" ({', '.join(table.COLUMNS)})"
    " SET created_at = UTC_TIMESTAMP(6), updated_at = UTC_TIMESTAMP(6)"
)
UPSERT_SQL = (
    f"INSERT INTO address ({', '.join(table.COLUMNS)}, created_at, updated_at)"
    f" SELECT {', '.join(table.COLUMNS)}, created_at, updated_at FROM stage"
    " ON DUPLICATE KEY UPDATE "
    + ", ".join(f"{c} = VALUES({c})" for c in table.COLUMNS if c not in table.KEY)
    + ", updated_at = VALUES(updated_at)"
)

MEMBERS_SQL = (
    "LOAD DATA LOCAL INFILE %s INTO TABLE address_source CHARACTER SET utf8mb4"
    " FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n'"
    f" ({', '.join(mysql_load.MEMBER_COLUMNS)})"
)
FILES = {f"data_points_{k}.txt": (k + 1, 0) for k in range(1_000)}
"""An id for every file the generated rows come from (the memberships need one)."""


@contextmanager
def filled(url: str, old: pl.DataFrame) -> Iterator[MySqlWarehouse]:
    """A warehouse in a new throwaway database, holding ``old``; dropped on exit."""
    database = f"etl4all_bench_{uuid.uuid4().hex[:8]}"
    warehouse = MySqlWarehouse(url=url.rstrip("/") + "/" + database)
    try:
        warehouse.init()
        warehouse.load(old, frames.empty(frames.ADDRESSES_SCHEMA))
        yield warehouse
    finally:
        with warehouse._connection().cursor() as cur:  # the bench's own database
            cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
        warehouse.close()


def ours(url: str, old: pl.DataFrame, inserts: pl.DataFrame, updates: pl.DataFrame) -> float:
    """Seconds of one ``load()`` of the job."""
    with filled(url, old) as warehouse:
        started = time.perf_counter()
        result = warehouse.load(inserts, updates)
        seconds = time.perf_counter() - started
    assert result.inserted == inserts.height and result.updated == updates.height, result
    return seconds


def raw(
    url: str,
    old: pl.DataFrame,
    inserts: pl.DataFrame,
    updates: pl.DataFrame,
    *,
    held: bool = False,
) -> float:
    """Seconds of the hand-written way: TSV, ``LOAD DATA`` (into a staging table and an
    upsert when there are updates), with ``held`` a second TSV and ``LOAD DATA`` of the
    rows' memberships into ``address_source``, commit."""
    with filled(url, old) as warehouse, tempfile.TemporaryDirectory() as tmp:
        conn = warehouse._connection()  # the bench may peek: same session, same settings
        with conn.cursor() as cur:
            if updates.height:
                cur.execute("CREATE TABLE stage LIKE address")
                cur.execute("ALTER TABLE stage DROP INDEX uq_address_coordinate")
            conn.commit()
            started = time.perf_counter()
            rows = pl.concat(table.load_rows(inserts, updates))
            path = Path(tmp) / "rows.tsv"
            mysql_load.write_tsv(rows, path)
            target = "stage" if updates.height else "address"
            cur.execute(LOAD_SQL.format(table=target), (str(path),))
            assert not cur.warning_count, conn.show_warnings()
            if updates.height:
                cur.execute(UPSERT_SQL)
            if held:
                members = Path(tmp) / "members.tsv"
                mysql_load.write_tsv(mysql_load.members(rows, FILES, None), members)
                cur.execute(MEMBERS_SQL, (str(members),))
                assert cur.rowcount == rows.height and not cur.warning_count
            conn.commit()
            return time.perf_counter() - started


def main() -> None:
    """Measure both jobs both ways and write rows/s with their ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000, help="rows per job")
    parser.add_argument("--rounds", type=int, default=3, help="alternated samples per side")
    parser.add_argument("--url", default="mysql://root@127.0.0.1:3306/", help="server URL")
    args = parser.parse_args()
    n = args.rows
    old = frames.canonical(addresses(n, offset=0, street="Rua Velha"))
    none = frames.canonical(frames.empty(frames.ADDRESSES_SCHEMA))
    jobs = {
        "inserts": (frames.canonical(addresses(n, offset=n, street="Rua Nova")), none),
        "updates": (none, old.with_columns(street=pl.lit("Rua Nova"))),
    }
    figures = []
    for job, (inserts, updates) in jobs.items():
        mine: list[float] = []
        theirs: list[float] = []
        same: list[float] = []
        for round_ in range(args.rounds):
            sides = [(mine, ours), (theirs, raw)]
            if job == "inserts":
                sides.append((same, functools.partial(raw, held=True)))
            for times, side in sides if round_ % 2 else sides[::-1]:
                times.append(side(args.url, old, inserts, updates))
        print(f"{job}: load() {mine}\n  baseline {theirs}\n  with memberships {same}")
        baseline = "raw LOAD DATA" if job == "inserts" else "LOAD DATA + ON DUPLICATE KEY UPDATE"
        figures.append(
            Figure(
                "load",
                f"load(), {n / 1e3:g}k {job} into a table of {n / 1e3:g}k rows "
                f"(baseline: TSV + {baseline}, same rows, file writing timed)",
                n / statistics.median(mine),
                "rows/s",
                n / statistics.median(theirs),
                "≥ 0.8" if job == "inserts" else None,
            )
        )
        if same:
            figures.append(
                Figure(
                    "load",
                    f"load(), {n / 1e3:g}k inserts (baseline: TSV + raw LOAD DATA of the rows "
                    "and of their memberships into address_source: the same work)",
                    n / statistics.median(mine),
                    "rows/s",
                    n / statistics.median(same),
                    None,
                )
            )
        for figure in figures[-2:]:
            print(f"  {figure.name}: {figure.value:,.0f} vs {figure.baseline:,.0f} rows/s")
    write("load_mysql", figures)


if __name__ == "__main__":
    main()
