"""How long ``etl4all report`` takes on a big warehouse (target: 1M rows in seconds).

Fills a throwaway warehouse with synthetic street-level rows (not timed), then times
``write_report`` on it, and on a warehouse of a thousandth of the rows as the baseline: the
ratio shows what the rows cost beyond the fixed cost of drawing the charts. Writes
bench/results/report.json. DuckDB by
default; ``--mysql`` uses throwaway databases on that server, dropped at the end.

    python bench/report.py [--rows 1000000] [--out report.html] [--mysql mysql://root@127.0.0.1:3306/]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "report"))

import synthetic  # noqa: E402
from results import Figure, write  # noqa: E402

from etl4all import warehouse  # noqa: E402
from etl4all.report.build import write_report  # noqa: E402


def fill(url: str, rows: int) -> float:
    """Load ``rows`` synthetic rows and some rejects; the seconds it took."""
    started = time.perf_counter()
    with warehouse.from_url(url) as wh:
        wh.init()
        for offset in range(0, rows, 250_000):
            part = synthetic.addresses(min(250_000, rows - offset), seed=offset)
            wh.load(part, part.clear())
        wh.load_rejects(synthetic.rejects())
    return time.perf_counter() - started


def drop_database(url: str) -> None:
    """Drop the throwaway MySQL database of ``url``."""
    from etl4all.warehouse.mysql_connection import Dsn, connect

    dsn = Dsn.parse(url)
    conn = connect(dsn)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{dsn.database}`")
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, help="keep the big report here")
    parser.add_argument("--mysql", help="server URL, e.g. mysql://root@127.0.0.1:3306/")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        timings = {}
        for rows in (max(1, args.rows // 1000), args.rows):
            if args.mysql:
                url = f"{args.mysql.rstrip('/')}/etl4all_bench_report_{uuid.uuid4().hex[:8]}"
            else:
                url = f"duckdb:///{tmp}/w{rows}.duckdb"
            filled = fill(url, rows)
            out = args.out if args.out and rows == args.rows else Path(tmp) / "r.html"
            written = write_report(url, out)
            timings[rows] = written.seconds
            if args.mysql:
                drop_database(url)
            print(
                f"{written.rows:>9,} rows: report {written.seconds:.2f} s "
                f"({written.bytes / 1024:,.0f} KiB; filling took {filled:.1f} s)"
            )
        small, big = timings.values()
    write(
        "report",
        [
            Figure(
                "report",
                f"`etl4all report` on {args.rows / 1e6:g}M rows "
                f"(baseline: {max(1, args.rows // 1000):,} rows)",
                big,
                "s",
                small,
                "1M rows in seconds",
            )
        ],
    )


if __name__ == "__main__":
    main()
