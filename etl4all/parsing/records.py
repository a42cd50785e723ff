"""Where records start and end in the raw bytes of a data_points file (see :mod:`.parse`).

A file still uploading can end mid-record, even mid-number (``-51.201`` of ``-51.20150245``),
which would read as a wrong but valid coordinate. :func:`complete_end` tells where the
complete records end (the next record or a closed Distance line follows), with a few ``rfind``
calls from the end; the extract stage leaves the rest out until the file is final.
:func:`last_record_start` tells where the last record starts, so that a file can be read in
pieces cut there. The rules: docs/configuration.md (Uploads that stall).
"""

from __future__ import annotations

BOM = b"\xef\xbb\xbf"
"""The UTF-8 byte order mark (dropped from the start of a file)."""
_RECORD_START = b"latitude"
_RECORD_END = b"distance"
_WINDOW = 1 << 16
"""Bytes lowered at a time when looking for a label from the end of a file."""
_DEGREE = b"\xb0"
"""The last byte of ``°`` in UTF-8 and its only byte in latin-1: it closes a last Distance line."""


def complete_end(data: bytes) -> int:
    """The end of the complete records of ``data``: ``data[end:]`` is the incomplete tail.

    See the module docstring for what is complete. Returns ``len(data)`` when nothing is
    missing (trailing whitespace aside), else the start of the tail's first line.
    """
    size = len(data)
    last_line = _line_start(data, size)
    end = size
    if last_line < size:  # the last line has no line break yet
        line = data[last_line:].strip()
        if not (line[: len(_RECORD_END)].lower() == _RECORD_END and line.endswith(_DEGREE)):
            end = last_line
    record = _last_line_with(data, _RECORD_START, 0, size)
    if 0 <= record < end and _last_line_with(data, _RECORD_END, record, end) < 0:
        end = record  # the last record is not closed yet
    return end if data[end:].strip() else size


def _line_start(data: bytes, pos: int) -> int:
    """The offset where the line holding ``data[pos]`` starts (LF, CR and CRLF end lines)."""
    return max(data.rfind(b"\n", 0, pos), data.rfind(b"\r", 0, pos)) + 1


def _last_line_with(data: bytes, label: bytes, lo: int, hi: int) -> int:
    """The start of the last line within ``data[lo:hi]`` that begins with ``label`` (in any
    case, after blanks, and the BOM on the first line), or -1. Linear: each line is looked at
    once."""
    pos = _rfind_any_case(data, label, lo, hi)
    while pos >= lo:
        start = _line_start(data, pos)
        if not data[start:pos].removeprefix(BOM if start == 0 else b"").strip():
            return start
        pos = _rfind_any_case(data, label, lo, max(start - 1, lo))
    return -1


def _rfind_any_case(data: bytes, label: bytes, lo: int, hi: int) -> int:
    """``data.rfind(label, lo, hi)`` for a lowercase ``label`` found in any case: windows of
    ``data`` are lowered from the end, so only the part searched is copied."""
    top = hi
    while top > lo:
        bottom = max(lo, top - _WINDOW)
        pos = data[bottom:top].lower().rfind(label)
        if pos >= 0:
            return bottom + pos
        if bottom == lo:
            break
        top = bottom + len(label) - 1  # a label may straddle the window's start
    return -1


def last_record_start(data: bytes) -> int:
    """The offset of the line where the last record of ``data`` starts, or -1 if none does:
    cutting there never splits a record (see :mod:`etl4all.parsing.reading`)."""
    return _last_line_with(data, _RECORD_START, 0, len(data))
