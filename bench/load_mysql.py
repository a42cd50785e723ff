"""MySQL loading throughput: MySqlWarehouse.load versus a raw LOAD DATA of the same rows.

Budget (DESIGN.md): load() reaches >= 70% of raw ``LOAD DATA`` speed on the same table.

The table is first filled with the half of the rows that will be updates (not timed); then
one ``load(inserts=new half, updates=old half)`` is timed, twice: once with every update
changing the street (the worst case: each one rewrites its row) and once as a replay
(the updates equal the stored rows, the common case of a redelivered batch). Two raw figures: one
``LOAD DATA LOCAL INFILE`` of all rows, as one TSV, into an identical empty table (the
budget's baseline), and one ``LOAD DATA ... REPLACE`` of the same TSV into a copy already
holding the old half (the same work as the loader: half appended, half rewritten).
Everything happens in a throwaway database, dropped at the end.

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
    """Run the benchmark and print rows/s for both and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--url", default="mysql://root@127.0.0.1:3306/")
    args = parser.parse_args()
    half = args.rows // 2
    old = addresses(half, offset=0, street="Rua Velha")
    new = addresses(args.rows - half, offset=half, street="Rua Nova")
    print(f"rows {args.rows:,}: {new.height:,} new + {old.height:,} updates")
    raw = replace = 0.0
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
                ours = time.perf_counter() - started
                assert result.inserted == new.height, result
                assert warehouse.count() == args.rows
                if not raw:
                    raw = _raw_load(warehouse, new, updates, prefill=None)
                    replace = _raw_load(warehouse, new, updates, prefill=old)
        finally:
            _drop(args.url, database)
        print(f"load(), {label}:  {args.rows / ours:>10,.0f} rows/s ({ours:5.2f} s)  {result}")
        print(f"  ratio to raw LOAD DATA into an empty table (budget >= 0.70): {raw / ours:.2f}")
        print(f"  ratio to raw LOAD DATA REPLACE into the pre-filled table: {replace / ours:.2f}")
    print(f"raw LOAD DATA, empty table:     {args.rows / raw:>10,.0f} rows/s ({raw:5.2f} s)")
    print(f"raw LOAD DATA REPLACE, filled:  {args.rows / replace:>10,.0f} rows/s ({replace:.2f} s)")


def _raw_load(
    warehouse: MySqlWarehouse,
    new: pl.DataFrame,
    changed: pl.DataFrame,
    *,
    prefill: pl.DataFrame | None,
) -> float:
    """Seconds for one raw LOAD DATA of all rows into a copy of ``address``.

    With ``prefill`` the copy first holds those rows (not timed) and the load is a
    ``REPLACE``: the same work as the loader's, half new rows and half rewritten ones.
    """
    rows_new, rows_changed = table.load_rows(new, changed)
    rows = pl.concat([rows_new, rows_changed])
    copy = f"raw_{uuid.uuid4().hex[:8]}"
    mode = "REPLACE" if prefill is not None else ""
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
        started = time.perf_counter()
        cur.execute(statement.format(mode=mode, table=copy), (str(path),))
        conn.commit()
        elapsed = time.perf_counter() - started
        assert not cur.warning_count, conn.show_warnings()
        cur.execute(f"DROP TABLE {copy}")
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
