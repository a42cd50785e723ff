"""Anchor: a naive per-row loader, like the public solutions of this challenge.

Reads each data_points file line by line; for every coordinate, one synchronous GET to the
Google Geocoding endpoint (``urllib``, a new connection each time), then one ``INSERT`` per
row into DuckDB; one commit at the end. No dedup, no cache, no concurrency. No etl4all code.

Run: ``python bench/anchors/naive.py FILE... --port 8080 --db out.duckdb``
(key from ``GOOGLE_MAPS_API_KEY``; ``--url http://127.0.0.1:8080`` instead of ``--port``).
"""

from __future__ import annotations

import argparse
import json
import os
import urllib.parse
import urllib.request
from pathlib import Path

import duckdb

TABLE = """CREATE TABLE IF NOT EXISTS address (
    latitude DOUBLE, longitude DOUBLE, street VARCHAR, number VARCHAR, neighborhood VARCHAR,
    city VARCHAR, postal_code VARCHAR, state VARCHAR, country VARCHAR,
    formatted_address VARCHAR, source_file VARCHAR)"""
COLUMNS = (
    *("street", "number", "neighborhood", "city", "postal_code", "state", "country"),
    "formatted_address",
)
TYPES = {
    "route": "street",
    "street_number": "number",
    "sublocality": "neighborhood",
    "administrative_area_level_2": "city",
    "postal_code": "postal_code",
    "administrative_area_level_1": "state",
    "country": "country",
}


def reverse(endpoint: str, key: str, lat: float, lon: float) -> dict[str, str]:
    """One GET; the address components of the first result by column."""
    query = urllib.parse.urlencode({"latlng": f"{lat},{lon}", "key": key, "language": "pt-BR"})
    with urllib.request.urlopen(f"{endpoint}?{query}", timeout=30) as response:
        answer = json.load(response)
    if not answer["results"]:
        return {}
    first = answer["results"][0]
    row = {"formatted_address": first["formatted_address"]}
    for component in first["address_components"]:
        for kind in component["types"]:
            if kind in TYPES:
                row.setdefault(TYPES[kind], component["long_name"])
    return row


def main() -> None:
    """Geocode and insert every coordinate of the files, one at a time."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path, help="data_points files")
    parser.add_argument("--url", help="Google endpoint base, e.g. http://127.0.0.1:8080")
    parser.add_argument("--port", type=int, help="port of a Google-format server on 127.0.0.1")
    parser.add_argument("--db", type=Path, default=Path("naive.duckdb"), help="DuckDB file")
    args = parser.parse_args()
    if (args.url is None) == (args.port is None):
        parser.error("give one of --url or --port")
    endpoint = (args.url or f"http://127.0.0.1:{args.port}") + "/maps/api/geocode/json"
    key = os.environ.get("GOOGLE_MAPS_API_KEY")
    if not key:
        parser.error("set GOOGLE_MAPS_API_KEY")
    db = duckdb.connect(str(args.db))
    db.execute(TABLE)
    db.begin()
    rows = 0
    for path in args.files:
        lat = None
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("Latitude:"):
                lat = float(line.split()[-1])
            elif line.startswith("Longitude:") and lat is not None:
                lon = float(line.split()[-1])
                a = reverse(endpoint, key, lat, lon)
                db.execute(
                    "INSERT INTO address VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [lat, lon, *(a.get(column) for column in COLUMNS), path.name],
                )
                rows += 1
                lat = None
    db.commit()
    db.close()
    print(f"{rows} rows")


if __name__ == "__main__":
    main()
