"""Code shared by the warehouse backends: DDL files, rows to load, TSV files, keys.

No database driver is imported here.

DDL lives in ``sql/<dialect>/NNN_*.sql`` at the repository root (the canonical copy) and
is installed with the package as data files (``setup.cfg`` ``[options.data_files]``) under
``<prefix>/share/etl4all/sql/<dialect>/``. :func:`ddl_files` looks in the source checkout
first (also what an editable install sees), then in the installed data folders.
"""

from __future__ import annotations

import site
import sys
import sysconfig
from pathlib import Path

import polars as pl

from etl4all import frames
from etl4all.errors import ConfigError, DataError
from etl4all.warehouse.base import CHANGE_FIELDS, LOAD_SCHEMA

KEY = ("latitude", "longitude")
"""The table's unique business key."""

PROVENANCE = ("source_file", "source_line", "distance_km", "bearing_deg")
"""Columns that follow the smallest (source_file, source_line) ever loaded."""

COLUMNS = (*KEY, *CHANGE_FIELDS, "geocoded_at", *PROVENANCE)
"""Columns a load writes, in this order (``id``, ``created_at``, ``updated_at`` aside)."""

_KEY_PATTERN = r"^-?\d{1,3}\.\d{8},-?\d{1,3}\.\d{8}$"


def ddl_files(dialect: str) -> list[Path]:
    """The DDL files of ``dialect`` (``mysql``, ``duckdb``), in the order to run them.

    Raises:
        ConfigError: no folder holds them (a broken installation).
    """
    candidates = [Path(__file__).resolve().parents[2] / "sql" / dialect]
    data_dirs = [sysconfig.get_path("data"), sys.prefix, site.USER_BASE or ""]
    candidates += [Path(d) / "share" / "etl4all" / "sql" / dialect for d in data_dirs if d]
    for folder in candidates:
        files = sorted(folder.glob("*.sql"))
        if files:
            return files
    raise ConfigError(
        f"no {dialect} DDL files found in {', '.join(map(str, candidates))}; "
        "reinstall etl4all or run from a source checkout"
    )


def ddl_statements(dialect: str) -> list[str]:
    """The DDL statements of ``dialect``: files split at a semicolon ending a line."""
    statements: list[str] = []
    for path in ddl_files(dialect):
        lines = [
            line
            for line in path.read_text(encoding="utf-8").splitlines()
            if not line.lstrip().startswith("--")
        ]
        text = "\n".join(lines)
        statements += [part.strip() for part in text.split(";\n") if part.strip(" \n;")]
    return [s.rstrip(";") for s in statements]


def load_rows(inserts: pl.DataFrame, updates: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The rows to load, as table columns (``COLUMNS``), from the two load frames.

    The coordinates become their fixed 8-decimal strings (exact DECIMAL input), floats'
    NaN becomes NULL, ``geocoded_at`` becomes naive UTC, ``source``/``line`` become
    ``source_file``/``source_line``. A coordinate present in both frames (or twice) is
    kept once, the row with the smallest (source, line) winning, as in
    :func:`etl4all.frames.canonical`; it stays in the frame it came from.

    Raises:
        DataError: a frame does not fit ``LOAD_SCHEMA``.
    """
    both = pl.concat(
        [
            frames.cast_frame(inserts, LOAD_SCHEMA).with_columns(_update=pl.lit(False)),
            frames.cast_frame(updates, LOAD_SCHEMA).with_columns(_update=pl.lit(True)),
        ]
    )
    scaled = [frames.scaled_key(pl.col(c), frames.KEY_DECIMALS).alias(f"_{c}") for c in KEY]
    both = both.with_columns(scaled)
    # A hash collision only costs the exact path below, never a wrong answer.
    if both.select(pl.struct("_latitude", "_longitude").hash().n_unique()).item() < both.height:
        both = both.sort("source", "line").unique(
            subset=["_latitude", "_longitude"], keep="first", maintain_order=True
        )
    rows = both.select(
        frames.fixed(pl.col("latitude"), frames.KEY_DECIMALS).alias("latitude"),
        frames.fixed(pl.col("longitude"), frames.KEY_DECIMALS).alias("longitude"),
        *CHANGE_FIELDS,
        pl.col("geocoded_at").dt.convert_time_zone("UTC").dt.replace_time_zone(None),
        pl.col("source").alias("source_file"),
        pl.col("line").alias("source_line"),
        pl.col("distance_km").fill_nan(None),
        pl.col("bearing_deg").fill_nan(None),
        "_update",
    )
    return (
        rows.filter(~pl.col("_update")).drop("_update"),
        rows.filter(pl.col("_update")).drop("_update"),
    )


def escape_tsv(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` as strings in ``LOAD DATA``'s default escaping (vectorized).

    Backslash, TAB, LF, CR and NUL inside strings are escaped; NULL becomes ``\\N``;
    datetimes become ``YYYY-MM-DD HH:MM:SS.ffffff``; numbers their shortest exact text.
    """
    specials = ["\\", "\t", "\n", "\r", "\x00"]
    escaped = ["\\\\", "\\t", "\\n", "\\r", "\\0"]
    columns = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if dtype == pl.String:
            col = col.str.replace_many(specials, escaped)
        elif isinstance(dtype, pl.Datetime):
            col = col.dt.strftime("%Y-%m-%d %H:%M:%S%.6f")
        else:
            col = col.cast(pl.String)
        columns.append(col.fill_null("\\N").alias(name))
    return frame.select(columns)


def write_tsv(frame: pl.DataFrame, path: Path) -> int:
    """Write ``frame`` as a ``LOAD DATA`` TSV file (no header); returns the rows written."""
    escape_tsv(frame).write_csv(
        path, separator="\t", include_header=False, quote_style="never", line_terminator="\n"
    )
    return frame.height


def key_frame(keys: pl.Series) -> pl.DataFrame:
    """``keys`` (canonical coordinate strings) as columns ``key``, ``latitude``, ``longitude``.

    The coordinates stay strings, for exact DECIMAL comparison in SQL.

    Raises:
        DataError: a key is not a canonical coordinate key.
    """
    frame = pl.DataFrame({"key": keys.cast(pl.String)}).unique(maintain_order=True)
    bad = frame.filter(~pl.col("key").str.contains(_KEY_PATTERN) | pl.col("key").is_null())
    if bad.height:
        raise DataError(
            f"{bad.height} keys are not canonical coordinate keys, e.g. {bad['key'][0]!r}; "
            'expected "-30.04982864,-51.20150245" (frames.coordinate_key)'
        )
    parts = pl.col("key").str.split_exact(",", 1)
    return frame.with_columns(
        parts.struct.field("field_0").alias("latitude"),
        parts.struct.field("field_1").alias("longitude"),
    )


def present(keys: pl.Series, found: pl.Series) -> pl.Series:
    """Those of ``keys`` in ``found``, in the order and under the name of ``keys``."""
    return keys.filter(keys.is_in(found.implode()))


def table_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """A read address table in the common shape: float coordinates, UTC timestamps."""
    stamps = [c for c in ("geocoded_at", "created_at", "updated_at") if c in frame.columns]
    return frame.with_columns(
        pl.col("latitude", "longitude").cast(pl.Float64),
        *(pl.col(c).cast(pl.Datetime("us")).dt.replace_time_zone("UTC") for c in stamps),
    )
