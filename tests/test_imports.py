"""The CLI starts fast: importing it loads no data library (Polars, PyArrow, DuckDB, drivers)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("polars", "pyarrow", "numpy", "duckdb", "aiohttp", "pymysql", "pika", "redis", "rich")


def test_importing_the_cli_loads_no_heavy_library() -> None:
    code = "import sys, etl4all.cli; print(' '.join(sorted(sys.modules)))"
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()
    )
    assert sorted(loaded.intersection(HEAVY)) == []
