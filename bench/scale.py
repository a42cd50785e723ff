"""Services mode scale-out: transformers sharing one quota, loaders sharing one table, freshness.

Everything runs as `etl4all run-stage` processes (the fault harness's :class:`Fleet`) against
the local RabbitMQ, Redis and MariaDB, with unique queue names, Redis keys and database:

1. **Transformers** (fake Google server in its own process, 50 ms per answer): the points of
   ``--files`` generated files are extracted into the queue, then 1, 2 and 4 transformers
   with a shared ``--qps`` cap and ``--concurrency`` low enough that one process cannot reach
   it (at 50 ms, 8 in flight ≈ 160 QPS) each run for ``--seconds`` after a warm-up: the calls
   the server got, per second (median of 3 windows), give points/s, the speed-up over one, and
   QPS / cap (and the most requests the server saw in any 1-s window). Each point is a distinct
   uncached coordinate, so points/s = calls/s; the runs take ~14,000 of the queued points.
2. **Loaders** (offline geocoder): the same files, geocoded, loaded by 1 and then by 2 loaders
   into fresh tables; rows/s, and the table's count and distinct keys against the files'.
3. **Freshness**: extract, transform (offline) and load running with ``--interval 1``; files
   are dropped into the source folder one by one; last byte → rows committed, p50/p95, and
   the settle time (``--settle``) part of it.

Writes ``bench/results/scale.json`` and prints a table. ``python bench/scale.py --help``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pymysql
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from faults.harness import Fleet  # noqa: E402
from geocoders.fake_api import serve_in_process  # noqa: E402
from results import Figure, write  # noqa: E402

from etl4all import parse, sample  # noqa: E402
from etl4all.runners import wiring  # noqa: E402
from etl4all.settings import Settings  # noqa: E402

MYSQL = os.environ.get("ETL4ALL_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306")
REDIS = os.environ.get("ETL4ALL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP = os.environ.get("ETL4ALL_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")


class Stack:
    """A unique database, Redis prefix and queue prefix; removed on :meth:`close`."""

    def __init__(self, name: str) -> None:
        self.id = f"{name}_{uuid.uuid4().hex[:8]}"
        self.db = f"etl4all_bench_{self.id}"
        self._sql("CREATE DATABASE `{}` CHARACTER SET utf8mb4")
        self.env = {
            "ETL4ALL_BROKER_URL": AMQP,
            "ETL4ALL_QUEUE_PREFIX": f"etl4all-bench-{self.id}",
            "ETL4ALL_STATE_URL": f"{REDIS}?prefix=etl4all-bench-{self.id}:",
            "ETL4ALL_WAREHOUSE_URL": f"{MYSQL.rstrip('/')}/{self.db}",
            "ETL4ALL_LOOKUP_URL": "",
            "ETL4ALL_LOG_LEVEL": "INFO",
        }
        with wiring.open_warehouse(self.settings()) as wh:
            wh.init()

    def settings(self) -> Settings:
        """The stack's settings as the workers read them."""
        return Settings.load(environ=self.env)

    def _sql(self, statement: str) -> list[tuple[Any, ...]]:
        with pymysql.connect(host="127.0.0.1", user="root") as conn, conn.cursor() as cur:
            cur.execute(statement.format(self.db))
            return list(cur.fetchall())

    def table(self) -> tuple[int, int]:
        """Rows of the address table and distinct (latitude, longitude) among them."""
        rows = self._sql("SELECT count(*), count(DISTINCT latitude, longitude) FROM `{}`.address")
        return int(rows[0][0]), int(rows[0][1])

    def rows_of(self, source: str) -> int:
        """Rows loaded from one source file."""
        with (
            pymysql.connect(host="127.0.0.1", user="root", database=self.db) as conn,
            conn.cursor() as cur,
        ):
            cur.execute("SELECT count(*) FROM address WHERE source_file = %s", (source,))
            return int(cur.fetchone()[0])

    def depths(self) -> dict[str, int]:
        """Messages ready in the points and addresses queues."""
        with wiring.open_broker(self.settings()) as bus:
            top = bus.topology
            return {"points": bus.depth(top.points), "addresses": bus.depth(top.addresses)}

    def close(self) -> None:
        """Drop the database, the queues and the Redis keys."""
        with wiring.open_broker(self.settings()) as bus:
            bus.delete()
        self._sql("DROP DATABASE IF EXISTS `{}`")
        client = redis.Redis.from_url(REDIS)
        keys = list(client.scan_iter(match=f"etl4all-bench-{self.id}:*", count=1000))
        if keys:
            client.delete(*keys)


