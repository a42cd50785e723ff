"""Anchor: the same job written with dlt + geopy the way their docs suggest.

A dlt resource parses the data_points files ("Latitude:"/"Longitude:"/"Distance:" records,
plain Python) and yields a page of rows per file; an async dlt transformer reverse-geocodes
each page with geopy's ``GoogleV3`` on the aiohttp adapter, every call through
``AsyncRateLimiter`` (``min_delay_seconds = 1 / qps``) and all of a page's calls at once
with ``asyncio.gather`` (geopy's own example for services slower than the delay); the rows go
to DuckDB with ``write_disposition="merge"`` on ``primary_key=("latitude", "longitude")``.
A rerun leaves the same rows but pays again for every coordinate: neither library keeps a
geocode cache, and none is added here. No etl4all code is used.

Run: ``python bench/anchors/dlt_geopy.py FILE... --port 8080 --db out.duckdb [--qps 50]``
(key from ``GOOGLE_MAPS_API_KEY``; ``--url http://127.0.0.1:8080`` instead of ``--port``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dlt
from geopy.adapters import AioHTTPAdapter
from geopy.extra.rate_limiter import AsyncRateLimiter
from geopy.geocoders import GoogleV3

NUMBER = re.compile(r"(-?\d+(?:\.\d+)?)\s*$")
DISTANCE = re.compile(r"Distance:\s*(-?[\d.]+)\s*km\s*Bearing:\s*(-?[\d.]+)")
COMPONENTS = {
    "street": "route",
    "number": "street_number",
    "neighborhood": "sublocality",
    "city": "administrative_area_level_2",
    "postal_code": "postal_code",
    "state": "administrative_area_level_1",
    "country": "country",
}
"""Column ← the Google address component type it is read from."""
TIMEOUT = 30.0
"""Seconds per request. geopy's default (1 s) counts the wait for one of aiohttp's 100
connections, so a gathered page of 1,000 calls times out and retries after 5 s: a user who
saw that would raise it, as geopy's docs advise."""


def records(path: Path) -> Iterator[dict[str, Any]]:
    """The points of one data_points file: a Latitude line, the Longitude line after it."""
    row: dict[str, Any] | None = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        value = NUMBER.search(line)
        if line.startswith("Latitude:") and value:
            row = {"latitude": float(value[1]), "source_file": path.name, "source_line": number}
        elif line.startswith("Longitude:") and value and row and "longitude" not in row:
            row["longitude"] = float(value[1])
            yield row
        elif line.startswith("Distance:") and row and "longitude" in row:
            found = DISTANCE.search(line)
            if found:
                row["distance_km"], row["bearing_deg"] = float(found[1]), float(found[2])
            row = None
        else:
            row = None


@dlt.resource(name="points")
def points(files: list[Path]) -> Iterator[list[dict[str, Any]]]:
    """One page of rows per file (dlt's docs: yield pages, not rows)."""
    for path in files:
        yield list(records(path))


def address(location: Any) -> dict[str, Any]:
    """The address columns of geopy's Location (its ``raw`` Google result)."""
    if location is None:
        return {"geocode_status": "ZERO_RESULTS"}
    found = {}
    for component in location.raw["address_components"]:
        for column, kind in COMPONENTS.items():
            if kind in component["types"] and column not in found:
                found[column] = component["long_name"]
    return found | {"formatted_address": location.address, "geocode_status": "OK"}


def geocoded(domain: str, scheme: str, key: str, qps: float) -> Any:
    """The async transformer that adds the address of every point of a page."""

    @dlt.transformer(
        name="address",
        write_disposition="merge",
        primary_key=("latitude", "longitude"),
    )
    async def geocode(page: list[dict[str, Any]]) -> list[dict[str, Any]]:
        async with GoogleV3(
            api_key=key,
            domain=domain,
            scheme=scheme,
            timeout=TIMEOUT,
            adapter_factory=AioHTTPAdapter,
        ) as geolocator:
            reverse = AsyncRateLimiter(geolocator.reverse, min_delay_seconds=1 / qps)
            found = await asyncio.gather(
                *(reverse((row["latitude"], row["longitude"]), language="pt-BR") for row in page)
            )
        return [row | address(location) for row, location in zip(page, found, strict=True)]

    return geocode


def main() -> None:
    """Parse the arguments, run the pipeline once and print dlt's load info."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path, help="data_points files")
    parser.add_argument("--url", help="Google endpoint base, e.g. http://127.0.0.1:8080")
    parser.add_argument("--port", type=int, help="port of a Google-format server on 127.0.0.1")
    parser.add_argument("--db", type=Path, default=Path("dlt_geopy.duckdb"), help="DuckDB file")
    parser.add_argument("--qps", type=float, default=50.0, help="requests per second (quota)")
    parser.add_argument(
        "--pipelines-dir", type=Path, help="dlt's working folder (default: beside --db)"
    )
    args = parser.parse_args()
    if (args.url is None) == (args.port is None):
        parser.error("give one of --url or --port")
    url = urllib.parse.urlsplit(args.url or f"http://127.0.0.1:{args.port}")
    key = os.environ.get("GOOGLE_MAPS_API_KEY")
    if not key:
        parser.error("set GOOGLE_MAPS_API_KEY")
    pipeline = dlt.pipeline(
        pipeline_name="data_points",
        pipelines_dir=str(args.pipelines_dir or args.db.with_suffix(".dlt")),
        destination=dlt.destinations.duckdb(str(args.db)),
        dataset_name="etl",
    )
    geocode = geocoded(url.netloc, url.scheme, key, args.qps)
    info = pipeline.run(points(args.files) | geocode)
    print(info)


if __name__ == "__main__":
    main()
