"""The naive parser the benchmarks compare with: decode, split, one regex per line, in Python.

Imports nothing heavy, so that run as a script it is the cold baseline of `bench/cli.py`
(a new process parsing a file line by line); `bench/parse.py` times it warm.

    python bench/naive.py FILE     # prints the points read
"""

from __future__ import annotations

import re
import sys

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


if __name__ == "__main__":
    with open(sys.argv[1], "rb") as file:
        print(len(naive(file.read())))
