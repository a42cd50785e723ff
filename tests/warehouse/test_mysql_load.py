"""The MySQL bulk load's TSV escaping: unit tests, no server needed."""

from __future__ import annotations

import polars as pl

from etl4all.warehouse.mysql_load import escape_tsv


def test_escape_tsv_is_exact() -> None:
    frame = pl.DataFrame({"s": ["a\\b\tc\nd\re\x00f", None, "\\N", ""], "n": [1.5, None, 2.0, 0.0]})
    assert escape_tsv(frame).rows() == [
        ("a\\\\b\\tc\\nd\\re\\0f", "1.5"),
        ("\\N", "\\N"),
        ("\\\\N", "2.0"),
        ("", "0.0"),
    ]
