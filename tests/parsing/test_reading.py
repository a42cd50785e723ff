"""Reading files in pieces cut where records start: the same result as parsing them whole."""

from __future__ import annotations

import gzip
import hashlib
import io
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from etl4all import fingerprint, sample
from etl4all.parsing import reading
from etl4all.parsing.parse import parse
from etl4all.parsing.records import complete_end
from etl4all.state.base import FileMark

LAT = "Latitude: 30°02′59″S   -30.04982864"
LON = "Longitude: 51°12′05″W   -51.20150245"
DIST = "Distance: 2.2959 km  Bearing: 137.352°"


def in_pieces(data: bytes, max_bytes: int) -> tuple[list[bytes], pl.DataFrame, pl.DataFrame]:
    """The pieces of ``data`` and the concatenated points and rejects parsed from them."""
    chunks = list(reading.pieces(io.BytesIO(data), max_bytes))
    parsed = [part for _, part in reading.parse_pieces(chunks, "f.txt")]
    return (
        chunks,
        pl.concat([part.points for part in parsed]),
        pl.concat([part.rejects for part in parsed]),
    )


@pytest.mark.parametrize("end", ["\r\n", "\n", "\r"])
def test_pieces_parse_as_the_whole_file_with_line_numbers_counted_on(end: str) -> None:
    data = sample.render(sample.records(files=1, points=600, seed=3, dirty_rate=0.1))
    data = data.replace(b"\r\n", end.encode())
    chunks, points, rejects = in_pieces(data, 1_000)
    whole = parse(data, "f.txt")
    assert len(chunks) > 50  # ~8 records per 1,000-byte block: most blocks cut one
    assert b"".join(chunks) == data
    assert all(chunk.startswith(b"Latitude") for chunk in chunks[1:])
    assert points.equals(whole.points)
    assert rejects.equals(whole.rejects)
    assert rejects.height > 20 and rejects.get_column("line").max() > 1_500


def test_a_record_straddling_a_block_boundary_keeps_its_lines_and_rejects_their_numbers() -> None:
    lines = [LAT, LON, DIST] * 3 + ["garbage", LAT, DIST, LAT, LON, DIST]
    data = "\n".join(lines).encode()
    boundary = data.index(b"Longitude", data.index(b"garbage"))  # inside the last record
    chunks, points, rejects = in_pieces(data, boundary)
    assert len(chunks) == 2 and chunks[1].startswith(LAT.encode())
    assert points.get_column("line").to_list() == [1, 4, 7, 13]
    assert rejects.select("line", "reason").rows() == [
        (10, "unrecognized"),
        (11, "missing_longitude"),
    ]


def test_a_piece_without_a_record_start_reads_on_until_one_comes() -> None:
    data = ("garbage\n" * 500 + "\n".join([LAT, LON, DIST]) + "\n").encode()
    chunks, points, rejects = in_pieces(data, 100)
    assert b"".join(chunks) == data
    assert points.get_column("line").to_list() == [501]
    assert rejects.select("line", "reason").rows() == [(1, "unrecognized")]  # one record


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.sampled_from([LAT, LON, DIST, "Latitude: -30,5", "latitude: 95", "noise", "", "x y"]),
        max_size=60,
    ),
    st.integers(40, 400),
)
def test_pieces_give_the_rejects_of_the_whole_file_for_any_lines(
    lines: list[str], max_bytes: int
) -> None:
    data = "\n".join(["x", *lines]).encode()  # a piece at least
    _, points, rejects = in_pieces(data, max_bytes)
    whole = parse(data, "f.txt")
    assert points.equals(whole.points)
    assert rejects.equals(whole.rejects)


def test_parse_file_equals_parse_of_its_bytes(tmp_path: Path) -> None:
    data = b"\xef\xbb\xbf" + sample.render(sample.records(files=1, points=300, seed=1))
    path = tmp_path / "f.txt"
    path.write_bytes(data)
    assert reading.parse_file(path, "f.txt", batch_rows=10).points.equals(
        parse(data, "f.txt").points
    )
    path.write_bytes(b"")
    assert reading.parse_file(path, "f.txt").points.is_empty()


