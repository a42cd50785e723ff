"""MySQL loading throughput: MySqlWarehouse.load versus a raw LOAD DATA of the same rows.

Budget (DESIGN.md): load() reaches >= 70% of raw ``LOAD DATA`` speed on the same table.

The table is first filled with the half of the rows that will be updates (not timed); then
one ``load(inserts=new half, updates=old half)`` is timed, twice: once with every update
changing the street (the worst case: each one rewrites its row) and once as a replay
(the updates equal the stored rows, the common case of a redelivered batch). Two raw figures: one
``LOAD DATA LOCAL INFILE`` of all rows, as one TSV, into an identical empty table (the
budget's baseline), and one ``LOAD DATA ... REPLACE`` of the same TSV into a copy already
holding the old half (the same work as the loader: half appended, half rewritten). And the
best plain staged SQL merge: ``LOAD DATA`` of all rows into a keyless staging table, then one
``INSERT ... SELECT ... ON DUPLICATE KEY UPDATE`` into the pre-filled copy. Everything happens
in a throwaway database, dropped at the end. Writes bench/results/load_mysql.json.

    python bench/load_mysql.py [--rows 1000000] [--url mysql://root@127.0.0.1:3306/]
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
import uuid
from pathlib import Path

import polars as pl
import pymysql
from results import Figure, write

from etl4all import frames
from etl4all.warehouse import mysql_load, table
from etl4all.warehouse.mysql import MySqlWarehouse


def addresses(n: int, *, offset: int, street: str) -> pl.DataFrame:
    """``n`` distinct realistic address rows, coordinates from ``offset`` on."""
    i = pl.col("i")
    frame = pl.DataFrame({"i": pl.int_range(offset, offset + n, eager=True)}).select(
        source=pl.format("data_points_{}.txt", i // 100_000),
        line=(i % 100_000 * 3 + 1).cast(pl.UInt32),
        latitude=-30.0 - (i // 1000) * 1e-5,
        longitude=-51.0 - (i % 1000) * 1e-5,
        distance_km=(i % 997) / 100.0,
        bearing_deg=(i % 360).cast(pl.Float64) + 0.352,
        street=pl.format("{} {}", pl.lit(street), i % 5000),
        number=(i % 3000).cast(pl.String),
        neighborhood=pl.format("Bairro {}", i % 200),
        city=pl.lit("Porto Alegre"),
        postal_code=pl.format("9{}-000", (i % 10000).cast(pl.String).str.zfill(4)),
        state=pl.lit("Rio Grande do Sul"),
        country=pl.lit("Brasil"),
        formatted_address=pl.format("{} {}, Porto Alegre - RS, Brasil", pl.lit(street), i),
        place_id=pl.format("ChIJ{}", i),
        location_type=pl.lit("ROOFTOP"),
        geocoder=pl.lit("offline"),
        geocode_status=pl.lit("OK"),
        geocoded_at=pl.lit(dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)),
    )
    return frames.cast_frame(frame, frames.ADDRESSES_SCHEMA)


def main() -> None:
    """Run the benchmark and write rows/s of each way to load, with their ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--url", default="mysql://root@127.0.0.1:3306/")
    args = parser.parse_args()
    half = args.rows // 2
    old = addresses(half, offset=0, street="Rua Velha")
    new = addresses(args.rows - half, offset=half, street="Rua Nova")
    print(f"rows {args.rows:,}: {new.height:,} new + {old.height:,} updates")
    raw = replace = merge = 0.0
    ours: dict[str, float] = {}
    server = ""
    # The worst case (every update changes the address) and a replay (none does).
    for label, updates in (
        ("updates change", old.with_columns(street=pl.lit("Rua Nova"))),
        ("updates replay", old),
    ):
        database = f"etl4all_bench_{uuid.uuid4().hex[:8]}"
        try:
            with MySqlWarehouse(url=args.url.rstrip("/") + "/" + database) as warehouse:
                warehouse.init()
                warehouse.load(old, frames.empty(frames.ADDRESSES_SCHEMA))
                started = time.perf_counter()
                result = warehouse.load(new, updates)
                ours[label] = time.perf_counter() - started
                assert result.inserted == new.height, result
                assert warehouse.count() == args.rows
                if not raw:
                    raw = _raw_load(warehouse, new, updates, prefill=None)
                    replace = _raw_load(warehouse, new, updates, prefill=old)
                    merge = _raw_load(warehouse, new, updates, prefill=old, staged=True)
                    server = warehouse._connection().get_server_info()
        finally:
            _drop(args.url, database)
        print(f"load(), {label}: {args.rows / ours[label]:,.0f} rows/s  {result}")
    rows = args.rows
    figures = []
    for label, seconds in ours.items():
        figures += [
            Figure(
                "load",
                f"load() 50% inserts + 50% {label.split()[1]} updates, {rows / 1e6:g}M rows "
                "(baseline: raw LOAD DATA, empty table)",
                rows / seconds,
                "rows/s",
                rows / raw,
                "≥ 0.70",
            ),
            Figure(
                "load",
                f"load(), {label} (baseline: staged LOAD DATA + INSERT … ON DUPLICATE KEY UPDATE)",
                rows / seconds,
                "rows/s",
                rows / merge,
                None,
            ),
            Figure(
                "load",
                f"load(), {label} (baseline: raw LOAD DATA REPLACE into the filled table)",
                rows / seconds,
                "rows/s",
                rows / replace,
                None,
            ),
        ]
    write("load_mysql", figures, {"mariadb": server})


