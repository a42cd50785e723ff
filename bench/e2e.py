"""Bench: the whole job end to end, cold from the CLI, against two anchors written without etl4all.

The input is the 3 real data_points files (``--data``, default ``../shared/data/data_points``
beside the repository; read in place, never copied) or, when that folder is missing, 3
generated files of 1,000 points. The fake Google server runs in its own process with 20 ms
per answer and no rate cap (a raised quota); every side is a new process:

- etl4all: ``etl4all run FOLDER --geocoder google --qps QPS``, fresh state and warehouse;
- dlt + geopy (``bench/anchors/dlt_geopy.py``): GoogleV3 on aiohttp, AsyncRateLimiter at
  ``1 / QPS``, dlt merge into DuckDB on the coordinate;
- naive (``bench/anchors/naive.py``): one synchronous GET and one INSERT per point.

First runs alternate the three sides (naive only in the first ``--naive-runs`` rounds: about
a minute each), then reruns on the same state alternate etl4all and dlt + geopy; figures are
medians. Requests paid per side come from the fake server's counter.
Budgets (issue 18): first run ≥ 3× faster than dlt + geopy and ≥ 50× faster than naive; a
rerun ≥ 50× faster than dlt + geopy's rerun.

Writes bench/results/e2e.json. Needs the bench extra: ``pip install -e '.[bench]'``.

Run: ``.venv/bin/python bench/e2e.py [--runs 3] [--naive-runs 1] [--qps 10000]``
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path

from results import Figure, cold_usage, etl4all, write, write_samples

ROOT = Path(__file__).resolve().parent.parent
ANCHORS = ROOT / "bench" / "anchors"
DATA = ROOT.parent / "shared" / "data" / "data_points"
sys.path.insert(0, str(ROOT / "tests" / "geocoders"))

from fake_api import DEFAULT_KEY, GOOGLE_PATH, STATS_PATH, serve_in_process  # noqa: E402

STAGE = "end-to-end"


def calls(base_url: str) -> int:
    """The requests the fake server has answered so far."""
    with urllib.request.urlopen(base_url + STATS_PATH, timeout=10) as response:
        return int(json.load(response)["calls"])


def inputs(data: Path, tmp: Path) -> tuple[Path, str]:
    """The folder of input files and how it is described: the real files, else samples."""
    if data.is_dir() and any(data.glob("*.txt")):
        return data, f"the {len(list(data.glob('*.txt')))} real files"
    folder = tmp / "samples"
    write_samples(folder, files=3, points=1_000, seed=18, dirty=0.01)
    return folder, "3 generated files of 1,000 points"


def main() -> None:
    """Measure the sides, print them and write bench/results/e2e.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="cold runs per side (median)")
    parser.add_argument(
        "--naive-runs", type=int, default=1, help="cold runs of the naive loader (~1 min each)"
    )
    parser.add_argument("--qps", type=float, default=10_000.0, help="the raised quota, both sides")
    parser.add_argument(
        "--concurrency", type=int, help="etl4all --concurrency (default: etl4all's own)"
    )
    parser.add_argument("--latency", type=float, default=0.02, help="fake server seconds/answer")
    parser.add_argument("--data", type=Path, default=DATA, help="folder of data_points files")
    args = parser.parse_args()
    missing = [name for name in ("dlt", "geopy") if importlib.util.find_spec(name) is None]
    if missing:
        raise SystemExit(f"e2e: {' and '.join(missing)} missing: pip install -e '.[bench]'")

    os.environ["GOOGLE_MAPS_API_KEY"] = DEFAULT_KEY
    os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"  # a benchmark never phones home
    times: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    paid: dict[str, list[int]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="etl4all-e2e-") as tmp,
        serve_in_process(latency=args.latency) as base,
    ):
        folder, described = inputs(args.data, Path(tmp))
        files = sorted(str(path) for path in folder.glob("*.txt"))

        def ours(work: Path) -> list[str]:
            return etl4all(
                *("run", str(folder), "-q", "--geocoder", "google"),
                *("--google-url", base + GOOGLE_PATH, "--qps", str(args.qps)),
                *(("--concurrency", str(args.concurrency)) if args.concurrency else ()),
                *("--state", f"sqlite:///{work}/state.db"),
                *("--warehouse", f"duckdb:///{work}/warehouse.duckdb"),
            )

        def dlt_geopy(work: Path) -> list[str]:
            script = str(ANCHORS / "dlt_geopy.py")
            options = ["--url", base, "--db", str(work / "dlt.duckdb"), "--qps", str(args.qps)]
            return [sys.executable, script, *files, *options]

        def naive(work: Path) -> list[str]:
            db = str(work / "naive.duckdb")
            return [sys.executable, str(ANCHORS / "naive.py"), *files, "--url", base, "--db", db]

        def measure(side: str, argv: list[str]) -> None:
            before = calls(base)
            seconds, _, used = cold_usage(argv)
            times.setdefault(side, []).append(seconds)
            cpu.setdefault(side, []).append(used)
            paid.setdefault(side, []).append(calls(base) - before)
            print(
                f"  {side:<18} {seconds:7.2f} s  {used:6.2f} s CPU  {paid[side][-1]:,} requests",
                flush=True,
            )

        sides: list[tuple[str, Callable[[Path], list[str]]]] = [
            ("etl4all", ours),
            ("dlt+geopy", dlt_geopy),
            ("naive", naive),
        ]
        for round_ in range(max(args.runs, args.naive_runs)):
            work = {name: Path(tmp) / f"{name}-{round_}" for name, _ in sides}
            order = sides[round_ % 3 :] + sides[: round_ % 3]
            for name, argv in order:
                if round_ < (args.naive_runs if name == "naive" else args.runs):
                    work[name].mkdir()
                    measure(name, argv(work[name]))
            if round_ < args.runs:  # reruns on this round's state: nothing new for etl4all
                for name, argv in order:
                    if name != "naive":
                        measure(f"{name} rerun", argv(work[name]))
    median = {side: statistics.median(values) for side, values in times.items()}
    cpus = {side: statistics.median(values) for side, values in cpu.items()}
    requests = {side: statistics.median(values) for side, values in paid.items()}
    print(f"{described}: medians {', '.join(f'{s} {t:.2f} s' for s, t in median.items())}")
    print(f"  CPU: {', '.join(f'{s} {t:.2f} s' for s, t in cpus.items())}")
    anchors = {name: importlib.metadata.version(name) for name in ("dlt", "geopy")}
    write("e2e", figures(median, requests, described, args, cpus), anchors)


