"""Parser throughput against a naive line-by-line regex parser, in the same process.

Generates RECORDS records (default 1,000,000) with `etl4all.sample`, parses them with the
vectorized parser (median of 3, after one untimed run) and with a straightforward Python loop
over lines, and writes records/s of both and their ratio to bench/results/parse.json.
Budget (DESIGN.md): ≥ 1,000,000 records/s on 2 cores. `bench/cli.py` measures the parser
as users run it (a cold `etl4all parse`).

    python bench/parse.py [RECORDS]
"""

from __future__ import annotations

import sys

from naive import naive
from results import Figure, median_seconds, write

from etl4all import sample
from etl4all.parsing import parse


def main() -> None:
    records = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    data = sample.render(sample.records(files=1, points=records, seed=1, dirty_rate=0.01))
    print(f"input: {records:,} records, {len(data) / 2**20:.0f} MiB")
    parse.parse(data, "bench.txt")
    fast, parsed = median_seconds(3, lambda: parse.parse(data, "bench.txt"))
    slow, pairs = median_seconds(1, lambda: naive(data))
    assert parsed.points.height == len(pairs)
    write(
        "parse",
        [
            Figure(
                "parse",
                f"warm parse in process, {records / 1e6:g}M records (baseline: naive per line)",
                records / fast,
                "records/s",
                records / slow,
                "≥ 1,000,000 records/s",
            )
        ],
    )


if __name__ == "__main__":
    main()
