"""The data_points parser: every case of the format, and a property over random input."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import re

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from etl4all import frames
from etl4all.parsing.parse import not_text, parse, split_lines
from etl4all.parsing.records import complete_end
from etl4all.parsing.rejects import REASONS

LAT = "Latitude: 30°02′59″S   -30.04982864"
LON = "Longitude: 51°12′05″W   -51.20150245"
DIST = "Distance: 2.2959 km  Bearing: 137.352°"
RECORD = [LAT, LON, DIST]


def text(lines: list[str], end: str = "\r\n") -> bytes:
    return end.join(lines).encode("utf-8")


def reasons(data: bytes) -> list[tuple[int, str]]:
    return parse(data, "f.txt").rejects.select("line", "reason").rows()


def test_one_record_gives_its_values() -> None:
    points = parse(text(RECORD), "f.txt").points
    assert points.rows() == [("f.txt", 1, -30.04982864, -51.20150245, 2.2959, 137.352)]


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"])
def test_line_endings_are_all_understood(end: str) -> None:
    parsed = parse(text(RECORD * 2, end) + end.encode(), "f.txt")
    assert parsed.points.get_column("line").to_list() == [1, 4]
    assert parsed.rejects.is_empty()


def test_mixed_line_endings_keep_line_numbers() -> None:
    data = (LAT + "\r\n" + LON + "\r" + DIST + "\n" + LAT + "\r\n" + LON).encode()
    assert parse(data, "f").points.get_column("line").to_list() == [1, 4]


MIXTURE = [*RECORD, "junk café", "", LAT, "Latitude: 30,5", LON, "Longitude: x", DIST]
MIXTURE += ["Latitude: 30\x00", LAT, LON, "", "Distance: 1 km", LAT, LON]


@pytest.mark.parametrize(
    "ends", [["\n"], ["\r\n"], ["\r"], ["\r\n", "\n", "\r"], ["\r", "\r\n", "\r\n"]]
)
@pytest.mark.parametrize("encoding", ["utf-8", "latin-1"])
def test_points_and_rejects_do_not_depend_on_line_endings_or_encoding(
    ends: list[str], encoding: str
) -> None:
    lines = [line.replace("′", "'").replace("″", '"') for line in MIXTURE]
    data = "".join(line + ends[at % len(ends)] for at, line in enumerate(lines))
    expected = parse(text(lines, "\n"), "f")  # UTF-8, LF, no final line break
    parsed = parse(data.encode(encoding), "f")
    assert expected.points.height >= 2 and expected.rejects.height >= 3
    assert_frame_equal(parsed.points, expected.points)
    assert_frame_equal(parsed.rejects, expected.rejects)


def test_bom_is_ignored() -> None:
    assert parse(b"\xef\xbb\xbf" + text(RECORD), "f").points.height == 1


def test_latin1_file_falls_back() -> None:
    data = "\r\n".join(RECORD).replace("′", "'").replace("″", '"').encode("latin-1")
    points = parse(data, "f").points
    assert points.get_column("latitude").to_list() == [-30.04982864]


def test_blank_lines_and_stray_spaces_and_tabs() -> None:
    lines = ["", "  \t" + LAT + "\t ", "", "  " + LON, "\t" + DIST + "  ", "   ", ""]
    parsed = parse(text(lines), "f")
    assert parsed.points.select("line", "distance_km").rows() == [(2, 2.2959)]
    assert parsed.rejects.is_empty()


def test_positive_values_north_and_east() -> None:
    data = text(["Latitude: 10°30′00″N   10.5", "Longitude: 20°15′00″E   20.25"])
    assert parse(data, "f").points.select("latitude", "longitude").rows() == [(10.5, 20.25)]


def test_decimal_only_lines_are_accepted() -> None:
    data = text(["Latitude: -30.5", "Longitude:   -51.25"])
    assert parse(data, "f").points.select("latitude", "longitude").rows() == [(-30.5, -51.25)]


def test_missing_longitude_is_one_reject_with_its_lines() -> None:
    parsed = parse(text([LAT, DIST, *RECORD]), "f")
    assert parsed.rejects.rows() == [
        ("f", 1, "missing_longitude", f"{LAT}\n{DIST}", None, "missing_longitude")
    ]
    assert parsed.points.get_column("line").to_list() == [3]


def test_longitude_without_latitude_is_rejected() -> None:
    assert reasons(text([*RECORD, LON, DIST, *RECORD])) == [(4, "missing_latitude")]


def test_missing_distance_gives_a_point_without_distance() -> None:
    points = parse(text([LAT, LON, *RECORD]), "f").points
    assert points.select("line", "distance_km", "bearing_deg").rows() == [
        (1, None, None),
        (3, 2.2959, 137.352),
    ]


def test_orphan_distance_line_is_rejected() -> None:
    assert reasons(text([*RECORD, DIST])) == [(4, "orphan_distance")]


@pytest.mark.parametrize(
    ("lat", "lon"),
    [("-90.5", "-51.2"), ("90.00000001", "10"), ("10", "180.1"), ("10", "-200")],
)
def test_out_of_range_coordinates_are_rejected(lat: str, lon: str) -> None:
    data = text([f"Latitude: {lat}", f"Longitude: {lon}"])
    assert reasons(data) == [(1, "out_of_range")]


def test_edges_of_the_range_are_valid() -> None:
    data = text(["Latitude: -90", "Longitude: 180", "Latitude: 90", "Longitude: -180"])
    assert parse(data, "f").points.height == 2


def test_dms_that_disagrees_with_the_decimal_is_rejected() -> None:
    wrong_minute = "Latitude: 30°03′59″S   -30.04982864"
    wrong_hemisphere = "Longitude: 51°12′05″E   -51.20150245"
    data = text([wrong_minute, LON, LAT, wrong_hemisphere, *RECORD])
    assert reasons(data) == [(1, "dms_mismatch"), (3, "dms_mismatch")]


def test_dms_within_tolerance_is_accepted() -> None:
    # 59.9 s off by rounding: 0.0003° < 0.0005°
    data = text(["Latitude: 30°03′00″S   -30.04982864", LON])
    assert parse(data, "f").points.height == 1


def test_any_other_line_is_unrecognized() -> None:
    data = text([*RECORD, "hello", "Latitude: abc", *RECORD])
    assert reasons(data) == [(4, "unrecognized"), (5, "unrecognized")]


def test_labels_match_in_any_case() -> None:
    lines = [LAT.upper(), LON.lower(), DIST.lower().replace("km", "KM"), *RECORD]
    parsed = parse(text(lines), "f")
    assert parsed.rejects.is_empty()
    assert parsed.points.rows() == parse(text([*RECORD, *RECORD]), "f").points.rows()


@pytest.mark.parametrize(
    ("line", "cause"),
    [
        ("Latitude: -30,04982864", "decimal comma"),
        ("Longitude: 30°02′59″S   -30,04982864", "decimal comma"),
        ("latitude: 30°02′59″S", "DMS text only"),
        ("LONGITUDE: 51°12′05″W  ", "DMS text only"),
        ("Latitude: thirty south", "another layout"),
        ("Distance: 2.2959 miles", "another layout"),
        ("hello Latitude: -30,5", None),
        ("hello", None),
    ],
)
def test_an_unrecognized_line_names_its_likely_cause(line: str, cause: str | None) -> None:
    rejects = parse(text([*RECORD, line, *RECORD]), "f").rejects
    assert rejects.select("line", "reason").rows() == [(4, "unrecognized")]
    detail = rejects.get_column("detail").item()
    assert detail is None if cause is None else cause in detail


# -- a bad record is one reject: its first line, its reasons, all its lines ----------------

SEVEN = [
    RECORD,
    ["Latitude: 30°02′59″S   -30,04982864", LON, DIST],  # decimal comma
    [LAT, "Longitude 51 12 05 W", DIST],  # a longitude in another layout
    ["Latitud: -30.04982864", LON, DIST],  # a typo in the label
    [LAT, DIST],  # the longitude line is missing
    [LAT, "~~ noise ~~", LON, DIST],  # a garbage line inside the record
    ["Latitude: 95", LON, DIST],
]


def test_a_bad_record_is_one_reject_at_its_first_line_with_all_its_reasons() -> None:
    parsed = parse(text([line for record in SEVEN for line in record]), "f")
    assert parsed.points.get_column("line").to_list() == [1]
    assert parsed.rejects.select("line", "reason", "reasons").rows() == [
        (4, "unrecognized", "unrecognized"),
        (7, "unrecognized", "unrecognized"),
        (10, "unrecognized", "unrecognized,missing_latitude"),
        (13, "missing_longitude", "missing_longitude"),
        (15, "unrecognized", "unrecognized"),
        (19, "out_of_range", "out_of_range"),
    ]
    assert "decimal comma" in parsed.rejects.get_column("detail")[0]
    assert parsed.rejects.get_column("text")[2] == "\n".join(SEVEN[3])


MILES = "Distance: 2 miles"


@pytest.mark.parametrize(
    ("lines", "rejects"),
    [
        ([*RECORD, "x", "y", "", "z", *RECORD], [(4, "unrecognized", "x\ny\nz")]),
        (["header", "v2", *RECORD], [(1, "unrecognized", "header\nv2")]),
        (  # two records without their latitude
            [*RECORD, LON, DIST, LON, DIST, *RECORD],
            [(4, "missing_latitude", f"{LON}\n{DIST}"), (6, "missing_latitude", f"{LON}\n{DIST}")],
        ),
        ([*RECORD, DIST, DIST], [(4, "orphan_distance", DIST), (5, "orphan_distance", DIST)]),
        (  # garbage after a record's last line is a record of its own
            [LAT, DIST, "x", "y", *RECORD],
            [(1, "missing_longitude", f"{LAT}\n{DIST}"), (3, "unrecognized", "x\ny")],
        ),
        ([LAT, LON, "x", DIST, *RECORD], [(3, "unrecognized", f"x\n{DIST}")]),  # a point first
        ([LAT, LON, MILES], [(1, "unrecognized", f"{LAT}\n{LON}\n{MILES}")]),
        ([LAT, LAT, LON], [(1, "missing_longitude", LAT)]),
        (
            [LAT, "x", "", "y", LON, "z"],
            [(1, "unrecognized", f"{LAT}\nx\ny\n{LON}"), (6, "unrecognized", "z")],
        ),
    ],
)
def test_where_a_bad_record_starts_and_ends(
    lines: list[str], rejects: list[tuple[int, str, str]]
) -> None:
    assert parse(text(lines), "f").rejects.select("line", "reason", "text").rows() == rejects


def test_empty_file_gives_zero_rows() -> None:
    parsed = parse(b"", "f")
    assert parsed.points.is_empty() and parsed.rejects.is_empty()
    assert parsed.points.schema["line"] == pl.UInt32


def test_line_numbers_are_one_based_and_count_blank_lines() -> None:
    assert split_lines(b"a\r\n\r\nb").rows() == [(1, "a"), (2, ""), (3, "b")]


@pytest.mark.parametrize(
    ("data", "texts"),
    [
        (b"", []),
        (b"\n", [""]),
        (b"a\rb\r\nc\nd", ["a", "b", "c", "d"]),  # lone CR, CRLF and LF mixed
        (b"a\r\r\nb\r", ["a", "", "b"]),  # a lone CR before a CRLF; a CR at the very end
        (b"\xef\xbb\xbfa\nb", ["a", "b"]),  # the BOM dropped
        (b"caf\xe9\nb\n", ["caf\u00e9", "b"]),  # not UTF-8: Latin-1
    ],
)
def test_split_lines_ends_lines_at_lf_crlf_and_lone_cr(data: bytes, texts: list[str]) -> None:
    lines = split_lines(data)
    assert lines.get_column("text").to_list() == texts
    assert lines.get_column("line").to_list() == list(range(1, len(texts) + 1))


def accounted(data: bytes) -> tuple[int, int]:
    """(non-blank lines in the input, lines covered by points and rejects)."""
    if not_text(data) is not None:  # a file that is not text is one reject, whatever it holds
        return 1, parse(data, "f").rejects.height
    lines = split_lines(data).get_column("text").str.strip_chars()
    non_blank = int((lines != "").sum())
    parsed = parse(data, "f")
    rejected = int(parsed.rejects.get_column("text").str.count_matches("\n").sum())
    rejected += parsed.rejects.height
    in_points = 2 * parsed.points.height + int(
        parsed.points.get_column("distance_km").is_not_null().sum()
    )
    return non_blank, in_points + rejected


line_strategy = st.one_of(
    st.sampled_from([LAT, LON, DIST, "", "  ", "Latitude: 95", "Longitude: 200", "x"]),
    st.sampled_from(["Latitude: 30°02′59″N   -30.04982864", "Distance: 1 km"]),
    st.text(max_size=30).filter(lambda s: "\r" not in s and "\n" not in s),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(line_strategy, max_size=40), st.sampled_from(["\n", "\r\n", "\r"]))
def test_every_line_is_accounted_for(lines: list[str], end: str) -> None:
    data = text(lines, end)
    non_blank, covered = accounted(data)
    assert covered == non_blank


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise_and_every_line_is_accounted_for(data: bytes) -> None:
    parsed = parse(data, "f")
    assert set(parsed.rejects.get_column("reason")) <= set(REASONS)
    non_blank, covered = accounted(data)
    assert covered == non_blank


@dataclasses.dataclass(frozen=True)
class Generated:
    """A record the property below writes: its lines, whether it is good, the label of its
    first line and of its last labelled line (None for garbage), which say what may follow
    it without joining it (see etl4all.parsing.parse)."""

    lines: tuple[str, ...]
    good: bool
    first: str | None
    last: str | None

    def may_follow(self, before: Generated | None) -> bool:
        if before is None or self.first == "lat":
            return True
        if self.first is None:  # garbage starts a record after a Longitude or Distance line
            return before.lines[-1].lower().startswith(("longitude", "distance"))
        ends = {"lon": ("lon", "dist"), "dist": ("dist",)}[self.first]
        return before.last in ends


def generated(lines: list[str], good: bool, first: str | None, last: str | None) -> Generated:
    return Generated(tuple(lines), good, first, last)


GENERATED = [
    generated(RECORD, True, "lat", "dist"),
    generated([LAT, LON], True, "lat", "lon"),
    generated([LAT.upper(), LON.lower(), DIST.upper()], True, "lat", "dist"),
    generated(["Latitude: -30.5", "Longitude: -51.25"], True, "lat", "lon"),
    generated([LAT, DIST], False, "lat", "dist"),
    generated([LAT], False, "lat", "lat"),
    generated(["Latitude: -30,5", LON, DIST], False, "lat", "dist"),
    generated([LAT, "Longitude: x", DIST], False, "lat", "dist"),
    generated([LAT, LON, "Distance: 2 miles"], False, "lat", "dist"),
    generated(["Latitude: 95", LON], False, "lat", "lon"),
    generated(["Latitude: 30°03′59″S   -30.04982864", LON, DIST], False, "lat", "dist"),
    generated([LAT, "noise", LON, DIST], False, "lat", "dist"),
    generated([LAT, "noise"], False, "lat", "lat"),
    generated([LON, DIST], False, "lon", "dist"),
    generated([LON], False, "lon", "lon"),
    generated([DIST], False, "dist", "dist"),
    generated(["Longitude: -51,2"], False, "lon", "lon"),
    generated(["noise"], False, None, None),
    generated(["Lat: -30.1", LON, DIST], False, None, "dist"),
]
garbage_line = st.text(max_size=30).filter(
    lambda s: (
        "\r" not in s
        and "\n" not in s
        and s.strip() != ""
        and re.match(r"(latitude|longitude|distance)", s.strip(), re.IGNORECASE) is None
    )
)


@st.composite
def files_of_records(draw: st.DrawFn) -> list[Generated]:
    """Records, good and bad, each starting a record where the one before it ends."""
    records: list[Generated] = []
    for _ in range(draw(st.integers(0, 15))):
        before = records[-1] if records else None
        choices = [record for record in GENERATED if record.may_follow(before)]
        record = draw(st.sampled_from(choices))
        if record.lines == ("noise",):
            record = generated([draw(garbage_line)], False, None, None)
        records.append(record)
    return records


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files_of_records(), st.sampled_from(["\n", "\r\n", "\r"]), st.data())
def test_each_record_good_or_bad_counts_once(
    records: list[Generated], end: str, data: st.DataObject
) -> None:
    lines: list[str] = []
    good, bad = [], []
    for record in records:
        for number, line in enumerate(record.lines):
            lines += [""] * data.draw(st.integers(0, 1))  # blank lines change nothing
            if number == 0:
                (good if record.good else bad).append(len(lines) + 1)
            lines.append(line)
    parsed = parse(text(lines, end), "f")
    assert parsed.points.get_column("line").to_list() == good
    assert parsed.rejects.get_column("line").to_list() == bad
    reasons = parsed.rejects.get_column("reasons").str.split(",")
    assert reasons.list.first().to_list() == parsed.rejects.get_column("reason").to_list()


def test_a_huge_garbage_line_is_one_reject_cut_to_size() -> None:
    data = b"Latitude: 30\r\nLongitude: 51\r\n" + b"x" * 100_000 + b"\r\nLatitude: -30.1\r\n"
    parsed = parse(data, "a.txt")
    assert parsed.points.height == 1
    assert parsed.rejects.select("line", "reason").rows() == [
        (3, "unrecognized"),
        (4, "missing_longitude"),
    ]
    text = parsed.rejects.filter(pl.col("reason") == "unrecognized").get_column("text")
    assert text.str.len_chars().to_list() == [frames.REJECT_TEXT_CHARS]
    whole = hashlib.sha256(b"x" * 100_000).hexdigest()
    assert text[0].startswith("xxx") and text[0].endswith(f"… [cut: 100000 chars, sha256 {whole}]")


# -- complete_end: where the complete records of a file still uploading end ----------------

RECORD_TEXT = "\r\n".join(RECORD)


@pytest.mark.parametrize(
    ("data", "tail"),
    [
        (RECORD_TEXT, ""),  # a last Distance line closed by its °, as the devices write it
        (RECORD_TEXT + "\r\n", ""),
        (RECORD_TEXT + "\r\n\r\n  \t", ""),  # trailing blanks are no tail
        (RECORD_TEXT + "\r\n" + LAT + "\r\n" + LON[:-5], LAT + "\r\n" + LON[:-5]),  # -51.201
        (RECORD_TEXT + "\r\n" + LAT + "\r\n" + LON + "\r\n", LAT + "\r\n" + LON + "\r\n"),
        (RECORD_TEXT + "\r\n" + LAT + "\r\n" + LON + "\r\n" + DIST[:-4], None),  # 137.3
        (RECORD_TEXT + "\r\n" + LAT + "\r\n" + LON + "\r\n" + DIST[:-1], None),  # no °
        (RECORD_TEXT + "\r\nLat", "Lat"),
        (RECORD_TEXT + "\r\n" + LAT, LAT),
        (RECORD_TEXT + "\r\nx\r\n", ""),  # a finished garbage line is complete (a reject)
        (RECORD_TEXT + "\r\nx", "x"),
        (LAT + "\n" + LON + "\n" + LAT + "\n" + LON + "\n", LAT + "\n" + LON + "\n"),
        (LAT + "\r" + LON + "\r" + "  " + LAT + "\r", "  " + LAT + "\r"),  # CR only, indented
        ("\ufeff" + LAT + "\r\n" + LON, "\ufeff" + LAT + "\r\n" + LON),
        (LAT + "\r\n" + DIST + "\r\n", ""),  # closed, though it lacks its longitude
        ("x Latitude: 1\r\nLongitude: 2\r\nDistance: 1 km  Bearing: 2°", ""),
        (RECORD_TEXT.lower() + "\r\n" + LAT.upper(), LAT.upper()),  # labels in any case
        (LAT + "\r\n" + LON + "\r\n" + DIST.upper(), ""),
        (LAT + "\r\n" + LON + "\r\n" + DIST.upper()[:-1],) * 2,  # not closed: all of it
        ("", ""),
    ],
)
def test_complete_end_leaves_out_exactly_the_cut_off_tail(data: str, tail: str | None) -> None:
    raw = data.encode("utf-8")
    if tail is None:  # the whole last record
        tail = data[len(RECORD_TEXT) + 2 :]
    assert raw[complete_end(raw) :] == tail.encode("utf-8")


def test_a_file_cut_in_a_number_gives_no_point_for_it() -> None:
    cut = text([*RECORD, LAT, LON[:-5]])  # ... -51.201
    assert parse(cut, "f.txt").points.height == 2  # what a plain parse loads: a wrong point
    assert parse(cut[: complete_end(cut)], "f.txt").points.height == 1


def test_complete_end_is_linear_in_a_file_of_long_lines() -> None:
    garbage = ("x Latitude " * 200_000 + "\n").encode() * 5
    assert complete_end(garbage) == len(garbage)


upload_strategy = st.lists(
    st.sampled_from(
        [
            *(RECORD, [line.upper() for line in RECORD], [LAT, LON], [LAT.lower(), DIST]),
            *([LON, DIST], [LON], [DIST], ["x"], [""]),
            *(["Latitude: -30,5", LON, DIST], [LAT, "x", LON, DIST], ["x", LON, DIST]),
        ]
    ),
    max_size=12,
)


@settings(max_examples=400, deadline=None)
@given(upload_strategy, st.sampled_from(["\n", "\r\n", "\r"]), st.data())
def test_the_complete_part_of_any_cut_reads_as_in_the_finished_file(
    records: list[list[str]], end: str, data: st.DataObject
) -> None:
    full = text([line for record in records for line in record], end)
    cut = full[: data.draw(st.integers(0, len(full)))]
    done, whole = parse(cut[: complete_end(cut)], "f.txt"), parse(full, "f.txt")
    assert set(done.points.rows()) <= set(whole.points.rows())
    assert set(done.rejects.select("line", "reason").rows()) <= set(
        whole.rejects.select("line", "reason").rows()
    )


# -- issue 17, item 11: NUL bytes, files that are not text, files glued together -----------


def test_nul_bytes_never_reach_a_reject_text_and_are_named() -> None:
    parsed = parse(text([*RECORD, "Lat\x00\x00itude: 1", "\x00" * 10]), "f.txt")
    assert parsed.points.height == 1
    texts = parsed.rejects.get_column("text").to_list()
    assert texts == ["Lat\u2400\u2400itude: 1\n" + "\u2400" * 10]  # one record, one sign each
    assert all("\x00" not in t for t in texts)
    assert set(parsed.rejects.get_column("detail")) == {
        "NUL bytes (shown as \u2400): the file holds binary data or zero padding, e.g. a copy "
        "cut short"
    }


def test_a_long_nul_padded_line_is_cut_with_the_hash_of_the_original() -> None:
    padding = b"\x00" * 5000
    (reject,) = parse(padding, "f.txt").rejects.rows(named=True)
    assert len(reject["text"]) == frames.REJECT_TEXT_CHARS
    assert hashlib.sha256(padding).hexdigest() in reject["text"]


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (gzip.compress(text(RECORD * 50)), "gzip-compressed"),
        (text(RECORD * 50).decode().encode("utf-16"), "UTF-16 text (little-endian BOM FF FE)"),
        (b"\xfe\xff" + text(RECORD).decode().encode("utf-16-be"), "UTF-16 text (big-endian"),
        (text(RECORD * 50).decode().encode("utf-16-le"), "UTF-16 text (little-endian, no BOM)"),
        (text(RECORD * 50).decode().encode("utf-16-be"), "UTF-16 text (big-endian, no BOM)"),
        (text(RECORD).decode().encode("utf-32"), "UTF-32 text"),
    ],
)
def test_a_file_that_is_not_text_is_one_reject_naming_what_it_is(data: bytes, kind: str) -> None:
    """They were rejected line by line, with no hint."""
    parsed = parse(data, "f.txt")
    assert parsed.points.is_empty()
    (reject,) = parsed.rejects.rows(named=True)
    assert (reject["line"], reject["reason"]) == (1, "unrecognized")
    assert kind in reject["detail"] and reject["text"].startswith("first bytes: ")


def test_text_with_a_few_nul_bytes_is_still_read_line_by_line() -> None:
    assert not_text(text(RECORD).replace(b"S ", b"\x00 ")) is None
    assert not_text(text(RECORD).decode().encode("latin-1", "replace")) is None


def test_two_files_glued_without_a_final_line_break_keep_both_records() -> None:
    """`...137.352°Latitude: ...` on one line lost the second record (and the first's end)."""
    second = [LAT.replace("-30.04982864", "-30.04982865"), LON, DIST]
    for glue in ("", "\ufeff"):  # the second file may start with a BOM
        data = text(RECORD) + glue.encode() + text(second) + b"\r\n"
        parsed = parse(data, "f.txt")
        assert parsed.rejects.is_empty(), parsed.rejects.rows()
        assert parsed.points.rows() == [
            ("f.txt", 1, -30.04982864, -51.20150245, 2.2959, 137.352),
            ("f.txt", 3, -30.04982865, -51.20150245, 2.2959, 137.352),
        ]
    glued_after_longitude = text([LAT, LON]) + text(second)  # no Distance line before it
    assert parse(glued_after_longitude, "f.txt").points.height == 2
