"""Helpers shared by the sources' listings: name matching and the "settled" check.

FTP cannot tell whether a file is still being uploaded. A poller therefore takes a file only
when two listings, taken ``settle_seconds`` apart, show it with the same size, mtime and
etag (:func:`settled`; S3 shows an object only once uploaded, but the rule is the same).
Both helpers are pure functions, so the extract stage owns the timing and the tests need no
clock.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable

from etl4all.sources.base import FileRef


def name_matches(name: str, pattern: str) -> bool:
    """Whether the file ``name`` (relative path, ``/``-separated) matches ``pattern``.

    A pattern without ``/`` (``*.txt``) is matched against the base name, so it applies in
    every sub-folder; a pattern with ``/`` (``2024/*.txt``) against the whole relative path.
    Matching is case-sensitive on every platform.
    """
    target = name if "/" in pattern else name.rsplit("/", 1)[-1]
    return fnmatch.fnmatchcase(target, pattern)


def by_key(refs: Iterable[FileRef]) -> dict[str, FileRef]:
    """Index a listing by ``FileRef.key``, to pass as ``previous`` to :func:`settled`."""
    return {ref.key: ref for ref in refs}


def settled(previous: dict[str, FileRef], current: list[FileRef]) -> list[FileRef]:
    """The files of ``current`` whose size, mtime and etag did not change since ``previous``.

    Args:
        previous: the earlier listing, by key (see :func:`by_key`).
        current: the later listing, taken at least ``settle_seconds`` after ``previous``.

    Returns:
        The settled files, in the order of ``current``. A file missing from ``previous``
        (new, or renamed into place) is not settled yet: it needs one more listing.
    """
    settled_refs = []
    for ref in current:
        before = previous.get(ref.key)
        if before is not None and _version(before) == _version(ref):
            settled_refs.append(ref)
    return settled_refs


def _version(ref: FileRef) -> tuple[int, float, str]:
    """What identifies the content of a file as listed."""
    return ref.size, ref.mtime, ref.etag
