"""The settled check and name matching shared by the sources."""

from __future__ import annotations

from etl4all.sources.base import FileRef
from etl4all.sources.settle import by_key, name_matches, settled


def ref(name: str, size: int, mtime: float = 1_700_000_000.0) -> FileRef:
    return FileRef(key=f"ftp://h:21/{name}", name=name, size=size, mtime=mtime)


def test_settled_needs_two_identical_listings() -> None:
    first = [ref("a.txt", 10), ref("b.txt", 10), ref("c.txt", 10)]
    second = [ref("a.txt", 10), ref("b.txt", 20), ref("c.txt", 10, 1_700_000_060.0), ref("d", 1)]
    assert settled({}, first) == []
    assert settled(by_key(first), second) == [ref("a.txt", 10)]
    third = [ref("a.txt", 10), ref("b.txt", 20), ref("c.txt", 10, 1_700_000_060.0), ref("d", 1)]
    assert settled(by_key(second), third) == third


def test_name_matches_base_name_or_whole_path() -> None:
    assert name_matches("2024/05/day.txt", "*.txt")
    assert not name_matches("2024/05/day.TXT", "*.txt")
    assert name_matches("2024/05/day.txt", "2024/*/*.txt")
    assert not name_matches("2023/05/day.txt", "2024/*")
    assert name_matches("data_points_1.txt", "data_points_*")


def test_a_new_etag_is_not_settled_at_the_same_size_and_mtime() -> None:
    first = [FileRef(key="s3://b/a.txt", name="a.txt", size=10, mtime=1.0, etag='"e1"')]
    rewritten = [FileRef(key="s3://b/a.txt", name="a.txt", size=10, mtime=1.0, etag='"e2"')]
    assert settled(by_key(first), first) == first
    assert settled(by_key(first), rewritten) == []