def distinct(points: pl.DataFrame) -> int:
    """Distinct coordinates (8 decimals) of a points frame: the rows it must load."""
    return points.select(pl.col("latitude", "longitude").round(8)).unique().height


def wait(what: str, condition: Callable[[], bool], timeout: float) -> float:
    """Poll ``condition`` every 50 ms; the seconds it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - started


def run_once(env: dict[str, str], stage: str) -> None:
    """One ``run-stage STAGE --once`` worker, until its input is done."""
    done = subprocess.run(
        [sys.executable, "-m", "etl4all", "run-stage", stage, "--once"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"{stage} failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")


def api_stats(base: str) -> dict[str, Any]:
    """The fake server's counters."""
    import urllib.request

    with urllib.request.urlopen(f"{base}/_fake/stats?window=1.0", timeout=10) as answer:
        return dict(json.load(answer))


def transformers(args: argparse.Namespace, folder: Path, work: Path) -> list[Figure]:
    """Points/s of 1, 2 and 4 transformers sharing one QPS cap (see the module docstring)."""
    stack = Stack("transform")
    figures: list[Figure] = []
    try:
        with serve_in_process(latency=0.05) as base:
            env = {
                **stack.env,
                "ETL4ALL_SOURCE_URL": str(folder),
                "ETL4ALL_SETTLE_SECONDS": "0",
                "ETL4ALL_BATCH_ROWS": "2000",
                "ETL4ALL_GEOCODER": "google",
                "ETL4ALL_GOOGLE_URL": f"{base}/maps/api/geocode/json",
                "GOOGLE_MAPS_API_KEY": "fake-key-Zq8wX3vY",
                "ETL4ALL_QPS": str(args.qps),
                "ETL4ALL_CONCURRENCY": str(args.concurrency),
            }
            run_once(env, "extract")
            one = 0.0
            for n in (1, 2, 4):
                fleet = Fleet(work / f"logs-t{n}")
                fleet.start(env, extract=0, transform=n, load=0)
                wait("transformers", lambda f=fleet: all(w.ready() for w in f.workers), 60)
                time.sleep(args.warmup)
                rates = []  # the median of 3 windows: a dip from a neighbour's load is left out
                for _ in range(3):
                    before, started = api_stats(base)["calls"], time.monotonic()
                    time.sleep(args.seconds / 3)
                    after = api_stats(base)
                    rates.append((after["calls"] - before) / (time.monotonic() - started))
                rate = statistics.median(rates)
                fleet.stop()
                fleet.close()
                one = one or rate
                figures += [
                    Figure(
                        "scale-out",
                        f"{n} transformer(s): points/s (baseline: 1 transformer)",
                        rate,
                        "points/s",
                        baseline=one,
                        budget=f"speed-up min({n}, cap / 1-process rate)",
                    ),
                    Figure(
                        "scale-out",
                        f"{n} transformer(s): API calls/s (baseline: the shared cap)",
                        rate,
                        "QPS",
                        baseline=args.qps,
                        budget="≥ 0.9 of the cap once reachable, ≤ 1",
                    ),
                ]
            figures.append(
                Figure(
                    "scale-out",
                    "most requests in any 1-s window, all runs (baseline: the cap)",
                    after["max_in_window"],
                    "requests",
                    baseline=args.qps,
                    budget="≤ 1 of the cap",
                )
            )
    finally:
        stack.close()
    return figures