def figures(
    median: dict[str, float],
    requests: dict[str, float],
    described: str,
    args: argparse.Namespace,
    cpus: dict[str, float] | None = None,
) -> list[Figure]:
    """The figures: seconds against each anchor (ratio < 1: etl4all is faster), requests,
    and the CPU seconds of the first runs (steadier than wall time on a loaded machine)."""
    setup = f"{described}, fake Google {args.latency * 1000:g} ms, --qps {args.qps:g}"

    def faster(side: str, anchor: str, target: float, runs: int, what: str) -> Figure:
        value, baseline = median[side], median[anchor]
        return Figure(
            STAGE,
            f"{what}, whole process, {setup}: {baseline / value:.1f}× faster "
            f"(baseline: {anchor.replace(' rerun', '')} {what}; median of {runs})",
            value,
            "s",
            baseline,
            f"≥ {target:g}× faster (ratio ≤ {1 / target:.2g})",
        )

    naive = "naive" in median  # --naive-runs 0 leaves it out
    return [
        faster("etl4all", "dlt+geopy", 3, args.runs, "first run"),
        *([faster("etl4all", "naive", 50, args.naive_runs, "first run")] if naive else []),
        faster("etl4all rerun", "dlt+geopy rerun", 50, args.runs, "rerun"),
        Figure(
            STAGE,
            "requests paid, first run (baseline: dlt + geopy"
            + (f"; naive paid {requests['naive']:,.0f})" if naive else ")"),
            requests["etl4all"],
            "requests",
            requests["dlt+geopy"],
            "= distinct coordinates",
        ),
        Figure(
            STAGE,
            "requests paid, rerun (baseline: dlt + geopy rerun)",
            requests["etl4all rerun"],
            "requests",
            requests["dlt+geopy rerun"],
            "0",
        ),
        *(
            [
                Figure(
                    STAGE,
                    "CPU seconds (user + system) of the first run (baseline: dlt + geopy; "
                    + (f"naive used {cpus['naive']:.2f} s; " if naive else "")
                    + f"median of {args.runs})",
                    cpus["etl4all"],
                    "s",
                    cpus["dlt+geopy"],
                    None,
                )
            ]
            if cpus
            else []
        ),
    ]


if __name__ == "__main__":
    main()
