"""The tab-separated text of a bulk load, MySQL's ``LOAD DATA`` and PostgreSQL's ``COPY``
text format alike, built by Polars expressions (no Python loop touches a row)."""

from __future__ import annotations

from typing import IO

import polars as pl

_SPECIALS = ["\\", "\t", "\n", "\r"]
_ESCAPED = ["\\\\", "\\t", "\\n", "\\r"]
_NUL = (["\x00"], ["\\0"])
"""NUL and its escape, for ``LOAD DATA`` only."""


def escaped(frame: pl.DataFrame, *, nul: bool) -> pl.DataFrame:
    """``frame`` as strings: backslash, TAB, LF and CR inside strings escaped (and NUL, with
    ``nul``: ``LOAD DATA`` takes ``\\0``, ``COPY`` refuses any); NULL as ``\\N``; datetimes as
    ``YYYY-MM-DD HH:MM:SS.ffffff``; numbers their shortest exact text."""
    specials, escapes = (_SPECIALS + _NUL[0], _ESCAPED + _NUL[1]) if nul else (_SPECIALS, _ESCAPED)
    columns = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if dtype == pl.String:
            col = col.str.replace_many(specials, escapes)
        elif isinstance(dtype, pl.Datetime):
            col = col.dt.strftime("%Y-%m-%d %H:%M:%S%.6f")
        else:
            col = col.cast(pl.String)
        columns.append(col.fill_null("\\N").alias(name))
    return frame.select(columns)


def write(rows: pl.DataFrame, out: IO[bytes]) -> None:
    """Write :func:`escaped` ``rows`` to ``out``: TAB between fields, LF after each row, no
    header, no quoting."""
    rows.write_csv(
        out, separator="\t", include_header=False, quote_style="never", line_terminator="\n"
    )
