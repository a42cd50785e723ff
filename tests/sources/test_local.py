"""LocalSource: the Source contract, plus keys, paths and errors of the local file system."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from contracts.source import SourceContract

from etl4all import sources
from etl4all.errors import ConfigError, SourceError
from etl4all.sources.local import LocalSource, readable


class TestLocalSource(SourceContract):
    @pytest.fixture
    def root(self, tmp_path: Path) -> Path:
        return tmp_path / "in box"

    @pytest.fixture
    def url_of(self, root: Path) -> Callable[[str], str]:
        return lambda path: str(root / path) if path else str(root)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "in box"
    (root / "2024" / "05").mkdir(parents=True)
    (root / "a.txt").write_bytes(b"Latitude: 1\r\n")
    (root / "2024" / "05" / "b.txt").write_bytes(b"x" * 10)
    (root / "2024" / "notes.md").write_text("skip me")
    os.utime(root / "a.txt", (1_700_000_000.5, 1_700_000_000.5))
    return root


def test_keys_are_file_urls_and_mtimes_exact(folder: Path) -> None:
    with LocalSource(url=str(folder)) as source:
        by_name = {ref.name: ref for ref in source.list_files()}
    assert by_name["a.txt"].mtime == 1_700_000_000.5
    assert by_name["a.txt"].key == (folder / "a.txt").as_uri()
    assert by_name["2024/05/b.txt"].key.startswith("file:///")
    assert "in%20box" in by_name["2024/05/b.txt"].key


def test_file_url_relative_path_and_absolute_give_the_same_keys(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    by_url = LocalSource(url=folder.as_uri()).list_files()
    monkeypatch.chdir(folder.parent)
    by_relative = LocalSource(url=folder.name).list_files()
    assert by_url == by_relative


def test_a_single_file_that_vanishes(folder: Path) -> None:
    path = folder / "2024" / "notes.md"
    source = LocalSource(url=str(path))
    (ref,) = source.list_files()
    assert ref.key == path.as_uri()
    path.unlink()
    assert source.list_files() == []
    with pytest.raises(SourceError, match=r"notes\.md"):
        source.read(ref)


def test_missing_path_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no such file or folder: .*nope"):
        LocalSource(url=str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match="three slashes"):
        LocalSource(url="file://server/share")


def test_built_from_a_file_url(folder: Path) -> None:
    with sources.from_url(folder.as_uri()) as source:
        assert isinstance(source, LocalSource)
        assert [ref.name for ref in source.list_files()] == ["2024/05/b.txt", "a.txt"]


def test_a_name_that_is_not_utf8_is_shown_escaped_and_read_all_the_same(tmp_path: Path) -> None:
    """Issue 17, item 11: a Latin-1 name reached the warehouse mangled (or failed the load)."""
    latin1 = os.fsdecode(b"caf\xe9.txt")  # how Python sees the bytes of a Latin-1 name
    (tmp_path / latin1).write_bytes(b"Latitude: 1\r\n")
    (tmp_path / "ok.txt").write_bytes(b"x")
    for _ in range(2):  # the same every time
        with LocalSource(url=str(tmp_path)) as source:
            refs = source.list_files()
            assert [ref.name for ref in refs] == ["caf\\xe9.txt", "ok.txt"]
            assert refs[0].name.encode("utf-8")  # storable: no lone surrogate left
            assert refs[0].key.endswith("/caf%E9.txt")  # the bytes, percent-encoded
            assert source.read(refs[0]) == b"Latitude: 1\r\n"
            with source.open(refs[0]) as file:
                assert file.read() == b"Latitude: 1\r\n"
    assert readable("café.txt") == "café.txt"  # UTF-8 names are left as they are