def _raw_load(
    warehouse: MySqlWarehouse,
    new: pl.DataFrame,
    changed: pl.DataFrame,
    *,
    prefill: pl.DataFrame | None,
    staged: bool = False,
) -> float:
    """Seconds for one raw LOAD DATA of all rows into a copy of ``address``.

    With ``prefill`` the copy first holds those rows (not timed) and the load is a
    ``REPLACE``: the same work as the loader's, half new rows and half rewritten ones.
    With ``staged`` the rows go into a keyless staging table first and are merged with one
    ``INSERT ... SELECT ... ON DUPLICATE KEY UPDATE`` (both timed).
    """
    rows_new, rows_changed = table.load_rows(new, changed)
    rows = pl.concat([rows_new, rows_changed])
    copy = f"raw_{uuid.uuid4().hex[:8]}"
    mode = "REPLACE" if prefill is not None and not staged else ""
    columns = ", ".join(table.COLUMNS)
    merge = (
        f"INSERT INTO {copy} ({columns}, created_at, updated_at)"
        f" SELECT {columns}, created_at, updated_at FROM stage_{copy}"
        " ON DUPLICATE KEY UPDATE "
        + ", ".join(f"{c} = VALUES({c})" for c in table.COLUMNS if c not in table.KEY)
        + ", updated_at = VALUES(updated_at)"
    )
    statement = (
        "LOAD DATA LOCAL INFILE %s {mode} INTO TABLE {table} CHARACTER SET utf8mb4"
        " FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n'"
        f" ({', '.join(table.COLUMNS)})"
        " SET created_at = UTC_TIMESTAMP(6), updated_at = UTC_TIMESTAMP(6)"
    )
    conn = warehouse._connection()  # the benchmark may peek: same session, same settings
    with tempfile.TemporaryDirectory() as tmp, conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {copy} LIKE address")
        if prefill is not None:
            first = Path(tmp) / "prefill.tsv"
            mysql_load.write_tsv(table.load_rows(prefill, prefill.clear())[0], first)
            cur.execute(statement.format(mode="", table=copy), (str(first),))
        conn.commit()
        path = Path(tmp) / "all.tsv"
        mysql_load.write_tsv(rows, path)
        if staged:
            cur.execute(f"CREATE TABLE stage_{copy} LIKE address")
            cur.execute(f"ALTER TABLE stage_{copy} DROP INDEX uq_address_coordinate")
        started = time.perf_counter()
        target = f"stage_{copy}" if staged else copy
        cur.execute(statement.format(mode=mode, table=target), (str(path),))
        assert not cur.warning_count, conn.show_warnings()
        if staged:
            cur.execute(merge)
        conn.commit()
        elapsed = time.perf_counter() - started
        cur.execute(f"DROP TABLE {copy}")
        if staged:
            cur.execute(f"DROP TABLE stage_{copy}")
    return elapsed


def _drop(base: str, database: str) -> None:
    from urllib.parse import urlsplit

    parts = urlsplit(base)
    conn = pymysql.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=parts.username or "root",
        password=parts.password or "",
    )
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
    conn.close()


if __name__ == "__main__":
    main()
