"""One member of a test fleet: geocode ``COUNT`` coordinates through the fake Google server.

``python fleet_client.py GOOGLE_URL KEY STATE_URL QPS FIRST COUNT``: a separate process with
its own :class:`~etl4all.geocoders.google.GoogleGeocoder` (8 requests in flight) whose limiter
is the fleet's in Redis (the quota of ``STATE_URL``). Coordinates are
``(-30 - (FIRST + i) / 1e4, -51)``, so each process's requests are told apart at the server.
It prints ``ready`` once built and starts when a line arrives on stdin, so the members of a
fleet start together however long each took to start. Last it prints ``starts`` and the
stamps the fleet gave its requests (Redis's clock: a loaded machine delays requests in
transit, never the fleet's schedule).
"""

from __future__ import annotations

import sys

import polars as pl

from etl4all import quota
from etl4all.geocoders.base import KEYS_SCHEMA
from etl4all.geocoders.google import GoogleGeocoder


def coordinates(first: int, count: int) -> pl.DataFrame:
    """The keys of one member: ``count`` coordinates from number ``first`` on."""
    lats = [round(-30 - (first + i) / 1e4, 6) for i in range(count)]
    return pl.DataFrame({"latitude": lats, "longitude": [-51.0] * count}, schema=KEYS_SCHEMA)


def main(url: str, key: str, state_url: str, qps: str, first: str, count: str) -> None:
    with quota.from_url(state_url) as shared:
        geocoder = GoogleGeocoder(key=key, url=url, qps=float(qps), concurrency=8, quota=shared)
        limiter = geocoder._runner.limiter
        granted = limiter.acquire
        starts: list[float] = []

        async def acquire() -> float:
            starts.append(await granted())
            return starts[-1]

        limiter.acquire = acquire  # type: ignore[method-assign]
        print("ready", flush=True)
        sys.stdin.readline()
        done = geocoder.reverse(coordinates(int(first), int(count)))
    print(f"geocoded {done.addresses.height} calls {done.calls}")
    print("starts", *starts)


if __name__ == "__main__":
    main(*sys.argv[1:])
