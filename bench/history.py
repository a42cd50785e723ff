"""Bench: does history slow a batch? One batch into a full warehouse against an empty one.

Fills one warehouse with ``--history`` rows (default 10M, loaded through the warehouse
itself in 1M-row loads, not timed) and leaves another empty; then, alternated, loads a batch
of ``--batch`` new coordinates of a new file into each, the way a loader does
(``stages.load.apply``: the lookup, then ``Warehouse.load`` with the file's version), median
of ``--rounds``. Each round's batch is new to both warehouses. Budget (issue 18): the full
warehouse takes ≤ 1.5× the empty one's time: merges that follow the indexes, not a scan of
the table per batch.

DuckDB files go to a temporary folder; MySQL to two throwaway databases, dropped at the end.

    python bench/history.py [--backends duckdb,mysql] [--history 10000000] [--batch 100000]
        [--rounds 3] [--mysql mysql://root@127.0.0.1:3306/]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from results import Figure, write
from rows import addresses

from etl4all import frames
from etl4all.lookup.warehouse import WarehouseLookup
from etl4all.stages.load import Addresses, apply
from etl4all.warehouse.base import Warehouse

FILL_ROWS = 1_000_000
Opener = Callable[[str], AbstractContextManager[Warehouse]]
"""Opens the warehouse of a name (``empty``, ``full``) for the bench, and closes it."""


def fill(warehouse: Warehouse, rows: int) -> None:
    """Load ``rows`` old rows, 100k per file, in loads of :data:`FILL_ROWS`."""
    none = frames.empty(frames.ADDRESSES_SCHEMA)
    for offset in range(0, rows, FILL_ROWS):
        chunk = addresses(min(FILL_ROWS, rows - offset), offset=offset, street="Rua Velha")
        warehouse.load(frames.canonical(chunk), frames.canonical(none))
        print(f"  filled {offset + chunk.height:,} rows", flush=True)


def batch_seconds(warehouse: Warehouse, offset: int, rows: int) -> float:
    """Seconds to apply a batch of ``rows`` new coordinates of a new file, as a loader does."""
    batch = addresses(rows, offset=offset, street="Rua Nova", file_rows=rows)
    started = time.perf_counter()
    applied = apply(Addresses(batch, 1), warehouse, WarehouseLookup(warehouse=warehouse))
    seconds = time.perf_counter() - started
    assert applied.load.inserted == rows, applied
    return seconds


def measure(opened: Opener, history: int, rows: int, rounds: int) -> tuple[float, float]:
    """Median seconds of a batch into the empty and into the full warehouse."""
    empty_times: list[float] = []
    full_times: list[float] = []
    with opened("empty") as empty, opened("full") as full:
        started = time.perf_counter()
        fill(full, history)
        print(f"  filled in {time.perf_counter() - started:.0f} s")
        for round_ in range(rounds):
            offset = history + round_ * rows  # new to both
            sides = [(empty_times, empty), (full_times, full)]
            for times, warehouse in sides if round_ % 2 else sides[::-1]:
                times.append(batch_seconds(warehouse, offset, rows))
    print(f"  empty {empty_times}\n  full  {full_times}")
    return statistics.median(empty_times), statistics.median(full_times)


def duckdb_warehouses(folder: Path) -> Opener:
    """Open a DuckDB warehouse per name in ``folder``."""
    from etl4all.warehouse.duckdb import DuckdbWarehouse

    @contextmanager
    def opened(name: str) -> Iterator[Warehouse]:
        with DuckdbWarehouse(url=f"duckdb:///{folder}/{name}.duckdb") as warehouse:
            yield warehouse

    return opened


def mysql_warehouses(base: str) -> Opener:
    """Open a MySQL warehouse per name, each in a throwaway database dropped on exit."""
    from etl4all.warehouse.mysql import MySqlWarehouse

    @contextmanager
    def opened(name: str) -> Iterator[Warehouse]:
        database = f"etl4all_bench_{name}_{uuid.uuid4().hex[:8]}"
        warehouse = MySqlWarehouse(url=base.rstrip("/") + "/" + database)
        try:
            warehouse.init()
            yield warehouse
        finally:
            with warehouse._connection().cursor() as cur:  # the bench's own database
                cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
            warehouse.close()

    return opened


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="duckdb,mysql", help="comma-separated")
    parser.add_argument("--history", type=int, default=10_000_000, help="rows already held")
    parser.add_argument("--batch", type=int, default=100_000, help="new points per batch")
    parser.add_argument("--rounds", type=int, default=3, help="alternated batches per side")
    parser.add_argument("--mysql", default="mysql://root@127.0.0.1:3306/", help="server URL")
    args = parser.parse_args()
    figures = []
    with tempfile.TemporaryDirectory(prefix="etl4all-bench-") as tmp:
        for backend in args.backends.split(","):
            print(f"{backend}: {args.history:,} rows of history, batches of {args.batch:,}")
            duck = backend == "duckdb"
            opened = duckdb_warehouses(Path(tmp)) if duck else mysql_warehouses(args.mysql)
            empty, full = measure(opened, args.history, args.batch, args.rounds)
            print(f"  ratio {full / empty:.2f}x (budget ≤ 1.5x)")
            figures.append(
                Figure(
                    "history",
                    f"{backend}: a {args.batch / 1e3:g}k-point batch into a warehouse of "
                    f"{args.history / 1e6:g}M rows (baseline: the same into an empty one)",
                    full,
                    "s",
                    empty,
                    "≤ 1.5×",
                )
            )
    write("history", figures)


if __name__ == "__main__":
    main()
