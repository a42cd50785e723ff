"""Helpers of the services tests: start `etl4all` processes, look at queues and tables."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import polars as pl

from etl4all.broker import queues
from etl4all.parsing import parse
from etl4all.runners import wiring
from etl4all.settings import Settings
from etl4all.warehouse.read import read_warehouse


def etl4all(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """Start ``etl4all ARGS`` as a separate process with ``env`` added."""
    return subprocess.Popen(
        [sys.executable, "-m", "etl4all", *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(*processes: subprocess.Popen[str]) -> list[str]:
    """Wait for ``processes``; each must exit 0. Their output."""
    outputs = []
    for process in processes:
        out, _ = process.communicate(timeout=180)
        assert process.returncode == 0, out
        outputs.append(out)
    return outputs


def pipeline(env: dict[str, str], extractors: int = 1) -> None:
    """Run the extractors, then a transformer and a loader, each until its queue is idle."""
    finish(*(etl4all(env, "run-stage", "extract", "--once") for _ in range(extractors)))
    finish(
        etl4all(env, "run-stage", "transform", "--once"),
        etl4all(env, "run-stage", "load", "--once"),
    )


def expected(folder: Path) -> pl.DataFrame:
    """Distinct valid coordinates of the files, at 8 decimals."""
    points = pl.concat(parse.parse(p.read_bytes(), p.name).points for p in folder.glob("*.txt"))
    return points.select(pl.col("latitude", "longitude").round(8)).unique()


def rejected(folder: Path) -> int:
    """Rejects the parser finds in the files."""
    return sum(parse.parse(p.read_bytes(), p.name).rejects.height for p in folder.glob("*.txt"))


def count(env: dict[str, str], table_name: str) -> int:
    """Rows of a warehouse table."""
    import pymysql

    parts = urlsplit(env["ETL4ALL_WAREHOUSE_URL"])
    with (
        pymysql.connect(
            host=parts.hostname,
            port=parts.port or 3306,
            user=parts.username or "root",
            password=parts.password or "",
            database=parts.path.strip("/"),
        ) as conn,
        conn.cursor() as cur,
    ):
        cur.execute(f"SELECT count(*) FROM `{table_name}`")
        return int(cur.fetchone()[0])


def depths(env: dict[str, str]) -> dict[str, int]:
    """Messages ready in the points, addresses and dead-letter queues."""
    settings = Settings.load(environ=env)
    with wiring.open_broker(settings) as bus:
        return {
            name: bus.depth(queues.name(settings.queue_prefix, name))
            for name in (queues.POINTS, queues.ADDRESSES, queues.DEAD)
        }


def table(env: dict[str, str]) -> pl.DataFrame:
    """The address table, sorted by coordinate."""
    return read_warehouse(env["ETL4ALL_WAREHOUSE_URL"]).sort("latitude", "longitude")
