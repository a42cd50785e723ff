"""Bench: a run with nothing new, cold from the CLI, against ``python -c "import polars"``.

Generates 3 data_points files (``--points`` each), runs ``etl4all run`` on them once with the
Google geocoder pointed at the fake Google server (in its own process), then alternates cold
reruns, which find every file done, with cold ``python -c "import polars"``: the median
whole-process wall time of each (``--runs``). Also counts the requests the reruns made.
Budgets (issue 18): 0 paid requests, faster than importing Polars.

Writes bench/results/noop.json.

Run: ``.venv/bin/python bench/noop.py [--points N] [--runs N]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import urllib.request
from pathlib import Path

from results import Figure, cold, etl4all, write, write_samples

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "geocoders"))

from fake_api import DEFAULT_KEY, GOOGLE_PATH, STATS_PATH, serve_in_process  # noqa: E402


def calls(base_url: str) -> int:
    """The requests the fake server has answered so far."""
    with urllib.request.urlopen(base_url + STATS_PATH, timeout=10) as response:
        return int(json.load(response)["calls"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000, help="records per file")
    parser.add_argument("--runs", type=int, default=7, help="alternated cold runs per side")
    args = parser.parse_args()

    os.environ["GOOGLE_MAPS_API_KEY"] = DEFAULT_KEY
    ours: list[float] = []
    polars: list[float] = []
    with tempfile.TemporaryDirectory(prefix="etl4all-bench-") as tmp, serve_in_process() as base:
        folder = Path(tmp) / "in"
        write_samples(folder, files=3, points=args.points, seed=18, dirty=0.01)
        run = etl4all(
            *("run", str(folder), "-q", "--geocoder", "google"),
            *("--google-url", base + GOOGLE_PATH, "--qps", "10000"),
            *("--state", f"sqlite:///{tmp}/state.db"),
            *("--warehouse", f"duckdb:///{tmp}/warehouse.duckdb"),
        )
        cold(run)
        first = calls(base)
        for attempt in range(args.runs):
            sides = [(ours, run), (polars, [sys.executable, "-c", "import polars"])]
            for times, argv in sides if attempt % 2 else sides[::-1]:
                times.append(cold(argv)[0])
        paid = (calls(base) - first) / args.runs
    value, baseline = statistics.median(ours), statistics.median(polars)
    print(f"first run: {first:,} requests for 3 files of {args.points:,} records")
    print(f"  rerun, nothing new    {value:.3f} s  {paid:g} requests per run")
    print(f"  python -c 'import polars'  {baseline:.3f} s")
    print(f"  ratio                 {value / baseline:.2f}x (budget < 1x)")
    write(
        "noop",
        [
            Figure(
                "rerun",
                "`etl4all run` with nothing new, whole process "
                "(baseline: `python -c 'import polars'`)",
                value,
                "s",
                baseline,
                "< 1× (imports no data library)",
            ),
            Figure(
                "rerun",
                "paid requests per rerun with nothing new (Google geocoder)",
                paid,
                "requests",
                None,
                "0",
            ),
        ],
    )


if __name__ == "__main__":
    main()
