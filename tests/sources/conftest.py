"""Fixtures of the source tests: a real FTP server on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from ftp_server import FtpTestServer


@pytest.fixture
def ftp_server(tmp_path: Path) -> Iterator[FtpTestServer]:
    """A pyftpdlib server on 127.0.0.1 serving a fresh folder (``.url``, ``.root``)."""
    with FtpTestServer(tmp_path / "ftp-root") as server:
        yield server
