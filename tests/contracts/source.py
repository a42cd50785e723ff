"""The Source contract: every source (local, FTP, S3) passes the same tests.

A backend's test module subclasses :class:`SourceContract` and overrides two fixtures:
``root``, a fresh folder the source serves (the contract writes its files there), and
``url_of``, which turns a path relative to ``root`` (``""`` for ``root`` itself) into the
source URL naming it. A store that serves no local folder (S3) overrides ``served`` instead of
``root``: what writes, appends, removes and dates the served files (:class:`Served`). Every
source is built by ``sources.from_url``, as the wiring builds it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import pytest

from etl4all import sources
from etl4all.errors import SourceError
from etl4all.sources.base import FileRef, Source

CONTENTS = {
    "a.txt": b"Latitude: 30\xc2\xb0S   -30.1\r\nLongitude: x\r\n",
    "2024/05/b.txt": bytes(range(256)) * 40,
    "2024/notes.md": b"not coordinates",
    "São.txt": "ã".encode(),
}
"""The served files: name relative to ``root`` -> bytes."""

TXT_NAMES = ["2024/05/b.txt", "São.txt", "a.txt"]
"""The names ``*.txt`` lists, in order."""


class Served(Protocol):
    """The files a source serves, by name relative to its root."""

    def write(self, name: str, data: bytes) -> None: ...

    def append(self, name: str, data: bytes) -> None: ...

    def remove(self, name: str) -> None: ...

    def mtime(self, name: str) -> float: ...


class Folder:
    """Files served from a local folder (the local and FTP sources)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, name: str, data: bytes) -> None:
        (self.root / name).parent.mkdir(parents=True, exist_ok=True)
        (self.root / name).write_bytes(data)

    def append(self, name: str, data: bytes) -> None:
        with open(self.root / name, "ab") as handle:
            handle.write(data)

    def remove(self, name: str) -> None:
        (self.root / name).unlink()

    def mtime(self, name: str) -> float:
        return (self.root / name).stat().st_mtime


class SourceContract:
    """Listing, reading, patterns, freshness, errors and closing."""

    @pytest.fixture
    def root(self) -> Path:
        """A fresh folder the source serves; override in the backend's module."""
        raise NotImplementedError

    @pytest.fixture
    def url_of(self) -> Callable[[str], str]:
        """The source URL of a path relative to ``root``; override in the backend's module."""
        raise NotImplementedError

    @pytest.fixture
    def served(self, root: Path) -> Served:
        """Where the contract writes the served files: the folder ``root``."""
        return Folder(root)

    @pytest.fixture
    def open_source(self, served: Served, url_of: Callable[[str], str]) -> Callable[..., Source]:
        """Writes :data:`CONTENTS`; builds a source of a path with a pattern."""
        for name, data in CONTENTS.items():
            served.write(name, data)

        def build(path: str = "", pattern: str = "*.txt") -> Source:
            return sources.from_url(url_of(path), pattern=pattern)

        return build

    def test_satisfies_the_protocol(self, open_source: Callable[..., Source]) -> None:
        with open_source() as source:
            assert isinstance(source, Source)

    def test_lists_matching_files_recursively_by_name(
        self, open_source: Callable[..., Source], served: Served
    ) -> None:
        with open_source() as source:
            refs = source.list_files()
        assert [ref.name for ref in refs] == TXT_NAMES
        assert all(isinstance(ref, FileRef) for ref in refs)
        for ref in refs:
            assert ref.size == len(CONTENTS[ref.name])
            assert abs(ref.mtime - served.mtime(ref.name)) < 120  # FTP lists to the minute
        assert len({ref.key for ref in refs}) == len(refs)
        assert all("://" in ref.key and "password" not in ref.key for ref in refs)

    def test_reads_bytes_exactly(self, open_source: Callable[..., Source]) -> None:
        with open_source() as source:
            contents = {ref.name: source.read(ref) for ref in source.list_files()}
        assert contents == {name: CONTENTS[name] for name in TXT_NAMES}

    def test_opens_a_seekable_file_of_the_same_bytes(
        self, open_source: Callable[..., Source]
    ) -> None:
        with open_source() as source:
            for ref in source.list_files():
                with source.open(ref) as file:
                    first = file.read()
                    file.seek(1)
                    assert file.read(3) == CONTENTS[ref.name][1:4]
                assert first == CONTENTS[ref.name]

    def test_opening_a_vanished_file_is_a_source_error(
        self, open_source: Callable[..., Source], served: Served
    ) -> None:
        with open_source() as source:
            refs = source.list_files()
            served.remove("a.txt")
            with pytest.raises(SourceError, match=r"a\.txt"):
                source.open(refs[-1])

    def test_pattern_filters_names(self, open_source: Callable[..., Source]) -> None:
        with open_source(pattern="*.md") as source:
            assert [ref.name for ref in source.list_files()] == ["2024/notes.md"]
        with open_source(pattern="2024/*/*.txt") as source:
            assert [ref.name for ref in source.list_files()] == ["2024/05/b.txt"]

    def test_a_single_file_is_taken_whatever_its_name(
        self, open_source: Callable[..., Source]
    ) -> None:
        with open_source("2024/notes.md") as source:
            (ref,) = source.list_files()
            assert ref.name == "notes.md"
            assert source.read(ref) == b"not coordinates"

    def test_listing_is_fresh(self, open_source: Callable[..., Source], served: Served) -> None:
        with open_source() as source:
            before = {ref.name: ref for ref in source.list_files()}
            served.append("a.txt", b"more")
            served.write("c.txt", b"new")
            after = {ref.name: ref for ref in source.list_files()}
            assert after["a.txt"].size == before["a.txt"].size + 4
            assert "c.txt" in after and "c.txt" not in before
            assert source.read(after["a.txt"]).endswith(b"more")

    def test_a_vanished_file_is_a_source_error(
        self, open_source: Callable[..., Source], served: Served
    ) -> None:
        with open_source() as source:
            refs = source.list_files()
            served.remove("a.txt")
            with pytest.raises(SourceError, match=r"a\.txt") as info:
                source.read(refs[-1])
        assert info.value.retryable

    def test_a_context_manager_that_closes(self, open_source: Callable[..., Source]) -> None:
        source = open_source()
        with source as entered:
            assert entered is source
            assert entered.list_files()
        source.close()  # closing twice is harmless
