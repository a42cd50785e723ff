"""Bench: API geocoding throughput against the fake Google server (DESIGN.md budget).

The fake server answers after 50 ms and refuses (OVER_QUERY_LIMIT) anything above 200
requests in a sliding 1-s window. The GoogleGeocoder runs with qps=200, concurrency=32 over
20,000 distinct coordinates; the budget is calls == distinct keys at >= 90 % of the cap.
The sequential baseline (one request at a time, no rate limit) runs on a subset and is
extrapolated to the full set.

Writes bench/results/geocode.json.

Run: ``.venv/bin/python bench/geocode.py [--keys N] [--baseline-keys N]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import polars as pl
from results import Figure, write

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "geocoders"))

from fake_api import DEFAULT_KEY, GOOGLE_PATH, STATS_PATH, serve_in_process  # noqa: E402

from etl4all.geocoders.google import GoogleGeocoder  # noqa: E402
from etl4all.quota.memory import RateLimiter  # noqa: E402

LATENCY = 0.05
CAP = 200
CONCURRENCY = 32


def keys(n: int, seed: int = 42) -> pl.DataFrame:
    """``n`` distinct coordinates around Porto Alegre at 6 decimals."""
    frame = pl.DataFrame(
        {
            "latitude": pl.int_range(0, n, eager=True) * 0.000013 - 30.1,
            "longitude": pl.int_range(0, n, eager=True) * -0.000007 - 51.2,
        }
    ).with_columns(pl.all().round(6))
    return frame.unique().sample(fraction=1.0, seed=seed, shuffle=True)


def _stats(base_url: str) -> dict[str, Any]:
    with urllib.request.urlopen(base_url + STATS_PATH, timeout=10) as response:
        return json.load(response)  # type: ignore[no-any-return]


def main() -> None:
    """Run the bench and print the numbers."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keys", type=int, default=20_000)
    parser.add_argument("--baseline-keys", type=int, default=200)
    args = parser.parse_args()

    batch = keys(args.keys)
    # The server runs in its own process, as the real one would: in the same process it would
    # share the GIL with the client, and its stalls would bunch the requests it sees.
    with serve_in_process(latency=LATENCY, qps_cap=CAP) as base_url:
        google = GoogleGeocoder(
            key=DEFAULT_KEY, url=base_url + GOOGLE_PATH, qps=float(CAP), concurrency=CONCURRENCY
        )
        started = time.perf_counter()
        result = google.reverse(batch)
        seconds = time.perf_counter() - started
        stats = _stats(base_url)
    window = stats["max_in_window"]
    refused = stats["answers"].get("OVER_QUERY_LIMIT", 0)
    achieved = result.calls / seconds

    with serve_in_process(latency=LATENCY) as base_url:
        sequential = GoogleGeocoder(
            key=DEFAULT_KEY,
            url=base_url + GOOGLE_PATH,
            concurrency=1,
            limiter=RateLimiter(1_000_000),
        )
        subset = batch.head(args.baseline_keys)
        started = time.perf_counter()
        base = sequential.reverse(subset)
        base_seconds = time.perf_counter() - started
        base_qps = base.calls / base_seconds

    print(f"fake Google API, own process: {LATENCY * 1000:.0f} ms latency, cap {CAP} QPS")
    print(f"geocoder: qps={CAP}, concurrency={CONCURRENCY}, keys={batch.height:,}")
    print(f"  calls            {result.calls:,} (distinct keys {batch.height:,})")
    print(f"  retries          {result.retries:,} (server refused {refused:,} over the cap)")
    print(f"  rows             {result.addresses.height:,} OK, {result.failed.height:,} failed")
    print(f"  seconds          {seconds:.2f}")
    print(f"  achieved         {achieved:.1f} QPS = {achieved / CAP:.1%} of the cap")
    print(f"  max in any 1 s   {window} requests at the server")
    print(
        f"sequential baseline: {base.calls} keys one at a time in {base_seconds:.2f} s = "
        f"{base_qps:.1f} QPS; extrapolated to {batch.height:,} keys: "
        f"{batch.height / base_qps:.0f} s"
    )
    print(f"speed-up vs sequential: {achieved / base_qps:.1f}x")
    ok = result.calls == batch.height and achieved >= 0.9 * CAP and window <= CAP
    print("budget (calls == keys, >= 90% of cap, cap never exceeded):", "PASS" if ok else "FAIL")
    write(
        "geocode",
        [
            Figure(
                "geocode",
                f"Google API, cap {CAP} QPS, {LATENCY * 1000:.0f} ms latency "
                "(baseline: one request at a time)",
                achieved,
                "requests/s",
                base_qps,
                None,
            ),
            Figure("geocode", "achieved QPS / cap", achieved / CAP, "x", None, "≥ 0.9"),
            Figure(
                "geocode",
                "most requests the server saw in any 1-s window / cap",
                window / CAP,
                "x",
                None,
                "≤ 1",
            ),
            Figure(
                "geocode",
                "API calls / distinct coordinates",
                result.calls / batch.height,
                "x",
                None,
                "= 1",
            ),
        ],
    )


if __name__ == "__main__":
    main()
