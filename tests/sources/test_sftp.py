"""SftpSource against a real asyncssh SFTP server on loopback: the Source contract, host keys,
logins by password and by key, and errors that name what to fix without the password."""

from __future__ import annotations

import dataclasses
import logging
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import asyncssh
import pytest
from contracts.source import SourceContract
from sftp_server import SftpTestServer
from silent_server import SilentServer, bounded
from tcp_proxy import TcpProxy

from etl4all import sources
from etl4all.errors import ConfigError, MissingDependencyError, SourceConfigError, SourceError
from etl4all.sources.settle import by_key, settled
from etl4all.sources.sftp import SftpSource


class TestSftpSource(SourceContract):
    @pytest.fixture
    def root(self, sftp_server: SftpTestServer) -> Path:
        return sftp_server.root / "in"

    @pytest.fixture
    def url_of(self, sftp_server: SftpTestServer) -> Callable[[str], str]:
        return lambda path: f"{sftp_server.url}/in/{path}{sftp_server.known_hosts_option}"


@pytest.fixture
def files(sftp_server: SftpTestServer) -> SftpTestServer:
    root = sftp_server.root
    (root / "in" / "2024").mkdir(parents=True)
    (root / "in" / "day1.txt").write_bytes(b"Latitude: 30\xc2\xb0S   -30.1\r\nLongitude: x\r\n")
    (root / "in" / "2024" / "day2.txt").write_bytes(bytes(range(256)) * 40)
    (root / "in" / "readme.md").write_text("not coordinates")
    return sftp_server


def source_of(server: SftpTestServer, path: str = "/in", url: str | None = None) -> SftpSource:
    return SftpSource(url=f"{url or server.url}{path}{server.known_hosts_option}")


def test_keys_are_sftp_urls_without_credentials(files: SftpTestServer) -> None:
    with source_of(files) as source:
        refs = source.list_files()
        assert repr(source) == f"SftpSource('sftp://127.0.0.1:{files.port}/in')"
    assert [ref.key for ref in refs] == [
        f"sftp://127.0.0.1:{files.port}/in/2024/day2.txt",
        f"sftp://127.0.0.1:{files.port}/in/day1.txt",
    ]


def test_settled_across_fresh_listings(files: SftpTestServer) -> None:
    with source_of(files) as source:
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


def test_non_recursive_listing_and_a_single_file(files: SftpTestServer) -> None:
    with SftpSource(url=f"{files.url}/in{files.known_hosts_option}&recursive=no") as flat:
        assert [ref.name for ref in flat.list_files()] == ["day1.txt"]
    with source_of(files, "/in/readme.md") as single:
        (ref,) = single.list_files()
        assert ref.key == f"sftp://127.0.0.1:{files.port}/in/readme.md"
        # the extractor reads it under the warehouse scope's key (ExtractConfig.scoped)
        scoped = dataclasses.replace(ref, key="duckdb:///w.duckdb <- " + ref.key)
        assert single.read(scoped) == b"not coordinates"


