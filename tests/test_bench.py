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
    # one tiny size: the bench's cost here is its cold processes (five per size), not the data
    done = bench(
        "cli.py", "--sizes", "3000", "--runs", "1", "--batch-size", "500", results=tmp_path
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


def test_e2e_bench_lists_its_options_without_importing_the_anchors(tmp_path: Path) -> None:
    # --help must work in `make test`'s venv, which has no dlt or geopy
    probe = (
        "import runpy, sys\n"
        "sys.argv = ['e2e.py', '--help']\n"
        "try:\n    runpy.run_path('e2e.py', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print('anchors imported:', sorted({'dlt', 'geopy'} & set(sys.modules)))\n"
    )
    helped = bench("-c", probe, results=tmp_path)
    assert helped.returncode == 0, helped.stderr
    for option in ("--runs", "--naive-runs", "--qps", "--concurrency", "--data"):
        assert option in helped.stdout
    assert "anchors imported: []" in helped.stdout


def test_e2e_figures_are_seconds_whose_ratio_below_one_means_etl4all_is_faster() -> None:
    sys.path.insert(0, str(BENCH))
    import argparse

    import e2e

    median = {"etl4all": 1.0, "dlt+geopy": 4.0, "naive": 60.0}
    median |= {"etl4all rerun": 0.1, "dlt+geopy rerun": 4.0}
    requests = {"etl4all": 10.0, "dlt+geopy": 10.0, "naive": 10.0}
    requests |= {"etl4all rerun": 0.0, "dlt+geopy rerun": 10.0}
    args = argparse.Namespace(runs=3, naive_runs=1, qps=1000.0, latency=0.02)
    first, naive, rerun, *_ = e2e.figures(median, requests, "3 files", args)
    assert (first.value, first.baseline, first.ratio) == (1.0, 4.0, 0.25)
    assert "4.0× faster" in first.name and first.budget == "≥ 3× faster (ratio ≤ 0.33)"
    assert naive.ratio == 1 / 60 and "median of 1" in naive.name
    assert rerun.ratio == 0.1 / 4.0 and "40.0× faster" in rerun.name
