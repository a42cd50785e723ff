"""Embedded run: throughput, and memory bounded by the batch size, not by the input size.

Runs `etl4all run` (offline geocoder, DuckDB) in child processes on generated files:
the same batch size over a small and a 4x larger input, and a small and a large batch size
over the same input; writes points/s and peak RSS of each, and the ratios, to
bench/results/pipeline.json. `bench/cli.py` measures single large files.

    python bench/pipeline.py [POINTS_PER_FILE]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from results import Figure, cold, etl4all, write, write_samples


def run(folder: Path, batch_rows: int, work: Path) -> tuple[float, float]:
    """(seconds, peak RSS in MiB) of one `etl4all run` in a child process."""
    stamp = time.monotonic_ns()
    return cold(
        etl4all(
            "run",
            str(folder),
            "-q",
            *("--batch-size", str(batch_rows)),
            *("--warehouse", f"duckdb:///{work}/w{stamp}.duckdb"),
            *("--state", f"sqlite:///{work}/s{stamp}.db"),
        )
    )


def main() -> None:
    per_file = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        small, large = work / "small", work / "large"
        write_samples(small, files=2, points=per_file, seed=1, dirty=0.0)
        write_samples(large, files=8, points=per_file, seed=2, dirty=0.0)
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
