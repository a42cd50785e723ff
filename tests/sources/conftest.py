"""Fixtures of the source tests: real FTP and SFTP servers on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from ftp_server import FtpTestServer
from sftp_server import SftpTestServer


@pytest.fixture
def ftp_server(tmp_path: Path) -> Iterator[FtpTestServer]:
    """A pyftpdlib server on 127.0.0.1 serving a fresh folder (``.url``, ``.root``)."""
    with FtpTestServer(tmp_path / "ftp-root") as server:
        yield server


@pytest.fixture
def sftp_server(tmp_path: Path) -> Iterator[SftpTestServer]:
    """An asyncssh SFTP server on 127.0.0.1 serving a fresh folder (``.url``, ``.root``)."""
    with SftpTestServer(tmp_path / "sftp-root", tmp_path / "sftp-keys") as server:
        yield server
