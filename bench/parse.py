"""Parser throughput against a naive line-by-line regex parser, in the same process.

Generates RECORDS records (default 1,000,000) with `etl4all.sample`, parses them with the
vectorized parser (best of 3) and with a straightforward Python loop over lines, and prints
records/s of both and their ratio. Budget (DESIGN.md): ≥ 1,000,000 records/s on 2 cores.

    python bench/parse.py [RECORDS]
"""

from __future__ import annotations

import re
import sys
import time

from etl4all import parse, sample

NAIVE_LINE = re.compile(r"^(Latitude|Longitude|Distance):.*?(-?\d+(?:\.\d+)?)\D*$")


def naive(data: bytes) -> list[tuple[float, float]]:
    """Baseline: decode, split, one regex per line, a Longitude right after a Latitude."""
    points, lat = [], None
    for line in data.decode("utf-8").splitlines():
        match = NAIVE_LINE.match(line.strip())
        if match is None:
            continue
        kind, value = match.group(1), float(match.group(2))
        if kind == "Longitude" and lat is not None:
            points.append((lat, value))
        lat = value if kind == "Latitude" else None
    return points


def best_of(runs: int, func, *args) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    best, result = float("inf"), None
    for _ in range(runs):
        started = time.perf_counter()
        result = func(*args)
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> None:
    records = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    data = sample.render(sample.records(files=1, points=records, seed=1, dirty_rate=0.01))
    print(f"input: {records:,} records, {len(data) / 2**20:.0f} MiB")
    fast, parsed = best_of(3, parse.parse, data, "bench.txt")
    slow, pairs = best_of(1, naive, data)
    assert parsed.points.height == len(pairs)  # type: ignore[union-attr, arg-type]
    print(f"etl4all parser : {records / fast:>12,.0f} records/s ({fast:.2f} s, best of 3)")
    print(f"naive per line : {records / slow:>12,.0f} records/s ({slow:.2f} s)")
    print(
        f"ratio          : {slow / fast:.1f}x   budget: 1,000,000 records/s "
        f"({'met' if records / fast >= 1_000_000 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
