"""Parse data_points files: bytes in, a points frame and a rejects frame out.

A record is a Latitude, a Longitude and maybe a Distance line, grouped by their labels alone;
a record that is not a valid point is ONE reject with its reasons (``unrecognized``,
``out_of_range``, ``dms_mismatch``, ``missing_longitude``, ``missing_latitude``,
``orphan_distance``), the first of which, and so the reject's key, stays the same while its
file grows. The work is Polars expressions over all lines at once, no Python loop per line.
The format, the grouping rules and the reasons: docs/data.md (Input: data_points files);
the line patterns: :mod:`.lines`; the rejects' reasons and details: :mod:`.rejects`; where
records start and end in raw bytes: :mod:`.records`.
"""

from __future__ import annotations

from typing import NamedTuple

import polars as pl

from etl4all import frames
from etl4all.parsing import rejects
from etl4all.parsing.lines import DIST_LINE, LAT_LINE, LON_LINE, OTHER_LINE, PATTERNS, off
from etl4all.parsing.records import BOM


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
    ).with_columns(detail=pl.lit(detail), reasons=pl.lit("unrecognized"))
    return Parsed(
        frames.empty(frames.POINTS_SCHEMA), frames.cast_frame(rejects, frames.REJECTS_SCHEMA)
    )


def split_lines(data: bytes) -> pl.DataFrame:
    """One row per line of ``data`` (UTF-8, else Latin-1; a BOM dropped): ``line`` (1-based)
    and ``text``, without its line ending.

    LF, CRLF and lone CR all end a line. Polars splits at LF and drops the CR of a CRLF; the
    rare lines that still hold a CR are split there too, and numbered on.
    """
    data = data.removeprefix(BOM)
    try:
        lines = pl.read_lines(data, name="text")
    except pl.exceptions.ComputeError:  # not valid UTF-8: read as Latin-1
        lines = pl.read_lines(data.decode("latin-1").encode("utf-8"), name="text")
    if lines.get_column("text").str.contains("\r", literal=True).any():
        lines = lines.select(pl.col("text").str.split("\r")).explode("text")
    return lines.with_row_index("line", offset=1)


def parse(data: bytes, source: str) -> Parsed:
    """Parse the bytes of one data_points file named ``source`` (a file that is not text:
    one reject, :func:`unreadable`)."""
    if (detail := not_text(data[:_HEAD_BYTES])) is not None:
        return unreadable(data, source, detail)
    return parse_lines(split_lines(data), source)


def parse_lines(lines: pl.DataFrame, source: str) -> Parsed:
    """Parse a frame of ``line``/``text`` rows (see :func:`split_lines`)."""
    lines = _unglued(lines)
    rows = lines.with_columns(pl.col("text").str.strip_chars()).filter(pl.col("text") != "")
    values, label = _fields(rows.get_column("text"))
    rows = rows.with_columns(*values, label=label).with_columns(good=_good())
    in_good = (
        pl.col("good")
        | pl.col("good").shift(1, fill_value=False)
        | (pl.col("good").shift(2, fill_value=False) & (pl.col("label") == DIST_LINE))
    )
    dist_row = (pl.col("label").shift(-2) == DIST_LINE).fill_null(False)
    good = pl.col("good")
    points = rows.select(
        pl.lit(source).alias("source"),
        pl.col("line").filter(good),
        pl.col("lat").filter(good).alias("latitude"),
        pl.col("lon").shift(-1).filter(good).alias("longitude"),
        pl.when(dist_row).then(pl.col("dist").shift(-2)).filter(good).alias("distance_km"),
        pl.when(dist_row).then(pl.col("bearing").shift(-2)).filter(good).alias("bearing_deg"),
    )
    bad = rows.with_columns(fresh=in_good.shift(1, fill_value=True)).filter(~in_good)
    return Parsed(
        frames.cast_frame(points, frames.POINTS_SCHEMA),
        frames.cast_frame(rejects.per_record(bad, source), frames.REJECTS_SCHEMA),
    )


def _unglued(lines: pl.DataFrame) -> pl.DataFrame:
    """``lines`` with each line that holds a Latitude label after something else (see
    :data:`_GLUED`) split before the label, both parts keeping the line's number: the record
    of the second file is read, and the end of the first file's last record too."""
    text = lines.get_column("text")
    # a literal search (Aho-Corasick) first, cheap: few lines hold the label after their start
    later = text.str.slice(1).str.contains_any(["latitude"], ascii_case_insensitive=True)
    if not later.any():
        return lines
    glued = later & text.str.contains(_GLUED)
    split = (
        lines.filter(glued)
        .with_columns(pl.col("text").str.replace_all(_LABEL_AFTER, "\n$1").str.split("\n"))
        .explode("text")
    )
    return pl.concat([lines.filter(~glued), split]).sort("line", maintain_order=True)


def _fields(text: pl.Series) -> tuple[list[pl.Series], pl.Series]:
    """Values of each line kind, full length, null where a line is not of that kind (or not
    in its format); and each line's label (:data:`LAT_LINE`... or :data:`OTHER_LINE`).

    Each regex runs only on the lines that start with its label, the kinds in parallel;
    the results are scattered back to their rows.
    """
    starts = _labelled(text)
    unlabelled = (~pl.DataFrame(starts).select(pl.any_horizontal(pl.all())).to_series()).arg_true()
    if unlabelled.len():
        text = _canonical_labels(text, unlabelled)
        starts = _labelled(text)
    where = {kind: starts[kind].arg_true() for kind in PATTERNS}
    lines = {kind: text.gather(rows) for kind, rows in where.items()}
    lat, lon, dist = (
        _with_plain(found, lines[kind], PATTERNS[kind][2])
        for kind, found in zip(
            PATTERNS,
            pl.collect_all(
                lines[kind].to_frame().lazy().select(pl.col("text").str.extract_groups(regex))
                for kind, (_, regex, _) in PATTERNS.items()
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
    label = pl.repeat(OTHER_LINE, len(text), dtype=pl.UInt8, eager=True).alias("label")
    for kind, code in (("lat", LAT_LINE), ("lon", LON_LINE), ("dist", DIST_LINE)):
        label = label.scatter(where[kind], code)
    return [
        empty.alias(values.name).scatter(where[kind], values)
        for kind, part in parts.items()
        for values in part.get_columns()
    ], label


def _labelled(text: pl.Series) -> dict[str, pl.Series]:
    """Per line kind, whether each line starts with its label (as written in :data:`PATTERNS`)."""
    return {kind: text.str.starts_with(label) for kind, (label, *_) in PATTERNS.items()}


def _canonical_labels(text: pl.Series, rows: pl.Series) -> pl.Series:
    """``text`` with the label of the lines at ``rows`` put in the case of :data:`PATTERNS`
    where it is in another (``LATITUDE:``, ``distance:``); other lines stay as they are."""
    odd = text.gather(rows)
    for label, *_ in PATTERNS.values():
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


def _good() -> pl.Expr:
    """Whether a row starts a good record: a readable Latitude line, the readable Longitude
    line right after it, a readable Distance line or none after that, values in range and
    the DMS text (when given) agreeing with them."""
    lat, lon = pl.col("lat"), pl.col("lon").shift(-1)
    dist_row = pl.col("label").shift(-2) == DIST_LINE
    return (
        lat.is_not_null()
        & lon.is_not_null()
        & (~dist_row | pl.col("dist").shift(-2).is_not_null()).fill_null(True)
        & (lat.abs() <= 90)
        & (lon.abs() <= 180)
        & ~off("lat_dms", lat)
        & ~off(pl.col("lon_dms").shift(-1), lon)
    ).fill_null(False)
