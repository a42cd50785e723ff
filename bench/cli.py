"""The CLI as users run it: `etl4all parse` and `etl4all run`, cold, one new process per run.

Generates one data_points file per size (default 300k, 1M and 3M records, 1% dirty) in a
temporary folder and runs each command on it in a fresh process, several times: the median
wall time gives records/s, and the child's own peak RSS (``wait4``) the memory. Baselines
measured in the same run (this process generates nothing itself, so that its size does not
leak into the children's peak RSS: see ``results.cold``):

- parse records/s: the same parse warm, in one process that has imported everything and
  parsed the file once before (median of the runs): what a cold process costs on top;
- the floor: a cold process that only reads the file's lines with Polars
  (``pl.read_lines``), and the naive parser (``bench/naive.py``, a Python loop over the
  lines) as a cold process: each run of ``etl4all parse`` is followed by one of each, so the
  three share the machine's moments (medians of the runs);
- peak RSS and records/s at the larger sizes: the smallest size's, so the ratio shows growth
  (memory bounded by ``--batch-size``: ratio about 1);
- the time of the largest size over that of 1M records (budget ≤ 3.3 for 3x the records).

    python bench/cli.py [--sizes 300000,1000000,3000000] [--runs 3] [--run-runs 1]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from results import Figure, cold, etl4all, write, write_samples

PARSE_BUDGET = "≥ 1,000,000 records/s on 1M records"
HERE = Path(__file__).resolve().parent
FLOOR = "import polars as pl, sys; pl.read_lines(sys.argv[1])"
"""The floor of a cold parse: a new process that imports Polars and reads the file's lines."""
WARM = """
import statistics, sys, time
from pathlib import Path
from etl4all.parsing import reading
path, runs, batch = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
reading.parse_file(path, path.name, batch_rows=batch)
times = []
for _ in range(runs):
    started = time.perf_counter()
    reading.parse_file(path, path.name, batch_rows=batch)
    times.append(time.perf_counter() - started)
print(statistics.median(times))
"""
"""Median seconds of a warm in-process parse of the file (after one untimed parse)."""


def alternated(runs: int, commands: list[list[str]]) -> list[tuple[float, float]]:
    """Median seconds and median peak RSS (MiB) of each of ``commands``, cold, run in turn
    ``runs`` times (the first, then the second... then the first again)."""
    measured: list[list[tuple[float, float]]] = [[] for _ in commands]
    for _ in range(runs):
        for argv, times in zip(commands, measured, strict=True):
            times.append(cold(argv))
    return [
        (statistics.median(t for t, _ in times), statistics.median(r for _, r in times))
        for times in measured
    ]


def records(size: int) -> str:
    """``300k records``, ``1M records``."""
    return f"{size / 1e6:g}M records" if size >= 1_000_000 else f"{size / 1e3:g}k records"


def measure(sizes: list[int], runs: int, run_runs: int, batch: int, work: Path) -> list[Figure]:
    """Every figure of the cold CLI, for files of ``sizes`` records."""
    figures: list[Figure] = []
    parse_time: dict[int, float] = {}
    parse_rss: dict[int, float] = {}
    run_rate: dict[int, float] = {}
    run_rss: dict[int, float] = {}
    for size in sizes:
        folder = work / f"records_{size}"
        write_samples(folder, files=1, points=size, seed=size, dirty=0.01)
        (path,) = folder.glob("*.txt")
        warm = float(
            subprocess.run(
                [sys.executable, "-c", WARM, str(path), str(runs), str(batch)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        (seconds, rss), (floor, _), (slow, _) = alternated(
            runs,
            [
                etl4all("parse", "--batch-size", str(batch), str(path)),
                [sys.executable, "-c", FLOOR, str(path)],
                [sys.executable, str(HERE / "naive.py"), str(path)],
            ],
        )
        parse_time[size], parse_rss[size] = seconds, rss
        label, smallest = records(size), sizes[0]
        versus = f" (baseline: {records(smallest)})" if size != smallest else ""
        figures += [
            Figure(
                "parse",
                f"cold `etl4all parse`, {label} (baseline: warm, in process)",
                size / seconds,
                "records/s",
                size / warm,
                PARSE_BUDGET if size == 1_000_000 else None,
            ),
            Figure(
                "parse",
                f"cold `etl4all parse`, {label}: seconds (baseline: cold Polars read_lines, "
                "the floor; ratio = times the floor)",
                seconds,
                "s",
                floor,
                "≤ 2x the floor" if size == 1_000_000 else None,
            ),
            Figure(
                "parse",
                f"cold `etl4all parse`, {label} (baseline: cold naive per-line loop; "
                "ratio = times faster)",
                size / seconds,
                "records/s",
                size / slow,
                "≥ 10x the naive loop" if size == 1_000_000 else None,
            ),
            Figure(
                "parse",
                f"peak RSS, `etl4all parse`, {label}{versus}",
                rss,
                "MiB",
                parse_rss[smallest] if size != smallest else None,
                f"bounded by --batch-size ({batch:,})",
            ),
        ]
        state, warehouse = work / f"state_{size}.db", work / f"warehouse_{size}"
        measured = []
        for attempt in range(run_runs):
            measured.append(
                cold(
                    etl4all(
                        "run",
                        str(folder),
                        "-q",
                        "--batch-size",
                        str(batch),
                        "--state",
                        f"sqlite:///{state}.{attempt}",
                        "--warehouse",
                        f"duckdb:///{warehouse}.{attempt}.duckdb",
                    )
                )
            )
        run_rate[size] = size / statistics.median(seconds for seconds, _ in measured)
        run_rss[size] = statistics.median(rss for _, rss in measured)
        figures += [
            Figure(
                "embedded",
                f"cold `etl4all run` (offline, DuckDB), {label}{versus}",
                run_rate[size],
                "records/s",
                run_rate[smallest] if size != smallest else None,
                "records/s steady as files grow",
            ),
            Figure(
                "embedded",
                f"peak RSS, `etl4all run`, {label}{versus}",
                run_rss[size],
                "MiB",
                run_rss[smallest] if size != smallest else None,
                f"bounded by --batch-size ({batch:,})",
            ),
        ]
        print(
            f"{label}: parse {seconds:.2f} s, {rss:.0f} MiB (floor {floor:.2f} s, naive "
            f"{slow:.2f} s); run {run_rate[size]:,.0f} rec/s"
        )
    if 1_000_000 in parse_time and sizes[-1] > 1_000_000:
        largest = sizes[-1]
        figures.append(
            Figure(
                "parse",
                f"time of {records(largest)} over time of 1M (cold parse)",
                parse_time[largest] / parse_time[1_000_000],
                "x",
                None,
                f"≤ {1.1 * largest / 1e6:.1f} (linear)",
            )
        )
    return figures


def main() -> None:
    """Measure and write bench/results/cli.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="300000,1000000,3000000", help="records per file")
    parser.add_argument("--runs", type=int, default=3, help="cold parse runs per size")
    parser.add_argument("--run-runs", type=int, default=1, help="cold `run` runs per size")
    parser.add_argument("--batch-size", type=int, default=100_000, help="--batch-size given")
    parser.add_argument("--name", default="cli", help="results file name")
    args = parser.parse_args()
    sizes = sorted(int(size) for size in args.sizes.split(","))
    with tempfile.TemporaryDirectory(prefix="etl4all-bench-") as tmp:
        figures = measure(sizes, args.runs, args.run_runs, args.batch_size, Path(tmp))
    write(args.name, figures)


if __name__ == "__main__":
    main()
