"""Offline geocoder throughput: one vectorized call vs one call per coordinate.

    python bench/offline.py [KEYS]

Budget (DESIGN.md): ≥ 300,000 coordinates/s on 2 cores. Writes bench/results/offline.json.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import polars as pl
from results import Figure, write

from etl4all.geocoders.offline import OfflineGeocoder


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    rng = np.random.default_rng(1)
    keys = pl.DataFrame(
        {"latitude": rng.uniform(-33.7, -5.0, count), "longitude": rng.uniform(-73.9, -34.8, count)}
    )
    geocoder = OfflineGeocoder()
    geocoder.reverse(keys.head(10))  # loads the place tables once
    started = time.perf_counter()
    found = geocoder.reverse(keys).addresses
    fast = count / (time.perf_counter() - started)
    sample = keys.head(1000)
    started = time.perf_counter()
    for row in sample.iter_slices(1):
        geocoder.reverse(row)
    slow = sample.height / (time.perf_counter() - started)
    write(
        "offline",
        [
            Figure(
                "geocode",
                f"offline geocoder, {count / 1e6:g}M coordinates (baseline: one call each)",
                fast,
                "coordinates/s",
                slow,
                "≥ 300,000 coordinates/s",
            )
        ],
    )
    print(f"({found.height:,} rows)")


if __name__ == "__main__":
    main()