def previous(data: bytes) -> FileMark:
    """The done mark of a version holding ``data``."""
    found = reading.digest(io.BytesIO(data), size_hint=len(data))
    return FileMark(found.size, 0.0, found.sha256, checkpoints=found.checkpoints)


def test_digest_hashes_the_file_and_a_prefix_of_it() -> None:
    data = bytes(range(256)) * 50_000  # several hash blocks
    found = reading.digest(io.BytesIO(data), previous=previous(data[:5_000_001]))
    assert found.size == len(data)
    assert found.sha256 == hashlib.sha256(data).hexdigest()
    assert found.prefix_sha256 == hashlib.sha256(data[:5_000_001]).hexdigest()
    assert found.prefix_of_previous is False  # it grew
    longer = previous(data + b"more")
    assert reading.digest(io.BytesIO(data), previous=longer).prefix_sha256 is None


@pytest.mark.parametrize("size", [0, 10, 64, 1000, 4096, 70_000, 5_000_000, 12_799_999])
def test_a_strict_prefix_of_the_version_loaded_is_told_apart(size: int) -> None:
    data = bytes(range(256)) * 50_000
    loaded = previous(data)
    assert reading.digest(io.BytesIO(data[:size]), previous=loaded).prefix_of_previous


@pytest.mark.parametrize("at", [100, 5_000, 300_000, 12_000_000])
def test_a_shrink_that_changes_bytes_before_its_end_is_a_new_version(at: int) -> None:
    data = bytes(range(256)) * 50_000
    changed = data[:at] + b"x" + data[at + 300 : 12_500_000]  # a record dropped at ``at``
    found = reading.digest(io.BytesIO(changed), previous=previous(data))
    assert found.prefix_of_previous is False


@pytest.mark.parametrize("size", [1, 16, 63, 64, 100])
def test_a_short_file_of_other_bytes_is_no_prefix(size: int) -> None:
    """Shorter than the first checkpoint, a file is still compared byte by byte."""
    data = bytes(range(256)) * 50
    other = bytes(reversed(data))[:size]
    assert reading.digest(io.BytesIO(other), previous=previous(data)).prefix_of_previous is False


def test_checkpoints_stay_small_for_any_size() -> None:
    for size in (0, 1_000, 10**6, 10**9):
        assert len(fingerprint.offsets(fingerprint.block_for(size), size)) < 80


@pytest.mark.parametrize(
    "tail",
    ["", f"{LAT}\n{LON}", f"{LAT}\n{LON}\n{DIST}", f"{LAT}\n{LON}\nDist", "x" * 200_000],
)
def test_tail_end_is_complete_end_of_the_whole_file(tail: str) -> None:
    data = ("\n".join([LAT, LON, DIST] * 3_000) + "\n" + tail).encode()
    assert reading.tail_end(io.BytesIO(data), len(data)) == complete_end(data)
    long_garbage = ("\n".join([LAT, LON]) + "\n" + "y\n" * 100_000 + "z").encode()
    assert reading.tail_end(io.BytesIO(long_garbage), len(long_garbage)) == complete_end(
        long_garbage
    )


@pytest.mark.parametrize("encode", [gzip.compress, lambda data: data.decode().encode("utf-16")])
def test_a_large_file_that_is_not_text_is_one_reject_in_any_number_of_pieces(
    encode: Callable[[bytes], bytes],
) -> None:
    """Issue 17, item 11: a UTF-16 or gzip file was thousands of line rejects."""
    record = f"{LAT}\r\n{LON}\r\n{DIST}\r\n".encode()
    data = encode(record * 200)
    size = len(data) // 10 + 1
    chunks = [data[start : start + size] for start in range(0, len(data), size)]
    parsed = list(reading.parse_pieces(chunks, "f.txt"))
    assert len(parsed) == len(chunks) > 1
    assert sum(size for size, _ in parsed) == len(data)  # every byte counted, as read
    rejects = pl.concat([part.rejects for _, part in parsed])
    assert sum(part.points.height for _, part in parsed) == 0 and rejects.height == 1
    assert rejects.row(0, named=True)["line"] == 1
    assert rejects.equals(parse(data, "f.txt").rejects)
