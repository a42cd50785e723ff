"""``etl4all run`` end to end on an SFTP and an FTPS source (embedded, offline geocoder,
DuckDB): three generated sample files load once, and a rerun skips them; ``-v`` shows
etl4all's lines, not the SSH library's."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import duckdb
import polars as pl
import pytest
import trustme
from click.testing import CliRunner
from ftp_server import FtpTestServer
from sftp_server import SftpTestServer

from etl4all import sample
from etl4all.cli import cli
from etl4all.parsing import parse


def served_sample(folder: Path) -> set[tuple[float, float]]:
    """Three sample files in ``folder``; their distinct valid coordinates."""
    paths = sample.write_sample(folder, files=3, points=120, seed=7, duplicate_rate=0.1)
    points = pl.concat(parse.parse(path.read_bytes(), path.name).points for path in paths)
    return set(points.select("latitude", "longitude").unique().rows())


def loads_once_then_skips(url: str, work: Path, expected: set[tuple[float, float]]) -> None:
    """Run twice; the state and the warehouse by absolute paths (pyftpdlib's server changes
    the process's working folder)."""
    warehouse = work / "etl4all.duckdb"
    stores = ["--warehouse", f"duckdb:///{warehouse}", "--state", f"sqlite:///{work}/state.db"]
    first = CliRunner().invoke(cli, ["run", url, "-v", "--final-seconds", "0", *stores])
    assert first.exit_code == 0, first.output
    assert "3 processed, 0 skipped" in first.output
    assert " INFO asyncssh " not in first.output  # its connection chatter stays out of -v
    with duckdb.connect(str(warehouse), read_only=True) as db:
        rows = db.sql("SELECT latitude::DOUBLE, longitude::DOUBLE FROM address").fetchall()
    assert len(rows) == len(expected) and set(rows) == expected
    again = CliRunner().invoke(cli, ["run", url, "-q", *stores])
    assert again.exit_code == 0, again.output
    assert "0 processed, 3 skipped" in again.output


def test_run_on_sftp(tmp_path: Path, sftp_server: SftpTestServer) -> None:
    expected = served_sample(sftp_server.root / "in")
    url = f"{sftp_server.url}/in{sftp_server.known_hosts_option}"
    loads_once_then_skips(url, tmp_path, expected)


def test_check_and_estimate_read_an_sftp_source(
    tmp_path: Path, sftp_server: SftpTestServer
) -> None:
    expected = served_sample(sftp_server.root / "in")
    url = f"{sftp_server.url}/in{sftp_server.known_hosts_option}"
    state = ["--state", f"sqlite:///{tmp_path}/state.db"]
    checked = CliRunner().invoke(cli, ["check", url, *state])
    assert f"ok   source sftp://user:***@127.0.0.1:{sftp_server.port}/in" in checked.output
    assert "(3 files)" in checked.output and "password" not in checked.output
    estimated = CliRunner().invoke(cli, ["estimate", url, *state])
    assert estimated.exit_code == 0, estimated.output
    assert re.search(r"^files +3$", estimated.output, re.MULTILINE), estimated.output
    assert re.search(rf"distinct keys +{len(expected)} ", estimated.output), estimated.output


@pytest.fixture
def ftps_server(tmp_path: Path) -> Iterator[tuple[FtpTestServer, Path]]:
    ca = trustme.CA()
    ca_file, cert = tmp_path / "ca.pem", tmp_path / "server.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(cert))
    with FtpTestServer(tmp_path / "ftps-root", cert=cert) as server:
        yield server, ca_file


def test_run_on_ftps(tmp_path: Path, ftps_server: tuple[FtpTestServer, Path]) -> None:
    server, ca_file = ftps_server
    expected = served_sample(server.root / "in")
    loads_once_then_skips(f"{server.url}in?ca={ca_file}", tmp_path, expected)
