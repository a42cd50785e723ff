"""Parse data_points files: bytes in, a points frame and a rejects frame out.

A record is a Latitude, a Longitude and maybe a Distance line, grouped by their labels alone;
a record that is not a valid point is ONE reject with its reasons (``unrecognized``,
``out_of_range``, ``dms_mismatch``, ``missing_longitude``, ``missing_latitude``,
``orphan_distance``), the first of which, and so the reject's key, stays the same while its
file grows. The work is Polars expressions over all lines at once, no Python loop per line.
The format, the grouping rules and the reasons: docs/data.md (Input: data_points files);
where records start and end in raw bytes: :mod:`etl4all.parsing.records`.
"""

from __future__ import annotations

from typing import NamedTuple

import polars as pl

from etl4all import frames
from etl4all.parsing.records import BOM

DMS_TOLERANCE = 0.0005
"""Degrees the DMS text may differ from the decimal value (a rounded second is 0.00014°)."""

REASONS = (
    "unrecognized",
    "out_of_range",
    "dms_mismatch",
    "missing_longitude",
    "missing_latitude",
    "orphan_distance",
)
"""Every reason a parse reject can have, in their order of precedence at one line."""

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
"""Line labels (none, Latitude, Longitude, Distance), as small integers: cheaper to shift and
compare than strings; a line's label says which record it belongs to, its format whether it
is read."""


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
        | (pl.col("good").shift(2, fill_value=False) & (pl.col("label") == _DIST_LINE))
    )
    dist_row = (pl.col("label").shift(-2) == _DIST_LINE).fill_null(False)
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
        frames.cast_frame(_rejects(bad, source), frames.REJECTS_SCHEMA),
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
    in its format); and each line's label (:data:`_LAT_LINE`... or :data:`_OTHER_LINE`).

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
    label = pl.repeat(_OTHER_LINE, len(text), dtype=pl.UInt8, eager=True).alias("label")
    for kind, code in (("lat", _LAT_LINE), ("lon", _LON_LINE), ("dist", _DIST_LINE)):
        label = label.scatter(where[kind], code)
    return [
        empty.alias(values.name).scatter(where[kind], values)
        for kind, part in parts.items()
        for values in part.get_columns()
    ], label


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


def _good() -> pl.Expr:
    """Whether a row starts a good record: a readable Latitude line, the readable Longitude
    line right after it, a readable Distance line or none after that, values in range and
    the DMS text (when given) agreeing with them."""
    lat, lon = pl.col("lat"), pl.col("lon").shift(-1)
    dist_row = pl.col("label").shift(-2) == _DIST_LINE
    return (
        lat.is_not_null()
        & lon.is_not_null()
        & (~dist_row | pl.col("dist").shift(-2).is_not_null()).fill_null(True)
        & (lat.abs() <= 90)
        & (lon.abs() <= 180)
        & ~_off("lat_dms", lat)
        & ~_off(pl.col("lon_dms").shift(-1), lon)
    ).fill_null(False)


def _off(dms: str | pl.Expr, value: pl.Expr) -> pl.Expr:
    """Whether DMS text and decimal disagree (false where there is no DMS text)."""
    dms = pl.col(dms) if isinstance(dms, str) else dms
    return ((dms - value).abs() > DMS_TOLERANCE).fill_null(False)


def _rejects(bad: pl.DataFrame, source: str) -> pl.DataFrame:
    """One reject per bad record, from the rows that are in no good record (in line order,
    ``fresh`` where the row before ends a good record or there is none)."""
    if bad.is_empty():
        return frames.empty(frames.REJECTS_SCHEMA)
    records = _records(bad)
    reasons = _reasons(records)
    return records.filter(pl.col("start")).select(
        pl.lit(source).alias("source"),
        "line",
        reason=reasons.str.extract("^([a-z_]+)"),
        text=frames.reject_text(
            pl.lit(_join_runs(records.get_column("text"), records.get_column("start"), "\n"))
        ),
        detail=_record_details(records, reasons.len()),
        reasons=reasons,
    )


