"""FtpsSource and FtpSource against a real vsftpd (Debian's, default ``require_ssl_reuse=YES``)
on loopback: the Source contract, a file changed after its listing, a missing folder, and
``etl4all run`` end to end. One server of each kind per module (``private_vsftpd.py``)."""

from __future__ import annotations

import ftplib
import ssl
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from contracts.source import SourceContract
from private_tls import TlsFiles
from private_vsftpd import PASSWORD, USER, PrivateVsftpd
from test_remote_runs import loads_once_then_skips, served_sample

from etl4all import sources, urls
from etl4all.errors import SourceConfigError, SourceError
from etl4all.sources.ftps import FtpsSource

pytestmark = pytest.mark.xdist_group("vsftpd")
"""One worker runs the module (with ``-n``): one server, started once."""


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return TlsFiles.make(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def ftps_vsftpd(tmp_path_factory: pytest.TempPathFactory, tls: TlsFiles) -> Iterator[PrivateVsftpd]:
    """vsftpd requiring TLS on the login and the data connections, with session reuse."""
    with PrivateVsftpd(tmp_path_factory.mktemp("vsftpd-tls"), tls=tls) as server:
        yield server


@pytest.fixture(scope="module")
def ftp_vsftpd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateVsftpd]:
    """vsftpd without TLS."""
    with PrivateVsftpd(tmp_path_factory.mktemp("vsftpd-plain")) as server:
        yield server


def url_in(server: PrivateVsftpd, path: str) -> str:
    """The source URL of ``path`` (relative to the served folder)."""
    query = "" if server.tls is None else f"?ca={server.tls.ca}"
    return f"{server.url}{path}{query}"


@pytest.fixture
def folder() -> str:
    """A fresh folder name in the served folder (the server outlives the test)."""
    return f"t-{uuid.uuid4().hex[:10]}"


class TestFtpsOnVsftpd(SourceContract):
    @pytest.fixture
    def root(self, ftps_vsftpd: PrivateVsftpd, folder: str) -> Path:
        return ftps_vsftpd.root / folder

    @pytest.fixture
    def url_of(self, ftps_vsftpd: PrivateVsftpd, folder: str) -> Callable[[str], str]:
        return lambda path: url_in(ftps_vsftpd, f"{folder}/{path}")


class TestFtpOnVsftpd(SourceContract):
    @pytest.fixture
    def root(self, ftp_vsftpd: PrivateVsftpd, folder: str) -> Path:
        return ftp_vsftpd.root / folder

    @pytest.fixture
    def url_of(self, ftp_vsftpd: PrivateVsftpd, folder: str) -> Callable[[str], str]:
        return lambda path: url_in(ftp_vsftpd, f"{folder}/{path}")


def test_vsftpd_refuses_a_data_connection_without_session_reuse(
    ftps_vsftpd: PrivateVsftpd, tls: TlsFiles
) -> None:
    """What the source's data connections must get past: a bare ``FTP_TLS`` is refused."""
    plain_tls = ftplib.FTP_TLS(context=ssl.create_default_context(cafile=tls.ca), timeout=10)
    try:
        plain_tls.connect("127.0.0.1", ftps_vsftpd.port)
        plain_tls.login(USER, PASSWORD)
        plain_tls.prot_p()
        with pytest.raises(ftplib.error_perm, match="522 SSL connection failed: session reuse"):
            plain_tls.nlst()
    finally:
        plain_tls.close()


class _NoReuseFtpsSource(FtpsSource):
    """An FTPS source whose data connections start new TLS sessions (a bare ``FTP_TLS``'s)."""

    def _session_class(self, parsed: urls.Url) -> type[ftplib.FTP]:
        class NoReuse(super()._session_class(parsed)):  # type: ignore[misc]
            ntransfercmd = ftplib.FTP_TLS.ntransfercmd

        return NoReuse


def test_the_reply_of_a_server_that_hangs_up_is_in_the_error(
    ftps_vsftpd: PrivateVsftpd, folder: str
) -> None:
    """vsftpd closes the session after its ``522``: ftputil's ``CWD`` back then meets EOF, and
    its wrapper of that has no text; the error names the reply, not ftputil's version."""
    (ftps_vsftpd.root / folder).mkdir()
    source = _NoReuseFtpsSource(url=url_in(ftps_vsftpd, folder))
    with source, pytest.raises(SourceError) as info:
        source.list_files()
    text = str(info.value)
    assert "522 SSL connection failed: session reuse required" in text, text
    assert "Debugging info" not in text and "\n" not in text


@pytest.mark.parametrize("kind", ["ftps", "ftp"])
def test_a_file_changed_after_its_listing_is_read_as_it_is_now(
    kind: str, request: pytest.FixtureRequest, folder: str
) -> None:
    server: PrivateVsftpd = request.getfixturevalue(f"{kind}_vsftpd")
    (server.root / folder).mkdir()
    (server.root / folder / "a.txt").write_bytes(b"Latitude: 1\r\n")
    with sources.from_url(url_in(server, folder)) as source:
        (ref,) = source.list_files()
        (server.root / folder / "a.txt").write_bytes(b"Latitude: 1\r\nLongitude: 2\r\n")
        assert source.read(ref) == b"Latitude: 1\r\nLongitude: 2\r\n"
        with source.open(ref) as file:
            assert file.read() == b"Latitude: 1\r\nLongitude: 2\r\n"
        assert ref.size == 13 and source.list_files()[0].size == 27


@pytest.mark.parametrize("kind", ["ftps", "ftp"])
def test_a_missing_folder_is_a_config_error(
    kind: str, request: pytest.FixtureRequest, folder: str
) -> None:
    server: PrivateVsftpd = request.getfixturevalue(f"{kind}_vsftpd")
    source = sources.from_url(url_in(server, f"{folder}/in"))
    with source, pytest.raises(SourceConfigError, match="no such folder or file") as info:
        source.list_files()
    assert not info.value.retryable and PASSWORD not in str(info.value)


def test_a_plain_session_to_a_server_that_requires_tls_is_told_to_use_ftps(
    ftps_vsftpd: PrivateVsftpd, folder: str
) -> None:
    plain = ftps_vsftpd.url.replace("ftps://", "ftp://", 1) + folder
    with sources.from_url(plain) as source, pytest.raises(SourceConfigError) as info:
        source.list_files()
    text = str(info.value)
    assert "530 Anonymous sessions must use encryption." in text, text
    assert "use an ftps:// URL" in text and PASSWORD not in text and not info.value.retryable


@pytest.mark.parametrize("kind", ["ftps", "ftp"])
def test_run_loads_once_then_skips(
    kind: str, request: pytest.FixtureRequest, folder: str, tmp_path: Path
) -> None:
    server: PrivateVsftpd = request.getfixturevalue(f"{kind}_vsftpd")
    expected = served_sample(server.root / folder / "in")
    loads_once_then_skips(url_in(server, f"{folder}/in"), tmp_path, expected)
