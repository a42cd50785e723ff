"""SftpSource against a real OpenSSH sshd with Debian's sftp-server on loopback: the Source
contract, host key and client key types, the ``ssh-keyscan`` line the docs tell users to
add, symbolic links, a file changed after its listing, a missing folder, and ``etl4all run``
end to end. One server per module (``private_sshd.py``); logins by the user's key."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from contracts.source import SourceContract
from private_sshd import HOST_KEY_TYPES, PrivateSshd
from test_remote_runs import loads_once_then_skips, served_sample

from etl4all import sources
from etl4all.errors import SourceConfigError

pytestmark = pytest.mark.xdist_group("openssh")
"""One worker runs the module (with ``-n``): one server, started once."""


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateSshd]:
    with PrivateSshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user's home of the test: no key, no agent (tests install the key they log in with)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return home


@pytest.fixture
def keyed(sshd: PrivateSshd, home: Path) -> Path:
    """``home`` with the ed25519 client key in ``~/.ssh``."""
    sshd.install_client_key(home)
    return home


@pytest.fixture
def folder() -> str:
    """A fresh folder name in the login folder (the server outlives the test)."""
    return f"t-{uuid.uuid4().hex[:10]}"


def url_in(sshd: PrivateSshd, path: str, known_hosts: Path | None = None) -> str:
    """The source URL of ``path`` under the login folder (``/~/``)."""
    return f"{sshd.url}/~/{path}?known_hosts={known_hosts or sshd.known_hosts()}"


class TestSftpOnOpenSsh(SourceContract):
    @pytest.fixture
    def root(self, sshd: PrivateSshd, keyed: Path, folder: str) -> Path:
        return sshd.home / folder

    @pytest.fixture
    def url_of(self, sshd: PrivateSshd, folder: str) -> Callable[[str], str]:
        return lambda path: url_in(sshd, f"{folder}/{path}")


@pytest.fixture
def one_file(sshd: PrivateSshd, folder: str) -> Path:
    (sshd.home / folder).mkdir()
    path = sshd.home / folder / "a.txt"
    path.write_bytes(b"Latitude: 1\r\n")
    return path


@pytest.mark.parametrize("host_key", HOST_KEY_TYPES)
def test_each_host_key_type_is_verified(
    sshd: PrivateSshd, keyed: Path, one_file: Path, folder: str, host_key: str
) -> None:
    """known_hosts with one key type: the client must ask for that type (rsa: rsa-sha2-*)."""
    url = url_in(sshd, folder, sshd.known_hosts(host_key))
    with sources.from_url(url) as source:
        assert [ref.name for ref in source.list_files()] == ["a.txt"]


def test_an_rsa_client_key_logs_in(
    sshd: PrivateSshd, home: Path, one_file: Path, folder: str
) -> None:
    """OpenSSH refuses ssh-rsa (SHA-1) signatures: an RSA key must sign with rsa-sha2-*."""
    sshd.install_client_key(home, "rsa")
    with sources.from_url(url_in(sshd, folder)) as source:
        (ref,) = source.list_files()
        assert source.read(ref) == b"Latitude: 1\r\n"


def test_the_ssh_keyscan_line_of_the_docs_is_trusted(
    sshd: PrivateSshd, keyed: Path, one_file: Path, folder: str
) -> None:
    """docs/backends.md: ``ssh-keyscan -p PORT HOST >> ~/.ssh/known_hosts``, then no option."""
    scanned = subprocess.run(
        ["ssh-keyscan", "-p", str(sshd.port), "127.0.0.1"],
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout
    assert scanned.strip()
    (keyed / ".ssh" / "known_hosts").write_bytes(scanned)
    with sources.from_url(f"{sshd.url}/~/{folder}") as source:
        assert [ref.name for ref in source.list_files()] == ["a.txt"]


def test_without_a_key_the_login_is_refused_in_one_line(
    sshd: PrivateSshd, home: Path, one_file: Path, folder: str
) -> None:
    source = sources.from_url(url_in(sshd, folder))
    with source, pytest.raises(SourceConfigError, match="login refused") as info:
        source.list_files()
    assert "\n" not in str(info.value) and not info.value.retryable


def test_an_absolute_path_and_symbolic_links(
    sshd: PrivateSshd, keyed: Path, one_file: Path
) -> None:
    """sftp-server lists a link as a link (lstat): linked files and folders are followed,
    a dangling link is skipped."""
    root = one_file.parent
    (root / "sub").mkdir()
    (root / "sub" / "b.txt").write_bytes(b"b")
    (root / "link.txt").symlink_to("a.txt")
    (root / "linked").symlink_to("sub")
    (root / "dangling.txt").symlink_to("gone.txt")
    with sources.from_url(f"{sshd.url}{root}?known_hosts={sshd.known_hosts()}") as source:
        refs = source.list_files()
        assert [ref.name for ref in refs] == ["a.txt", "link.txt", "linked/b.txt", "sub/b.txt"]
        assert [source.read(ref) for ref in refs][1:3] == [b"Latitude: 1\r\n", b"b"]


def test_a_file_changed_after_its_listing_is_read_as_it_is_now(
    sshd: PrivateSshd, keyed: Path, one_file: Path, folder: str
) -> None:
    with sources.from_url(url_in(sshd, folder)) as source:
        (ref,) = source.list_files()
        one_file.write_bytes(b"Latitude: 1\r\nLongitude: 2\r\n")
        assert source.read(ref) == b"Latitude: 1\r\nLongitude: 2\r\n"
        with source.open(ref) as file:
            assert file.read() == b"Latitude: 1\r\nLongitude: 2\r\n"
        assert ref.size == 13 and source.list_files()[0].size == 27


@pytest.mark.parametrize("path", ["/~/{folder}/in", "{home}/{folder}/in"])
def test_a_missing_folder_is_a_config_error(
    sshd: PrivateSshd, keyed: Path, folder: str, path: str
) -> None:
    url = f"{sshd.url}{path.format(folder=folder, home=sshd.home)}"
    source = sources.from_url(f"{url}?known_hosts={sshd.known_hosts()}")
    with source, pytest.raises(SourceConfigError, match="no such folder or file") as info:
        source.list_files()
    assert not info.value.retryable


def test_run_loads_once_then_skips(
    sshd: PrivateSshd, keyed: Path, folder: str, tmp_path: Path
) -> None:
    expected = served_sample(sshd.home / folder / "in")
    loads_once_then_skips(url_in(sshd, f"{folder}/in"), tmp_path, expected)