def _records(bad: pl.DataFrame) -> pl.DataFrame:
    """``bad`` with where each record starts (``start``), its number (``record``, from 1),
    and each row's faults: a boolean column per reason (see the module docstring)."""
    label = pl.col("label")
    garbage_starts = (label == _OTHER_LINE) & (
        pl.col("fresh") | label.shift(1).is_in([_LON_LINE, _DIST_LINE])
    )
    marker = pl.when(label != _OTHER_LINE).then(label).when(garbage_starts).then(_OTHER_LINE)
    above = marker.shift(1).forward_fill()  # the kind of the record above, as far as it got
    starts = (
        pl.col("fresh")  # after a good record (or at the start), whatever the label
        | garbage_starts
        | (label == _LAT_LINE)
        | ((label == _LON_LINE) & (above >= _LON_LINE))
        | ((label == _DIST_LINE) & (above >= _DIST_LINE))
    )
    start = pl.col("start")
    lons = (label == _LON_LINE).cast(pl.UInt32)
    first = pl.when(start).then(label).forward_fill()  # the label of the record's first line
    has_lon = (  # Longitude lines up to the record's end > up to its start
        pl.when(start.shift(-1, fill_value=True)).then(lons.cum_sum()).backward_fill()
        > pl.when(start).then(lons.cum_sum() - lons).forward_fill()
    )
    return (
        bad.with_columns(start=starts)
        .with_columns(record=start.cum_sum(), first=first, has_lon=has_lon)
        .with_columns(
            unrecognized=pl.coalesce("lat", "lon", "dist").is_null(),
            out_of_range=((pl.col("lat").abs() > 90) | (pl.col("lon").abs() > 180)).fill_null(
                False
            ),
            dms_mismatch=_off("lat_dms", pl.col("lat")) | _off("lon_dms", pl.col("lon")),
            missing_longitude=(label == _LAT_LINE) & ~pl.col("has_lon"),
            missing_latitude=(label == _LON_LINE) & (pl.col("first") != _LAT_LINE),
            orphan_distance=(label == _DIST_LINE)
            & (pl.col("first") != _LAT_LINE)
            & ~pl.col("has_lon"),
        )
    )


def _reasons(records: pl.DataFrame) -> pl.Series:
    """Each record's reasons, comma-separated: in line order, and at one line in the order
    of :data:`REASONS`, each reason where it is first found."""
    new = pl.sum_horizontal(  # the faults first found in its record at each line, as bits
        _first_in_record(reason).cast(pl.UInt8) * (1 << bit)
        for bit, reason in enumerate(REASONS)
        if records.get_column(reason).any()
    )
    # a bad record always has a fault (else it would be good): each has rows listed here
    listed = records.select("record", new=new).filter(pl.col("new") > 0)
    return _join_runs(
        listed.get_column("new").replace_strict(_REASON_LISTS, return_dtype=pl.String),
        listed.select(pl.col("record").diff().fill_null(1) > 0).to_series(),
        ",",
    )


def _record_details(records: pl.DataFrame, count: int) -> pl.Series:
    """Per record, the likely cause of its first unrecognized line that has one, else null."""
    nul = pl.col("text").str.contains("\x00", literal=True)  # a label NUL bytes broke, too
    labelled = pl.col("unrecognized") & ((pl.col("label") != _OTHER_LINE) | nul)
    found = records.select("record", detail=_detail(records, labelled))
    explained = found.filter(pl.col("detail").is_not_null()).unique(
        "record", keep="first", maintain_order=True
    )
    return pl.repeat(None, count, dtype=pl.String, eager=True).scatter(
        explained.get_column("record") - 1, explained.get_column("detail")
    )


_REASON_LISTS = {
    mask: ",".join(reason for bit, reason in enumerate(REASONS) if mask & (1 << bit))
    for mask in range(1, 1 << len(REASONS))
}
"""The reasons of a line, comma-separated, by the bit mask of their places in REASONS."""


def _first_in_record(reason: str) -> pl.Expr:
    """Whether a row has the fault ``reason`` and no row before it in its record has (rows
    numbered by ``record``): a reason is listed once, where it is first found."""
    fault, record = pl.col(reason), pl.col("record")
    last_with_it = pl.when(fault).then(record).forward_fill().shift(1)
    return fault & (last_with_it != record).fill_null(True)


def _join_runs(texts: pl.Series, starts: pl.Series, separator: str) -> pl.Series:
    """The strings of each run of ``texts`` joined with ``separator``, a run starting at
    each true of ``starts`` (the first is true)."""
    return (
        pl.DataFrame({"run": starts.cum_sum(), "text": texts})
        .group_by("run", maintain_order=True)
        .agg(pl.col("text").str.join(separator))
        .get_column("text")
    )


def _detail(rows: pl.DataFrame, labelled_unrecognized: pl.Expr) -> pl.Series:
    """The likely cause of each ``unrecognized`` labelled line of ``rows`` (see
    :data:`_DETAILS`), else null; the patterns run only on those lines (all start with a
    label, or hold NUL bytes)."""
    where = rows.select(labelled_unrecognized).to_series().arg_true()
    details = pl.repeat(None, rows.height, dtype=pl.String, eager=True)
    if not where.len():
        return details
    text = pl.col("text")
    found = pl.lit(None, dtype=pl.String)
    for pattern, detail in reversed(_DETAILS):
        found = pl.when(text.str.contains(pattern)).then(pl.lit(detail)).otherwise(found)
    texts = rows.get_column("text").gather(where).to_frame()
    return details.scatter(where, texts.select(found).to_series())
