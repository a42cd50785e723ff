"""Bench: client CPU per request of the API geocoder against a bare aiohttp loop.

Both sides make the same GETs (Google's query, the same coordinates, ``concurrency`` in
flight) to the fake Google server running in its own process, read each body and decode its
JSON; etl4all also limits the rate (raised far above what is reached), retries, redacts and
builds the address rows. The figure is the client process's CPU seconds per 1,000 requests
(``time.process_time``: the server's CPU is not counted), alternated, median of ``--rounds``.
Budget (issue 18): ≤ 1.5× the bare loop.

Writes bench/results/request_path.json.

Run: ``.venv/bin/python bench/request_path.py [--keys N] [--rounds N]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

import aiohttp
import yarl
from results import Figure, write

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "geocoders"))

from fake_api import DEFAULT_KEY, GOOGLE_PATH, serve_in_process  # noqa: E402

from etl4all.geocoders.google import GoogleGeocoder  # noqa: E402
from etl4all.geocoders.runner import shown  # noqa: E402
from etl4all.quota.memory import RateLimiter  # noqa: E402

CONCURRENCY = 32
QPS = 1_000_000.0
"""A raised quota: the limiter is on the path but never makes a request wait."""


def coordinates(n: int) -> list[tuple[float, float]]:
    """``n`` distinct coordinates around Porto Alegre at 6 decimals."""
    return [(round(-30.1 + i * 0.000013, 6), round(-51.2 - i * 0.000007, 6)) for i in range(n)]


def bare(url: str, points: list[tuple[float, float]]) -> float:
    """CPU seconds of a plain aiohttp loop: GET, read, ``json.loads``; nothing else."""
    endpoint = yarl.URL(url)

    async def main() -> None:
        semaphore = asyncio.Semaphore(CONCURRENCY)
        connector = aiohttp.TCPConnector(limit=CONCURRENCY)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def one(lat: float, lon: float) -> None:
                query = {"latlng": shown(lat, lon), "key": DEFAULT_KEY, "language": "pt-BR"}
                async with semaphore, session.get(endpoint.update_query(query)) as response:
                    json.loads(await response.read())

            await asyncio.gather(*(one(lat, lon) for lat, lon in points))

    started = time.process_time()
    asyncio.run(main())
    return time.process_time() - started


def etl4all(url: str, points: list[tuple[float, float]]) -> float:
    """CPU seconds of ``GoogleGeocoder.reverse`` for the same coordinates."""
    import polars as pl

    keys = pl.DataFrame(points, schema=["latitude", "longitude"], orient="row")
    geocoder = GoogleGeocoder(
        key=DEFAULT_KEY,
        url=url,
        concurrency=CONCURRENCY,
        limiter=RateLimiter(QPS),
    )
    started = time.process_time()
    result = geocoder.reverse(keys)
    seconds = time.process_time() - started
    if result.calls != len(points) or result.addresses.height != len(points):
        raise SystemExit(f"etl4all made {result.calls} calls for {len(points)} coordinates")
    return seconds


def main() -> None:
    """Run the bench and print the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=5_000, help="requests per side and round")
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds (median)")
    args = parser.parse_args()

    ours: list[float] = []
    theirs: list[float] = []
    with serve_in_process() as base_url:
        url = base_url + GOOGLE_PATH
        bare(url, coordinates(200))  # warm both: imports, the server's first connections
        etl4all(url, coordinates(200))
        for round_ in range(args.rounds):
            points = coordinates(args.keys + round_)  # new coordinates each round
            if round_ % 2:
                ours.append(etl4all(url, points))
                theirs.append(bare(url, points))
            else:
                theirs.append(bare(url, points))
                ours.append(etl4all(url, points))
    per_1000 = 1000 / args.keys
    value = statistics.median(ours) * per_1000
    baseline = statistics.median(theirs) * per_1000
    print(f"{args.keys:,} requests per side, concurrency {CONCURRENCY}, {args.rounds} rounds")
    print(f"  etl4all GoogleGeocoder  {value:.3f} CPU s / 1,000 requests  {ours}")
    print(f"  bare aiohttp loop       {baseline:.3f} CPU s / 1,000 requests  {theirs}")
    print(f"  ratio                   {value / baseline:.2f}x (budget ≤ 1.5x)")
    write(
        "request_path",
        [
            Figure(
                "geocode",
                "client CPU per 1,000 requests (baseline: a bare aiohttp loop, same requests)",
                value,
                "CPU s",
                baseline,
                "≤ 1.5×",
            )
        ],
    )


if __name__ == "__main__":
    main()
