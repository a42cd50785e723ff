"""FtpSource against a real pyftpdlib server on loopback: the Source contract, and more."""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from contracts.source import SourceContract
from ftp_server import FtpTestServer

from etl4all import sources
from etl4all.cli import cli
from etl4all.errors import ConfigError, SourceConfigError, SourceError
from etl4all.sources.ftp import FtpSource
from etl4all.sources.settle import by_key, settled


class TestFtpSource(SourceContract):
    @pytest.fixture
    def root(self, ftp_server: FtpTestServer) -> Path:
        return ftp_server.root / "in"

    @pytest.fixture
    def url_of(self, ftp_server: FtpTestServer) -> Callable[[str], str]:
        return lambda path: f"{ftp_server.url}in/{path}"


@pytest.fixture
def files(ftp_server: FtpTestServer) -> FtpTestServer:
    root = ftp_server.root
    (root / "in" / "2024").mkdir(parents=True)
    (root / "in" / "day1.txt").write_bytes(b"Latitude: 30\xc2\xb0S   -30.1\r\nLongitude: x\r\n")
    (root / "in" / "2024" / "day2.txt").write_bytes(bytes(range(256)) * 40)
    (root / "in" / "readme.md").write_text("not coordinates")
    return ftp_server


def test_keys_are_ftp_urls_without_credentials(files: FtpTestServer) -> None:
    with FtpSource(url=files.url + "in") as source:
        refs = source.list_files()
    assert [ref.key for ref in refs] == [
        f"ftp://127.0.0.1:{files.port}/in/2024/day2.txt",
        f"ftp://127.0.0.1:{files.port}/in/day1.txt",
    ]


def test_settled_across_fresh_listings(files: FtpTestServer) -> None:
    with FtpSource(url=files.url + "in") as source:
        first = by_key(source.list_files())
        with open(files.root / "in" / "day1.txt", "ab") as handle:
            handle.write(b"Distance: 1 km\r\n")
        (files.root / "in" / "day3.txt").write_text("new")
        second = source.list_files()
        assert {ref.name: ref.size for ref in second} == {
            "2024/day2.txt": 10240,
            "day1.txt": 55,
            "day3.txt": 3,
        }
        assert [ref.name for ref in settled(first, second)] == ["2024/day2.txt"]
        third = source.list_files()
        assert [ref.name for ref in settled(by_key(second), third)] == [
            "2024/day2.txt",
            "day1.txt",
            "day3.txt",
        ]
        assert source.read(next(r for r in third if r.name == "day1.txt")).endswith(b"km\r\n")


def test_non_recursive_listing(files: FtpTestServer) -> None:
    flat = FtpSource(url=files.url + "in?recursive=no")
    assert [ref.name for ref in flat.list_files()] == ["day1.txt"]
    flat.close()


def test_a_single_file_url(files: FtpTestServer) -> None:
    with FtpSource(url=files.url + "in/readme.md") as source:
        (ref,) = source.list_files()
        assert ref.key == f"ftp://127.0.0.1:{files.port}/in/readme.md"
        # the extractor reads it under the warehouse scope's key (ExtractConfig.scoped)
        scoped = dataclasses.replace(ref, key="duckdb:///w.duckdb <- " + ref.key)
        assert source.read(scoped) == b"not coordinates"


def test_one_connection_per_thread(files: FtpTestServer) -> None:
    source = FtpSource(url=files.url + "in")
    refs = source.list_files()
    results: list[bytes] = []

    def download() -> None:
        results.extend(source.read(ref) for ref in refs)

    threads = [threading.Thread(target=download) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == 6
    assert len(source._hosts) == 4
    source.close()
    assert len(source._hosts) == 0


def test_wrong_password_is_a_config_error_without_the_password(
    files: FtpTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    url = f"ftp://user:Wr0ngPa55@127.0.0.1:{files.port}/in"
    with FtpSource(url=url) as source, pytest.raises(SourceConfigError) as info:
        source.list_files()
    assert "Wr0ngPa55" not in str(info.value)
    assert "ftp://user:***@127.0.0.1" in str(info.value)
    assert "530" in str(info.value)
    assert isinstance(info.value, ConfigError) and not info.value.retryable  # exit 2, no retry
    assert "Wr0ngPa55" not in caplog.text
    assert "Wr0ngPa55" not in repr(source)


def test_missing_folder_and_recovery_after_an_error(files: FtpTestServer) -> None:
    missing = FtpSource(url=files.url + "nope")
    with missing, pytest.raises(SourceError, match="no such folder"):
        missing.list_files()
    with FtpSource(url=files.url + "in") as source:
        refs = source.list_files()
        os.remove(files.root / "in" / "day1.txt")
        with pytest.raises(SourceError):
            source.read(refs[-1])
        assert len(source.list_files()) == 1  # the connection recovers after an error


def test_server_down_is_a_source_error(files: FtpTestServer) -> None:
    url = files.url
    files.stop()
    with pytest.raises(SourceError, match=r"127\.0\.0\.1"):
        FtpSource(url=url + "?timeout=2").list_files()


@pytest.mark.parametrize(
    "url",
    [
        "ftp:///in",
        "ftp://host:99999/in",
        "ftp://host/in?recursive=maybe",
        "ftp://host/in?timeout=-1",
        "ftp://host/in?passive=no",
        "ftp://host/in?utc_offset=-3.1",
        "sftp://host/in",
    ],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(ConfigError):
        FtpSource(url=url)


def test_built_from_url(files: FtpTestServer) -> None:
    with sources.from_url(files.url) as source:
        assert isinstance(source, FtpSource)
        assert repr(source) == f"FtpSource('ftp://127.0.0.1:{files.port}')"


def test_a_folder_that_does_not_exist_is_a_config_fault_exit_2(
    files: FtpTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 17, item 6: it was retryable, exit 1 for ever."""
    with FtpSource(url=files.url + "nope") as missing, pytest.raises(SourceConfigError) as info:
        missing.list_files()
    assert isinstance(info.value, ConfigError) and not info.value.retryable
    assert "check the path in the URL" in str(info.value) and "%2F" in str(info.value)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["run", files.url + "nope", "-q"])
    assert result.exit_code == 2 and "no such folder or file" in result.output