def test_threads_share_one_connection(files: SftpTestServer) -> None:
    with source_of(files) as source:
        refs = source.list_files()
        results: list[bytes] = []

        def download() -> None:
            results.extend(source.read(ref) for ref in refs)

        threads = [threading.Thread(target=download) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert sorted(results) == sorted([source.read(ref) for ref in refs] * 3)


def test_login_by_the_users_key_and_known_hosts_the_usual_way(
    files: SftpTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_bytes(files.client_key_path.read_bytes())
    (home / ".ssh" / "known_hosts").write_text(files.known_hosts_line())
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    with SftpSource(url=f"sftp://user@127.0.0.1:{files.port}/in") as source:
        assert [ref.name for ref in source.list_files()] == ["2024/day2.txt", "day1.txt"]


def test_an_unknown_host_key_is_refused_in_one_line(files: SftpTestServer, tmp_path: Path) -> None:
    other = tmp_path / "empty_known_hosts"
    other.write_text("")
    source = SftpSource(url=f"{files.url}/in?known_hosts={other}")
    with source, pytest.raises(SourceConfigError) as info:
        source.list_files()
    text = str(info.value)
    assert f"host key of [127.0.0.1]:{files.port} is unknown" in text and str(other) in text
    assert "ssh-keyscan" in text and "\n" not in text and not info.value.retryable
    assert "password@" not in text


def test_without_a_known_hosts_file_no_host_key_is_trusted(
    files: SftpTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "empty-home"))
    source = SftpSource(url=f"{files.url}/in")
    with source, pytest.raises(SourceConfigError, match="is unknown") as info:
        source.list_files()
    assert str(tmp_path / "empty-home" / ".ssh" / "known_hosts") in str(info.value)


def test_a_changed_host_key_is_refused_in_one_line(files: SftpTestServer, tmp_path: Path) -> None:
    not_the_servers = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    stale = tmp_path / "stale_known_hosts"
    stale.write_text(f"[127.0.0.1]:{files.port} {not_the_servers}")
    source = SftpSource(url=f"{files.url}/in?known_hosts={stale}")
    with source, pytest.raises(SourceConfigError, match="has changed") as info:
        source.list_files()
    assert "\n" not in str(info.value) and not info.value.retryable


def test_a_wrong_password_is_a_config_error_without_the_password(
    files: SftpTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"sftp://user:Wr0ngPa55@127.0.0.1:{files.port}"
    with source_of(files, url=url) as source, pytest.raises(SourceConfigError) as info:
        source.list_files()
    text = str(info.value)
    assert "login refused" in text and f"sftp://user:***@127.0.0.1:{files.port}/in" in text
    assert not info.value.retryable
    assert "Wr0ngPa55" not in text and "Wr0ngPa55" not in caplog.text
    assert "Wr0ngPa55" not in repr(source)


def test_a_missing_folder_and_recovery_after_an_error(files: SftpTestServer) -> None:
    with source_of(files, "/nope") as missing, pytest.raises(SourceConfigError, match="no such"):
        missing.list_files()
    with source_of(files) as source:
        refs = source.list_files()
        (files.root / "in" / "day1.txt").unlink()
        connection = source._conn
        with pytest.raises(SourceError, match="No such file"):
            source.read(refs[-1])
        assert source._conn is connection  # a file's own error: other threads' reads go on
        assert len(source.list_files()) == 1


def test_server_down_is_a_retryable_source_error(files: SftpTestServer) -> None:
    url = f"{files.url}/in{files.known_hosts_option}&timeout=2"
    files.stop()
    with SftpSource(url=url) as source, pytest.raises(SourceError, match=r"127\.0\.0\.1") as info:
        source.list_files()
    assert info.value.retryable and "password@" not in str(info.value)


def proxied(files: SftpTestServer, proxy: TcpProxy, tmp_path: Path) -> SftpSource:
    """A source of ``/in`` through ``proxy``, whose port ``known_hosts`` names."""
    known = tmp_path / "proxied_known_hosts"
    known.write_text(files.known_hosts_line().replace(f":{files.port} ", f":{proxy.port} "))
    return SftpSource(url=f"{proxy.url(files.url)}/in?known_hosts={known}&timeout=1")


def test_a_lost_connection_is_retryable_and_the_next_call_reconnects(
    files: SftpTestServer, tmp_path: Path
) -> None:
    with TcpProxy("127.0.0.1", files.port) as proxy, proxied(files, proxy, tmp_path) as source:
        assert len(source.list_files()) == 2
        proxy.cut()
        with pytest.raises(SourceError) as info:
            bounded(20.0, source.list_files)
        assert info.value.retryable and "password@" not in str(info.value)
        proxy.restore()
        assert len(source.list_files()) == 2
        assert proxy.accepted == 2


def test_a_server_that_stops_answering_is_given_up_on(
    files: SftpTestServer, tmp_path: Path
) -> None:
    with TcpProxy("127.0.0.1", files.port) as proxy, proxied(files, proxy, tmp_path) as source:
        refs = source.list_files()
        proxy.pause()
        with pytest.raises(SourceError) as info:
            bounded(20.0, lambda: source.read(refs[0]))  # keepalives go unanswered
    text = str(info.value)
    assert info.value.retryable and "\n" not in text
    assert f"127.0.0.1:{proxy.port} did not answer within 1 s (timeout)" in text


@pytest.mark.parametrize("accept", [True, False])
def test_a_server_that_never_answers_is_a_retryable_source_error(accept: bool) -> None:
    with SilentServer(accept=accept) as server:
        source = SftpSource(url=server.url("sftp", "/in?timeout=1", "user:s3cret-pw"))
        with source, pytest.raises(SourceError) as info:
            bounded(20.0, source.list_files)
    text = str(info.value)
    assert info.value.retryable and "\n" not in text and "s3cret-pw" not in text
    assert f"127.0.0.1:{server.port} did not complete the connection and SSH handshake" in text


def test_paths_relative_to_the_login_folder(files: SftpTestServer) -> None:
    # the test server's login folder is its root: /~/in is /in
    with source_of(files, "/~/in") as source:
        assert [ref.name for ref in source.list_files()] == ["2024/day2.txt", "day1.txt"]


@pytest.mark.parametrize(
    "url",
    [
        "sftp:///in",
        "sftp://host:99999/in",
        "sftp://host/in?recursive=maybe",
        "sftp://host/in?timeout=0",
        "sftp://host/in?known_hosts=/no/such/file",
        "sftp://host/in?utc_offset=1",
        "ftp://host/in",
    ],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(ConfigError):
        SftpSource(url=url)


def test_built_from_url(files: SftpTestServer) -> None:
    with sources.from_url(f"{files.url}/in{files.known_hosts_option}") as source:
        assert isinstance(source, SftpSource)


@pytest.mark.parametrize(
    ("url", "module", "driver", "extra"),
    [
        ("sftp://host/in", "etl4all.sources.sftp", "asyncssh", "sftp"),
        ("ftps://host/in", "etl4all.sources.ftps", "ftputil", "ftp"),
    ],
)
def test_a_missing_driver_names_the_extra_to_install(
    url: str, module: str, driver: str, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, driver, None)  # "import driver" fails as if not installed
    monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.delitem(sys.modules, "etl4all.sources.ftp", raising=False)
    with pytest.raises(MissingDependencyError, match=rf"pip install 'etl4all\[{extra}\]'"):
        sources.from_url(url)