def loaders(folder: Path, work: Path) -> list[Figure]:
    """Rows/s of 1 and 2 loaders on one table, and its count and distinct keys."""
    points = pl.concat(parse.parse(p.read_bytes(), p.name).points for p in folder.glob("*.txt"))
    want = distinct(points)
    figures: list[Figure] = []
    one = 0.0
    for n in (1, 2):
        stack = Stack(f"load{n}")
        try:
            env = {**stack.env, "ETL4ALL_SOURCE_URL": str(folder), "ETL4ALL_SETTLE_SECONDS": "0"}
            run_once(env, "extract")
            run_once(env, "transform")
            fleet = Fleet(work / f"logs-l{n}-load")
            fleet.start(env, extract=0, transform=0, load=n)
            wait("loaders", lambda f=fleet: all(w.ready() for w in f.workers), 60)
            started, first = time.monotonic(), stack.table()[0]  # from when all take work
            wait(
                "loaders", lambda s=stack: s.table()[0] >= want and not s.depths()["addresses"], 300
            )
            seconds = time.monotonic() - started
            fleet.stop()
            fleet.close()
            rows, keys = stack.table()
        finally:
            stack.close()
        rate = (rows - first) / seconds
        one = one or rate
        figures += [
            Figure("scale-out", f"{n} loader(s): rows/s (baseline: 1 loader)", rate, "rows/s", one),
            Figure(
                "scale-out",
                f"{n} loader(s): distinct keys in the table (baseline: expected)",
                keys,
                "rows",
                baseline=want,
                budget="rows = distinct keys = expected",
            ),
        ]
        if rows != want or keys != want:
            raise SystemExit(f"{n} loaders: {rows} rows, {keys} distinct keys, want {want}")
    return figures


def freshness(args: argparse.Namespace, work: Path) -> list[Figure]:
    """Last byte of a file → its rows committed, with the workers polling every second."""
    staged, folder = work / "fresh-staged", work / "fresh"
    folder.mkdir()
    files = sample.write_sample(staged, files=args.fresh_files, points=args.points, seed=21)
    stack = Stack("fresh")
    lags: list[float] = []
    try:
        env = {
            **stack.env,
            "ETL4ALL_SOURCE_URL": str(folder),
            "ETL4ALL_POLL_INTERVAL": "1",
            "ETL4ALL_SETTLE_SECONDS": str(args.settle),
        }
        fleet = Fleet(work / "logs-fresh")
        fleet.start(env)
        wait("workers", lambda: all(w.ready() for w in fleet.workers), 60)
        for path in files:
            rows = distinct(parse.parse(path.read_bytes(), path.name).points)
            os.replace(path, folder / path.name)  # the last byte lands now
            landed = time.monotonic()
            wait(path.name, lambda p=path, r=rows: stack.rows_of(p.name) >= r, 120)
            lags.append(time.monotonic() - landed)
        fleet.stop()
        fleet.close()
    finally:
        stack.close()
    p50 = statistics.median(lags)
    p95 = statistics.quantiles(lags, n=20)[-1] if len(lags) >= 2 else lags[0]
    return [
        Figure("freshness", "last byte → rows committed, p50", p50, "s"),
        Figure("freshness", "last byte → rows committed, p95", p95, "s"),
        Figure("freshness", "settle time (baseline: the p50)", args.settle, "s", baseline=p50),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100, help="generated files (default 100)")
    parser.add_argument("--points", type=int, default=2000, help="points per file (default 2000)")
    parser.add_argument("--qps", type=float, default=400, help="shared QPS cap (default 400)")
    parser.add_argument("--concurrency", type=int, default=8, help="per transformer (default 8)")
    parser.add_argument(
        "--seconds", type=float, default=15, help="measured part of a run (3 windows, median)"
    )
    parser.add_argument("--warmup", type=float, default=3, help="seconds before measuring")
    parser.add_argument("--fresh-files", type=int, default=8, help="files of the freshness run")
    parser.add_argument("--settle", type=float, default=1.0, help="--settle of the extractor")
    parser.add_argument(
        "--parts",
        default="transform,load,freshness",
        help="comma-separated parts to run (default all: transform,load,freshness)",
    )
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        folder = work / "in"
        sample.write_sample(folder, files=args.files, points=args.points, seed=7)
        figures = [
            *(transformers(args, folder, work) if "transform" in parts else []),
            *(loaders(folder, work) if "load" in parts else []),
            *(freshness(args, work) if "freshness" in parts else []),
        ]
    write("scale", figures)


if __name__ == "__main__":
    main()
