"""A batch on the wire: exact round trips, integrity checks and chunking."""

from __future__ import annotations

import datetime as dt
import hashlib
import io

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from etl4all import frames
from etl4all.broker import batch
from etl4all.errors import DataError


def points(n: int = 4) -> pl.DataFrame:
    frame = pl.DataFrame(
        {
            "source": ["São Paulo/ção 📍.txt", "b\tc\n\\", None, "x"][: min(n, 4)] * (n // 4 or 1),
            "line": list(range(1, n + 1)),
            "latitude": [-30.04982864, 0.0, -90.0, 89.123456789][: min(n, 4)] * (n // 4 or 1),
            "longitude": [-51.20150245, -0.0, 180.0, -179.99999999][: min(n, 4)] * (n // 4 or 1),
            "distance_km": [2.2959, None, 0.0, None][: min(n, 4)] * (n // 4 or 1),
            "bearing_deg": [None, 137.352, None, 359.999][: min(n, 4)] * (n // 4 or 1),
        }
    )
    return frames.cast_frame(frame, frames.POINTS_SCHEMA)


def test_round_trip_is_exact_with_nulls_and_unicode() -> None:
    frame = points()
    body, headers = batch.encode(frame, kind="points", batch_id="f00-00001", source="São.txt")
    assert body[:4] == b"PAR1"
    assert headers == {
        "batch_id": "f00-00001",
        "source": "São.txt",
        "rows": 4,
        "schema": "points",
        "sha256": hashlib.sha256(body).hexdigest(),
    }
    assert_frame_equal(batch.decode(body, headers), frame)


def test_addresses_round_trip_keeps_the_utc_timestamps() -> None:
    address = {name: ["Rua Sete de Setembro, 1º andar – Centro"] for name in frames.ADDRESS_FIELDS}
    frame = points(1).with_columns(
        **{name: pl.lit(value[0]) for name, value in address.items()},
        geocoder=pl.lit("offline"),
        geocode_status=pl.lit("OK"),
        geocoded_at=pl.lit(dt.datetime(2024, 5, 17, 13, 45, 7, 123456, tzinfo=dt.UTC)),
    )
    frame = frames.cast_frame(frame, frames.ADDRESSES_SCHEMA)
    body, headers = batch.encode(frame, kind="addresses", batch_id="a-00000", source="s")
    assert_frame_equal(batch.decode(body, headers), frame)


def test_empty_frame_round_trips() -> None:
    frame = frames.empty(frames.REJECTS_SCHEMA)
    body, headers = batch.encode(frame, kind="rejects", batch_id="r-00000", source="s")
    assert headers["rows"] == 0
    assert_frame_equal(batch.decode(body, headers), frame)


def test_encode_casts_and_refuses_frames_that_do_not_fit() -> None:
    loose = points().with_columns(pl.col("line").cast(pl.Int64), extra=pl.lit(1))
    body, headers = batch.encode(loose, kind="points", batch_id="b", source="s")
    assert batch.decode(body, headers).schema == pl.Schema(frames.POINTS_SCHEMA)
    with pytest.raises(DataError, match="missing columns"):
        batch.encode(points().drop("latitude"), kind="points", batch_id="b", source="s")
    with pytest.raises(DataError, match="unknown batch schema 'pints'"):
        batch.encode(points(), kind="pints", batch_id="b", source="s")


@pytest.fixture
def encoded() -> tuple[bytes, dict[str, object]]:
    return batch.encode(points(), kind="points", batch_id="e-00000", source="s")


def test_sha256_mismatch_is_a_data_error(encoded: tuple[bytes, dict[str, object]]) -> None:
    body, headers = encoded
    flipped = body[:100] + bytes([body[100] ^ 1]) + body[101:]
    with pytest.raises(DataError, match=r"e-00000.*sha256"):
        batch.decode(flipped, headers)
    with pytest.raises(DataError, match="no sha256"):
        batch.decode(body, {**headers, "sha256": ""})


def test_corrupt_body_with_matching_sha_is_a_data_error() -> None:
    garbage = b"not parquet at all"
    headers = {"batch_id": "g", "schema": "points", "sha256": hashlib.sha256(garbage).hexdigest()}
    with pytest.raises(DataError, match="not readable Parquet"):
        batch.decode(garbage, headers)


def test_schema_and_row_count_mismatch_are_data_errors(
    encoded: tuple[bytes, dict[str, object]],
) -> None:
    body, headers = encoded
    with pytest.raises(DataError, match="missing columns"):
        batch.decode(body, {**headers, "schema": "addresses"})
    with pytest.raises(DataError, match="unknown batch schema"):
        batch.decode(body, {**headers, "schema": "nope"})
    with pytest.raises(DataError, match="says 5 rows"):
        batch.decode(body, {**headers, "rows": 5})


def test_a_rejects_batch_of_an_older_worker_reads_with_a_null_detail_and_reasons() -> None:
    older = pl.DataFrame(
        {"source": ["a.txt"], "line": [3], "reason": ["unrecognized"], "text": ["x"]},
        schema_overrides={"line": pl.UInt32},
    )
    body = io.BytesIO()
    older.write_parquet(body)
    headers = {"sha256": hashlib.sha256(body.getvalue()).hexdigest(), "schema": "rejects"}
    read = batch.decode(body.getvalue(), headers)
    assert read.columns == list(frames.REJECTS_SCHEMA)
    assert read.row(0) == ("a.txt", 3, "unrecognized", "x", None, None)
    with pytest.raises(DataError, match="missing columns"):  # only added columns may lack
        batch.decode(body.getvalue(), {**headers, "schema": "points"})


def test_batch_id_is_deterministic() -> None:
    sha = hashlib.sha256(b"file content").hexdigest()
    assert batch.batch_id(sha, 3) == batch.batch_id(sha, 3) == f"{sha[:16]}-00003"
    assert batch.batch_id(sha, 3) != batch.batch_id(sha, 4)


def test_chunks_keep_bodies_under_the_limit_and_concatenate_to_the_input() -> None:
    n = 60_000
    index = pl.int_range(n, eager=True)
    noise = pl.concat_str(*(index.hash(seed).cast(pl.String) for seed in range(4)))
    frame = points(n).with_columns(source=noise)  # ~80 incompressible bytes per row
    max_bytes = 1024 * 1024
    parts = list(batch.chunks(frame, max_rows=25_000, max_bytes=max_bytes))
    assert len(parts) > 3
    sizes = []
    for i, part in enumerate(parts):
        body, _ = batch.encode(part, kind="points", batch_id=f"c-{i:05d}", source="s")
        sizes.append(len(body))
        assert part.height <= 25_000
    assert max(sizes) < max_bytes
    assert_frame_equal(pl.concat(parts), frame)


def test_chunks_respect_max_rows_and_skip_empty_frames() -> None:
    frame = points(40)
    assert [p.height for p in batch.chunks(frame, max_rows=15)] == [15, 15, 10]
    assert list(batch.chunks(frame.clear(), max_rows=15)) == []
    with pytest.raises(ValueError, match="max_rows"):
        list(batch.chunks(frame, max_rows=0))


def test_chunks_split_skewed_rows() -> None:
    """A region of huge rows is split finer than the average row size suggests."""
    frame = points(400).with_columns(
        source=pl.when(pl.int_range(pl.len()) < 20)
        .then(pl.lit("x" * 100_000))
        .otherwise(pl.lit("small"))
    )
    parts = list(batch.chunks(frame, max_rows=1_000, max_bytes=1024 * 1024))
    assert all(part.estimated_size() < 1024 * 1024 for part in parts)
    assert_frame_equal(pl.concat(parts), frame)
