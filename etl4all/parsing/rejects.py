"""The rows of a parse that are in no good record, as one reject per record: its reasons
(:data:`REASONS`, in line order, each where it is first found), its text, and the likely
cause of an unrecognized labelled line (``detail``). The grouping rules: docs/data.md (Input:
data_points files)."""

from __future__ import annotations

import polars as pl

from etl4all import frames
from etl4all.parsing.lines import DIST_LINE, DMS, LAT, LAT_LINE, LON, LON_LINE, OTHER_LINE, SP, off

REASONS = (
    "unrecognized",
    "out_of_range",
    "dms_mismatch",
    "missing_longitude",
    "missing_latitude",
    "orphan_distance",
)
"""Every reason a parse reject can have, in their order of precedence at one line."""

_DETAILS = (
    (
        r"\x00",
        "NUL bytes (shown as \u2400): the file holds binary data or zero padding, e.g. a copy "
        "cut short",
    ),
    (
        rf"(?:{LAT}|{LON}){SP}*:.*[0-9],[0-9]",
        "decimal comma: write -30.04982864, not -30,04982864",
    ),
    (
        rf"(?:{LAT}|{LON}){SP}*:{SP}*" + DMS.replace("HEMI", "[NSEWnsew]").removesuffix("+") + "*$",
        "DMS text only: the decimal value must follow it, as in 30°02′59″S -30.04982864",
    ),
    (
        rf"(?:{LAT}|{LON}|^(?i:Distance)){SP}*:",
        "labelled line in another layout than 'Latitude: [30°02′59″S] -30.04982864'",
    ),
)
"""Why an ``unrecognized`` line was not read, when it looks like one that could have been: the
first pattern that matches names the likely cause (the reject's ``detail``)."""


def per_record(bad: pl.DataFrame, source: str) -> pl.DataFrame:
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
    garbage_starts = (label == OTHER_LINE) & (
        pl.col("fresh") | label.shift(1).is_in([LON_LINE, DIST_LINE])
    )
    marker = pl.when(label != OTHER_LINE).then(label).when(garbage_starts).then(OTHER_LINE)
    above = marker.shift(1).forward_fill()  # the kind of the record above, as far as it got
    starts = (
        pl.col("fresh")  # after a good record (or at the start), whatever the label
        | garbage_starts
        | (label == LAT_LINE)
        | ((label == LON_LINE) & (above >= LON_LINE))
        | ((label == DIST_LINE) & (above >= DIST_LINE))
    )
    start = pl.col("start")
    lons = (label == LON_LINE).cast(pl.UInt32)
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
            dms_mismatch=off("lat_dms", pl.col("lat")) | off("lon_dms", pl.col("lon")),
            missing_longitude=(label == LAT_LINE) & ~pl.col("has_lon"),
            missing_latitude=(label == LON_LINE) & (pl.col("first") != LAT_LINE),
            orphan_distance=(label == DIST_LINE)
            & (pl.col("first") != LAT_LINE)
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
    labelled = pl.col("unrecognized") & ((pl.col("label") != OTHER_LINE) | nul)
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
