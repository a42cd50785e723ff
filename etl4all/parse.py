"""Parse data_points files: bytes in, a points frame and a rejects frame out.

A record is three lines; the decimal at the end of a line is authoritative and the
degrees-minutes-seconds text, when present, must agree with it within 0.0005°::

    Latitude: 30°02′59″S   -30.04982864
    Longitude: 51°12′05″W   -51.20150245
    Distance: 2.2959 km  Bearing: 137.352°

A record starts at a ``Latitude:`` line and needs the ``Longitude:`` line right after it;
``Distance:`` is optional. Labels (and ``km``, ``Bearing``) match in any case. Blank lines are
ignored. A line with a ``Latitude:`` label after other text (files concatenated, the first
without a final line break: ``… 137.352°Latitude: …``) is split before the label. Every other
line ends up in a point or a reject; a bad record is one reject (at its first line, ``text``
holding all its lines).

Reject reasons:
    ``missing_longitude``  a Latitude line not followed by a Longitude line
    ``missing_latitude``   a Longitude line with no Latitude line before it
    ``orphan_distance``    a Distance line that follows no coordinate
    ``out_of_range``       latitude outside [-90, 90] or longitude outside [-180, 180]
    ``dms_mismatch``       the degrees-minutes-seconds text disagrees with the decimal
    ``unrecognized``       any other line; when it looks like a coordinate line, the reject's
                           ``detail`` names the likely cause (a decimal comma, DMS text without
                           the decimal value, another layout, NUL bytes). A file that is not
                           text (gzip, zip, UTF-16…: :func:`not_text`) is one such reject, at
                           line 1, its ``detail`` naming what the file is.

The work is done with Polars expressions over all lines at once: no Python loop per line.

Where the complete records of a file still uploading end, and where a record starts, is
:mod:`etl4all.records`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import polars as pl
import pyarrow as pa

from etl4all import frames
from etl4all.records import BOM

DMS_TOLERANCE = 0.0005
"""Degrees the DMS text may differ from the decimal value (a rounded second is 0.00014°)."""

REASONS = (
    "missing_longitude",
    "missing_latitude",
    "orphan_distance",
    "out_of_range",
    "dms_mismatch",
    "unrecognized",
)

# ASCII classes ([0-9], [ \t]) keep the regex engine several times faster than \d and \s, and
# so does a mandatory DMS part: lines without DMS text go through a second, rarer pattern.
_SP = "[ \t]"
_NUM = r"([-+]?[0-9]+(?:\.[0-9]+)?)"
_DMS = (
    rf"([0-9]{{1,3}}){_SP}*°{_SP}*([0-9]{{1,2}}){_SP}*[′']{_SP}*"
    rf"([0-9]{{1,2}}(?:\.[0-9]+)?){_SP}*(?:″|''|\"){_SP}*(HEMI){_SP}+"
)
_PATTERNS = {
    "lat": (
        "Latitude",
        rf"^Latitude{_SP}*:{_SP}*" + _DMS.replace("HEMI", "[NSns]") + _NUM + "$",
        rf"^Latitude{_SP}*:{_SP}*()()()(){_NUM}$",
    ),
    "lon": (
        "Longitude",
        rf"^Longitude{_SP}*:{_SP}*" + _DMS.replace("HEMI", "[EWew]") + _NUM + "$",
        rf"^Longitude{_SP}*:{_SP}*()()()(){_NUM}$",
    ),
    "dist": (
        "Distance",
        rf"^Distance{_SP}*:{_SP}*{_NUM}{_SP}*(?i:km){_SP}+(?i:Bearing){_SP}*:{_SP}*{_NUM}{_SP}*°?$",
        None,
    ),
}
"""Per line kind: its label, its regex, and the regex for the variant without DMS text.
A label in another case is put in this one first (:func:`_canonical_labels`)."""
_LAT, _LON = r"^(?i:Latitude)", r"^(?i:Longitude)"
_DETAILS = (
    (
        r"\x00",
        "NUL bytes (shown as \u2400): the file holds binary data or zero padding, e.g. a copy "
        "cut short",
    ),
    (
        rf"(?:{_LAT}|{_LON}){_SP}*:.*[0-9],[0-9]",
        "decimal comma: write -30.04982864, not -30,04982864",
    ),
    (
        rf"(?:{_LAT}|{_LON}){_SP}*:{_SP}*"
        + _DMS.replace("HEMI", "[NSEWnsew]").removesuffix("+")
        + "*$",
        "DMS text only: the decimal value must follow it, as in 30°02′59″S -30.04982864",
    ),
    (
        rf"(?:{_LAT}|{_LON}|^(?i:Distance)){_SP}*:",
        "labelled line in another layout than 'Latitude: [30°02′59″S] -30.04982864'",
    ),
)
"""Why an ``unrecognized`` line was not read, when it looks like one that could have been: the
first pattern that matches names the likely cause (the reject's ``detail``)."""
_OTHER_LINE, _LAT_LINE, _LON_LINE, _DIST_LINE = 0, 1, 2, 3
"""Line kinds, as small integers: cheaper to shift and compare than strings."""


class Parsed(NamedTuple):
    """The result of parsing: good points and counted rejects."""

    points: pl.DataFrame
    rejects: pl.DataFrame


_NOT_TEXT = (
    (b"\x1f\x8b", "gzip-compressed", "gunzip it before it is uploaded"),
    (b"PK\x03\x04", "a zip archive", "unzip it before it is uploaded"),
    (b"\xfd7zXZ\x00", "xz-compressed", "unxz it before it is uploaded"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed", "unzstd it before it is uploaded"),
    (b"\xff\xfe\x00\x00", "UTF-32 text (little-endian BOM)", "save it as UTF-8"),
    (b"\x00\x00\xfe\xff", "UTF-32 text (big-endian BOM)", "save it as UTF-8"),
    (b"\xff\xfe", "UTF-16 text (little-endian BOM FF FE)", "save it as UTF-8"),
    (b"\xfe\xff", "UTF-16 text (big-endian BOM FE FF)", "save it as UTF-8"),
)
"""Starts of files that are not UTF-8 or Latin-1 text: (magic bytes, what the file is, the
fix). Such a file is one reject (:func:`unreadable`), not one per line of noise."""
_HEAD_BYTES = 64
"""Bytes looked at to tell a file that is not text (:func:`not_text`)."""
_GLUED = r"(?i)\S\x{FEFF}?latitude[ \t]*:"
"""A Latitude label after something else on its line: two files concatenated, the first one
without a final line break (``… Bearing: 137.352°Latitude: …``)."""
_LABEL_AFTER = r"(?i)\x{FEFF}?(latitude[ \t]*:)"


def not_text(head: bytes) -> str | None:
    """What a file whose first bytes are ``head`` is, and what to do about it, when it is
    not text :func:`parse` can read: compressed, an archive, UTF-16 or UTF-32 (with a BOM, or
    UTF-16 without one: every other byte NUL); None for anything else (even garbage, which
    its lines' rejects show)."""
    for magic, kind, fix in _NOT_TEXT:
        if head.startswith(magic):
            return f"the file is {kind}, not UTF-8 text: {fix}"
    head = head[: _HEAD_BYTES - _HEAD_BYTES % 2]
    if len(head) >= 16:
        even, odd = head[0::2], head[1::2]
        for high, low, order in ((odd, even, "little"), (even, odd, "big")):
            # text mostly below U+0100: the high byte of most characters is NUL, the low never
            if high.count(0) * 4 >= len(high) * 3 and not low.count(0):
                return (
                    f"the file is UTF-16 text ({order}-endian, no BOM), not UTF-8: save it as UTF-8"
                )
    return None


def unreadable(data: bytes, source: str, detail: str) -> Parsed:
    """The one reject of a file that is not text (:func:`not_text`): at line 1, reason
    ``unrecognized``, its first bytes in hex as the text and ``detail`` saying why."""
    shown = "first bytes: " + data[:16].hex(" ")
    rejects = pl.DataFrame(
        {"source": [source], "line": [1], "reason": ["unrecognized"], "text": [shown]}
    ).with_columns(detail=pl.lit(detail))
    return Parsed(
        frames.empty(frames.POINTS_SCHEMA), frames.cast_frame(rejects, frames.REJECTS_SCHEMA)
    )


def decode(data: bytes) -> bytes:
    """UTF-8 bytes of a file: the BOM removed, latin-1 converted when not valid UTF-8."""
    data = data.removeprefix(BOM)
    try:
        pl.Series([data], dtype=pl.Binary).cast(pl.String)  # validates without a Python str
    except pl.exceptions.ComputeError:
        data = data.decode("latin-1").encode("utf-8")
    return data


def split_lines(data: bytes) -> pl.DataFrame:
    """One row per line of UTF-8 ``data``: ``line`` (1-based) and ``text``.

    LF, CRLF and lone CR all end a line. The text keeps its line ending (stripped later),
    which lets the lines be cut out of the buffer without copying it.
    """
    raw = np.frombuffer(data, dtype=np.uint8)
    breaks = raw == ord("\n")
    after_cr = np.flatnonzero(raw[:-1] == ord("\r")) + 1  # numpy: 3x faster than bytes.count
    if raw.size and (raw[-1] == ord("\r") or (raw[after_cr] != ord("\n")).any()):
        # some CR ends a line on its own
        breaks |= (raw == ord("\r")) & ~np.append(breaks[1:], False)
    ends = np.flatnonzero(breaks) + 1
    if len(data) and (ends.size == 0 or ends[-1] != len(data)):
        ends = np.append(ends, len(data))
    offsets = np.concatenate(([0], ends)).astype(np.int64)
    text = pa.LargeStringArray.from_buffers(len(ends), pa.py_buffer(offsets), pa.py_buffer(data))
    return pl.DataFrame({"text": pl.Series(text, dtype=pl.String)}).with_row_index("line", offset=1)


def parse(data: bytes, source: str) -> Parsed:
    """Parse the bytes of one data_points file named ``source`` (a file that is not text:
    one reject, :func:`unreadable`)."""
    if (detail := not_text(data[:_HEAD_BYTES])) is not None:
        return unreadable(data, source, detail)
    return parse_lines(split_lines(decode(data)), source)


def parse_lines(lines: pl.DataFrame, source: str) -> Parsed:
    """Parse a frame of ``line``/``text`` rows (see :func:`split_lines`)."""
    lines = _unglued(lines)
    rows = lines.with_columns(pl.col("text").str.strip_chars()).filter(pl.col("text") != "")
    rows = rows.with_columns(_fields(rows.get_column("text")))
    rows = rows.with_columns(
        kind=pl.when(pl.col("lat").is_not_null())
        .then(_LAT_LINE)
        .when(pl.col("lon").is_not_null())
        .then(_LON_LINE)
        .when(pl.col("dist").is_not_null())
        .then(_DIST_LINE)
        .otherwise(_OTHER_LINE)
        .cast(pl.UInt8)
    )
    groups = _group_starts(rows).with_columns(reason=_reason())
    points = groups.filter(pl.col("reason").is_null()).select(
        pl.lit(source).alias("source"),
        "line",
        pl.col("lat").alias("latitude"),
        pl.col("lon_next").alias("longitude"),
        pl.col("dist_at").alias("distance_km"),
        pl.col("bearing_at").alias("bearing_deg"),
    )
    bad = groups.filter(pl.col("reason").is_not_null())
    rejects = (
        bad.select(pl.lit(source).alias("source"), "line", "reason")
        .with_columns(text=pl.lit(_record_text(rows, bad)))
        .with_columns(detail=_detail(), text=frames.reject_text(pl.col("text")))
    )
    return Parsed(
        frames.cast_frame(points, frames.POINTS_SCHEMA),
        frames.cast_frame(rejects, frames.REJECTS_SCHEMA),
    )


def _unglued(lines: pl.DataFrame) -> pl.DataFrame:
    """``lines`` with each line that holds a Latitude label after something else (see
    :data:`_GLUED`) split before the label, both parts keeping the line's number: the record
    of the second file is read, and the end of the first file's last record too."""
    text = lines.get_column("text")
    later = text.str.slice(1).str.contains(r"(?i)latitude[ \t]*:")  # cheap: few lines have one
    if not later.any():
        return lines
    glued = later & text.str.contains(_GLUED)
    split = (
        lines.filter(glued)
        .with_columns(pl.col("text").str.replace_all(_LABEL_AFTER, "\n$1").str.split("\n"))
        .explode("text")
    )
    return pl.concat([lines.filter(~glued), split]).sort("line", maintain_order=True)


def _fields(text: pl.Series) -> list[pl.Series]:
    """Values of each line kind, full length, null where a line is not of that kind.

    Each regex runs only on the lines that start with its label, the kinds in parallel;
    the results are scattered back to their rows.
    """
    starts = _labelled(text)
    unlabelled = (~pl.DataFrame(starts).select(pl.any_horizontal(pl.all())).to_series()).arg_true()
    if unlabelled.len():
        text = _canonical_labels(text, unlabelled)
        starts = _labelled(text)
    where = {kind: starts[kind].arg_true() for kind in _PATTERNS}
    lines = {kind: text.gather(rows) for kind, rows in where.items()}
    lat, lon, dist = (
        _with_plain(found, lines[kind], _PATTERNS[kind][2])
        for kind, found in zip(
            _PATTERNS,
            pl.collect_all(
                lines[kind].to_frame().lazy().select(pl.col("text").str.extract_groups(regex))
                for kind, (_, regex, _) in _PATTERNS.items()
            ),
            strict=True,
        )
    )
    parts = {
        "lat": lat.select(_number("5").alias("lat"), _dms("S").alias("lat_dms")),
        "lon": lon.select(_number("5").alias("lon"), _dms("W").alias("lon_dms")),
        "dist": dist.select(_number("1").alias("dist"), _number("2").alias("bearing")),
    }
    empty = pl.repeat(None, len(text), dtype=pl.Float64, eager=True)
    return [
        empty.alias(values.name).scatter(where[kind], values)
        for kind, part in parts.items()
        for values in part.get_columns()
    ]


def _labelled(text: pl.Series) -> dict[str, pl.Series]:
    """Per line kind, whether each line starts with its label (as written in :data:`_PATTERNS`)."""
    return {kind: text.str.starts_with(label) for kind, (label, *_) in _PATTERNS.items()}


def _canonical_labels(text: pl.Series, rows: pl.Series) -> pl.Series:
    """``text`` with the label of the lines at ``rows`` put in the case of :data:`_PATTERNS`
    where it is in another (``LATITUDE:``, ``distance:``); other lines stay as they are."""
    odd = text.gather(rows)
    for label, *_ in _PATTERNS.values():
        odd = odd.str.replace(f"^(?i:{label})", label)
    return text.scatter(rows, odd)


def _with_plain(found: pl.DataFrame, lines: pl.Series, plain: str | None) -> pl.DataFrame:
    """Unnest the capture groups, filling the lines the DMS pattern missed from ``plain``."""
    groups = found.unnest("text")
    missed = groups.get_column(groups.columns[-1]).is_null()
    if plain is None or not missed.any():
        return groups
    fallback = lines.filter(missed).str.extract_groups(plain).struct.unnest()
    rows = missed.arg_true()
    return groups.with_columns(
        groups.get_column(name).scatter(rows, fallback.get_column(name)) for name in groups.columns
    )


def _number(group: str) -> pl.Expr:
    """Capture ``group`` as a float; an empty capture (no DMS text) is null."""
    return pl.col(group).cast(pl.Float64, strict=False)


def _dms(negative: str) -> pl.Expr:
    """Signed decimal degrees of the DMS groups 1-4 (null when the line has no DMS text)."""
    degrees = _number("1") + _number("2") / 60 + _number("3") / 3600
    hemisphere = pl.col("4").str.to_uppercase()
    return pl.when(hemisphere == negative).then(-degrees).otherwise(degrees)


def _group_starts(rows: pl.DataFrame) -> pl.DataFrame:
    """One row per record or stray line, with the values of the lines attached to it.

    A Longitude line right after a Latitude line, and a Distance line right after either,
    belong to the record above them; every other line starts a group of its own.
    """
    kind, prev, nxt, after = (
        pl.col("kind"),
        pl.col("kind").shift(1),
        pl.col("kind").shift(-1),
        pl.col("kind").shift(-2),
    )
    coordinate = kind.is_in([_LAT_LINE, _LON_LINE])
    attached = ((kind == _LON_LINE) & (prev == _LAT_LINE)) | (
        (kind == _DIST_LINE) & prev.is_in([_LAT_LINE, _LON_LINE])
    )
    has_lon = (kind == _LAT_LINE) & (nxt == _LON_LINE)
    dist_offset = (
        pl.when(has_lon & (after == _DIST_LINE))
        .then(2)
        .when(coordinate & (nxt == _DIST_LINE))
        .then(1)
        .otherwise(0)
    )

    def attached_value(column: str) -> pl.Expr:
        value = pl.col(column)
        return (
            pl.when(dist_offset == 1)
            .then(value.shift(-1))
            .when(dist_offset == 2)
            .then(value.shift(-2))
        )

    return (
        rows.with_row_index("row")
        .with_columns(
            attached=attached.fill_null(False),
            has_lon=has_lon.fill_null(False),
            size=1 + has_lon.fill_null(False).cast(pl.UInt32) + (dist_offset > 0).cast(pl.UInt32),
            lon_next=pl.col("lon").shift(-1),
            lon_dms_next=pl.col("lon_dms").shift(-1),
            dist_at=attached_value("dist"),
            bearing_at=attached_value("bearing"),
        )
        .filter(~pl.col("attached"))
        .drop("text")
    )


def _record_text(rows: pl.DataFrame, groups: pl.DataFrame) -> pl.Series:
    """The lines of each rejected group, joined with newlines."""
    text = rows.get_column("text")
    first = groups.get_column("row")
    size = groups.get_column("size")
    joined = text.gather(first)
    for offset in (1, 2):
        more = size > offset
        if more.any():
            extra = text.gather(first.filter(more) + offset)
            joined = joined.scatter(more.arg_true(), joined.filter(more) + "\n" + extra)
    return joined


def _detail() -> pl.Expr:
    """The likely cause of an ``unrecognized`` reject (see :data:`_DETAILS`), else null."""
    unrecognized = pl.col("reason") == "unrecognized"
    found = pl.lit(None, dtype=pl.String)
    for pattern, detail in reversed(_DETAILS):
        matches = unrecognized & pl.col("text").str.contains(pattern)
        found = pl.when(matches).then(pl.lit(detail)).otherwise(found)
    return found


def _reason() -> pl.Expr:
    """Why a group is rejected, or null for a good point."""
    lat, lon = pl.col("lat"), pl.col("lon_next")

    def off(dms: str, value: pl.Expr) -> pl.Expr:
        return ((pl.col(dms) - value).abs() > DMS_TOLERANCE).fill_null(False)

    return (
        pl.when(pl.col("kind") == _OTHER_LINE)
        .then(pl.lit("unrecognized"))
        .when(pl.col("kind") == _DIST_LINE)
        .then(pl.lit("orphan_distance"))
        .when(pl.col("kind") == _LON_LINE)
        .then(pl.lit("missing_latitude"))
        .when(~pl.col("has_lon"))
        .then(pl.lit("missing_longitude"))
        .when((lat.abs() > 90) | (lon.abs() > 180))
        .then(pl.lit("out_of_range"))
        .when(off("lat_dms", lat) | off("lon_dms_next", lon))
        .then(pl.lit("dms_mismatch"))
    )
