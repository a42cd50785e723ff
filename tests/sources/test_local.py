"""LocalSource: folders, single files, patterns and errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from etl4all import sources
from etl4all.errors import ConfigError, SourceError
from etl4all.settings import Settings
from etl4all.sources.base import Source
from etl4all.sources.local import LocalSource

SETTINGS = Settings()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "in box"
    (root / "2024" / "05").mkdir(parents=True)
    (root / "a.txt").write_bytes(b"Latitude: 1\r\n")
    (root / "2024" / "05" / "b.txt").write_bytes(b"x" * 10)
    (root / "2024" / "notes.md").write_text("skip me")
    (root / "São.txt").write_text("ã", encoding="utf-8")
    os.utime(root / "a.txt", (1_700_000_000.5, 1_700_000_000.5))
    return root


def test_lists_a_folder_recursively(folder: Path) -> None:
    with LocalSource(url=str(folder), settings=SETTINGS) as source:
        assert isinstance(source, Source)
        refs = source.list_files()
    assert [ref.name for ref in refs] == ["2024/05/b.txt", "São.txt", "a.txt"]
    by_name = {ref.name: ref for ref in refs}
    assert by_name["a.txt"].size == 13
    assert by_name["a.txt"].mtime == 1_700_000_000.5
    assert by_name["a.txt"].key == (folder / "a.txt").as_uri()
    assert by_name["2024/05/b.txt"].key.startswith("file:///")
    assert "in%20box" in by_name["2024/05/b.txt"].key


def test_reads_bytes_exactly(folder: Path) -> None:
    with LocalSource(url=str(folder), settings=SETTINGS) as source:
        contents = {ref.name: source.read(ref) for ref in source.list_files()}
    assert contents["a.txt"] == b"Latitude: 1\r\n"
    assert contents["São.txt"] == "ã".encode()


def test_file_url_relative_path_and_absolute_give_the_same_keys(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    by_url = LocalSource(url=folder.as_uri(), settings=SETTINGS).list_files()
    monkeypatch.chdir(folder.parent)
    by_relative = LocalSource(url=folder.name, settings=SETTINGS).list_files()
    assert by_url == by_relative


def test_pattern_filters_names(folder: Path) -> None:
    settings = Settings(file_pattern="*.md")
    assert [ref.name for ref in LocalSource(url=str(folder), settings=settings).list_files()] == [
        "2024/notes.md"
    ]
    settings = Settings(file_pattern="2024/*/*.txt")
    assert [ref.name for ref in LocalSource(url=str(folder), settings=settings).list_files()] == [
        "2024/05/b.txt"
    ]


def test_a_single_file_is_taken_whatever_its_name(folder: Path) -> None:
    path = folder / "2024" / "notes.md"
    source = LocalSource(url=str(path), settings=SETTINGS)
    (ref,) = source.list_files()
    assert ref.name == "notes.md"
    assert ref.key == path.as_uri()
    assert source.read(ref) == b"skip me"
    path.unlink()
    assert source.list_files() == []
    with pytest.raises(SourceError, match=r"notes\.md"):
        source.read(ref)


def test_listing_is_fresh(folder: Path) -> None:
    source = LocalSource(url=str(folder), settings=SETTINGS)
    before = {ref.name: ref for ref in source.list_files()}
    with open(folder / "a.txt", "ab") as handle:
        handle.write(b"more")
    (folder / "c.txt").write_text("new")
    after = {ref.name: ref for ref in source.list_files()}
    assert after["a.txt"].size == before["a.txt"].size + 4
    assert "c.txt" in after and "c.txt" not in before


def test_missing_path_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no such file or folder: .*nope"):
        LocalSource(url=str(tmp_path / "nope"), settings=SETTINGS)
    with pytest.raises(ConfigError, match="three slashes"):
        LocalSource(url="file://server/share", settings=SETTINGS)


def test_built_from_url(folder: Path) -> None:
    source = sources.from_url(str(folder), SETTINGS)
    assert isinstance(source, LocalSource)
    assert isinstance(sources.from_url(folder.as_uri(), SETTINGS), LocalSource)
