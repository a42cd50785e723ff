"""The bulk loads' text escaping (``LOAD DATA`` and ``COPY``): unit tests, no server needed."""

from __future__ import annotations

import polars as pl

from etl4all.warehouse.bulk_text import escaped


def test_load_data_text_is_exact() -> None:
    frame = pl.DataFrame({"s": ["a\\b\tc\nd\re\x00f", None, "\\N", ""], "n": [1.5, None, 2.0, 0.0]})
    assert escaped(frame, nul=True).rows() == [
        ("a\\\\b\\tc\\nd\\re\\0f", "1.5"),
        ("\\N", "\\N"),
        ("\\\\N", "2.0"),
        ("", "0.0"),
    ]


def test_copy_text_leaves_nul_to_the_server_and_escapes_the_rest() -> None:
    frame = pl.DataFrame({"s": ["a\tb\x00", None]})
    assert escaped(frame, nul=False).rows() == [("a\\tb\x00",), ("\\N",)]
