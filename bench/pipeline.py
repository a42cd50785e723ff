"""Embedded run: throughput, and memory bounded by the batch size, not by the input size.

Runs `etl4all run` (offline geocoder, DuckDB) in child processes on generated files:
the same batch size over a small and a 4x larger input, and a small and a large batch size
over the same input; writes points/s and peak RSS of each, and the ratios, to
bench/results/pipeline.json. `bench/cli.py` measures single large files.

    python bench/pipeline.py [POINTS_PER_FILE]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results import Figure, write

from etl4all.sample import write_sample

CHILD = """
import resource, sys
from etl4all.cli import main
sys.argv = sys.argv[1:]
try:
    main()
except SystemExit as exit:
    if exit.code:
        raise
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""
"""`etl4all run` that reports its own peak RSS (KiB) on its last stderr line."""


def run(folder: Path, batch_rows: int, work: Path) -> tuple[float, float]:
    """(seconds, peak RSS in MiB) of one `etl4all run` in a child process."""
    started = time.perf_counter()
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            "etl4all",
            "run",
            str(folder),
            "-q",
            "--batch-size",
            str(batch_rows),
            "--warehouse",
            f"duckdb:///{work}/w{time.monotonic_ns()}.duckdb",
            "--state",
            f"sqlite:///{work}/s{time.monotonic_ns()}.db",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if child.returncode != 0:
        raise SystemExit(child.stderr)
    return seconds, float(child.stderr.strip().splitlines()[-1]) / 1024


def main() -> None:
    per_file = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        small, large = work / "small", work / "large"
        write_sample(small, files=2, points=per_file, seed=1)
        write_sample(large, files=8, points=per_file, seed=2)
        rows = []
        for label, folder, files, batch in (
            ("2 files, batch 10k", small, 2, 10_000),
            ("8 files, batch 10k", large, 8, 10_000),
            ("8 files, batch 100k", large, 8, 100_000),
        ):
            seconds, peak = run(folder, batch, work)
            rows.append((label, files * per_file, seconds, peak))
    small_rss = rows[0][3]
    figures = []
    for index, (label, points, seconds, peak) in enumerate(rows):
        figures += [
            Figure("embedded", f"`etl4all run`, {label}", points / seconds, "points/s"),
            Figure(
                "embedded",
                f"peak RSS, {label}" + (" (baseline: 2 files, batch 10k)" if index else ""),
                peak,
                "MiB",
                small_rss if index else None,
                "ratio ≈ 1 for 4x the input, same batch" if "8 files, batch 10k" in label else None,
            ),
        ]
    write("pipeline", figures)


if __name__ == "__main__":
    main()
