"""FtpsSource against a real pyftpdlib TLS server on loopback, with a CA made in the test:
the Source contract, and certificate checks that fail in one clear line."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme
from contracts.source import SourceContract
from ftp_server import FtpTestServer

from etl4all import sources
from etl4all.errors import ConfigError, SourceConfigError
from etl4all.sources.ftps import FtpsSource


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def tls_server(root: Path, ca: trustme.CA, *names: str) -> FtpTestServer:
    """An FTPS server whose certificate, signed by ``ca``, is for ``names``."""
    cert = root.parent / "server.pem"
    ca.issue_cert(*names).private_key_and_cert_chain_pem.write_to_path(str(cert))
    return FtpTestServer(root, cert=cert)


@pytest.fixture
def ftps_server(tmp_path: Path, ca: trustme.CA) -> Iterator[FtpTestServer]:
    with tls_server(tmp_path / "ftps-root", ca, "127.0.0.1", "localhost") as server:
        yield server


class TestFtpsSource(SourceContract):
    @pytest.fixture
    def root(self, ftps_server: FtpTestServer) -> Path:
        return ftps_server.root / "in"

    @pytest.fixture
    def url_of(self, ftps_server: FtpTestServer, ca_file: Path) -> Callable[[str], str]:
        return lambda path: f"{ftps_server.url}in/{path}?ca={ca_file}"


def test_keys_are_ftps_urls_without_credentials(ftps_server: FtpTestServer, ca_file: Path) -> None:
    (ftps_server.root / "day1.txt").write_text("x")
    with sources.from_url(f"{ftps_server.url}?ca={ca_file}") as source:
        assert isinstance(source, FtpsSource)
        (ref,) = source.list_files()
    assert ref.key == f"ftps://127.0.0.1:{ftps_server.port}/day1.txt"


def test_an_unknown_ca_fails_in_one_line_without_the_password(
    ftps_server: FtpTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with sources.from_url(ftps_server.url) as source, pytest.raises(SourceConfigError) as info:
        source.list_files()  # the system CA store does not know the test's CA
    text = str(info.value)
    assert f"certificate check of 127.0.0.1:{ftps_server.port} failed" in text
    assert "unknown CA" in text and "\n" not in text and not info.value.retryable
    assert "password" not in text and "password" not in caplog.text


def test_a_wrong_host_name_fails_in_one_line(tmp_path: Path, ca: trustme.CA, ca_file: Path) -> None:
    with tls_server(tmp_path / "other", ca, "files.example.org") as server:
        source = sources.from_url(f"{server.url}?ca={ca_file}")
        with source, pytest.raises(SourceConfigError) as info:
            source.list_files()
    text = str(info.value)
    assert "certificate check of 127.0.0.1" in text and "wrong host name" in text
    assert "\n" not in text and "password" not in text


def test_verify_no_skips_the_check_only_when_asked(ftps_server: FtpTestServer) -> None:
    (ftps_server.root / "day1.txt").write_text("x")
    with sources.from_url(f"{ftps_server.url}?verify=no") as source:
        (ref,) = source.list_files()
        assert source.read(ref) == b"x"


def test_a_plain_ftp_client_is_refused_by_a_tls_only_server(ftps_server: FtpTestServer) -> None:
    plain = ftps_server.url.replace("ftps://", "ftp://")
    with sources.from_url(plain) as source, pytest.raises(SourceConfigError) as info:
        source.list_files()  # the server requires TLS: ftp:// stays plain, never upgraded
    # pyftpdlib says it as ProFTPD does: "550 SSL/TLS required on the control channel"
    assert "TLS required" in str(info.value) and "use an ftps:// URL" in str(info.value)
    assert not info.value.retryable


@pytest.mark.parametrize(
    "url",
    ["ftps://host/in?ca=/no/such/ca.pem", "ftps://host/in?verify=maybe", "ftps://host/in?cert=x"],
)
def test_bad_tls_options_are_refused(url: str) -> None:
    with pytest.raises(ConfigError):
        FtpsSource(url=url)
