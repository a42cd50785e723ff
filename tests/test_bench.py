"""The benchmark suite runs: its driver, a tiny cold-CLI measure, and the report it renders.

No timing is asserted here: the figures live in bench/results and docs/BENCHMARKS.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"


def bench(*args: str, results: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=BENCH,
        env={"ETL4ALL_BENCH_RESULTS": str(results), "PATH": "/usr/bin:/bin"},
    )


def test_run_all_lists_its_options_and_refuses_an_unknown_bench(tmp_path: Path) -> None:
    helped = bench("run_all.py", "--help", results=tmp_path)
    assert helped.returncode == 0 and "--only" in helped.stdout
    refused = bench("run_all.py", "--only", "nope", results=tmp_path)
    assert refused.returncode == 2 and "unknown bench nope" in refused.stderr


def test_cold_cli_bench_writes_figures_that_the_report_renders(tmp_path: Path) -> None:
    done = bench(
        "cli.py", "--sizes", "1000,3000", "--runs", "1", "--batch-size", "500", results=tmp_path
    )
    assert done.returncode == 0, done.stderr
    document = json.loads((tmp_path / "cli.json").read_text())
    assert document["bench"] == "cli" and document["machine"]["cores"] >= 1
    assert "polars" in document["versions"]
    stages = {figure["stage"] for figure in document["figures"]}
    assert stages == {"parse", "embedded"}
    assert all(figure["value"] > 0 for figure in document["figures"])
    out = tmp_path / "BENCHMARKS.md"
    rendered = bench("render.py", "--results", str(tmp_path), "--out", str(out), results=tmp_path)
    assert rendered.returncode == 0, rendered.stderr
    text = out.read_text()
    assert "## parse" in text and "## embedded" in text
    assert "| cold `etl4all parse`, 3k records (baseline: warm, in process) |" in text
