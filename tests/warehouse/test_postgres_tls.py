"""The PostgreSQL warehouse over TLS, against a private PostgreSQL 15 started with the test
CA's server certificate (:mod:`private_postgres`; the shared server has ``ssl=off`` and is
never reconfigured, and TLS is negotiated inside the PostgreSQL protocol, so no proxy can
stand in for it). The server rejects plain TCP: whatever succeeds went over TLS.

The right CA (``sslrootcert``, so ``verify-full``) loads and reads a batch, the whole-table
read through psycopg (connectorx takes no verify mode) equal to connectorx's over unchecked
TLS; the wrong CA, no CA (libpq's default file), a host name the certificate does not hold,
an expired certificate and a plain connection fail in one line naming the host, as a
configuration fault.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from contracts.warehouse import addresses
from polars.testing import assert_frame_equal
from private_postgres import PrivatePostgres
from private_tls import SERVER_HOST, TlsFiles

from etl4all.cli import cli
from etl4all.errors import ConfigError
from etl4all.warehouse.postgres import PostgresWarehouse

pytestmark = pytest.mark.postgres
DATABASE = "etl4all_tls"
SECRET = "s3cret"
"""A password in the refused URLs (trust ignores it): no message may show it."""


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return TlsFiles.make(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def server(files: TlsFiles) -> Iterator[PrivatePostgres]:
    with PrivatePostgres(files) as private:
        yield private


def test_a_batch_is_loaded_and_read_over_verified_tls(
    server: PrivatePostgres, files: TlsFiles
) -> None:
    url = server.url(DATABASE, f"sslrootcert={files.ca}")  # init() creates the database
    batch = addresses(5)
    with PostgresWarehouse(url=url) as warehouse:
        warehouse.init()
        assert warehouse.load(batch, batch.clear()).inserted == 5
        over_tls = warehouse.read()
    assert over_tls.height == 5
    assert_frame_equal(over_tls, PostgresWarehouse.read_url(url))
    unchecked = PostgresWarehouse.read_url(server.url(DATABASE, "sslmode=require"))  # connectorx
    assert_frame_equal(over_tls, unchecked)
    reader = PostgresWarehouse.reader(url)
    try:
        found = reader.run("SELECT count(*) AS n FROM address WHERE id > ?", [0])
        assert found["n"].to_list() == [5]
        ssl = reader.run("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", [])
        assert ssl["ssl"].to_list() == [True]
    finally:
        reader.close()


@pytest.mark.parametrize(
    ("query", "host", "said"),
    [
        ("sslrootcert={other}", SERVER_HOST, "certificate verify failed"),
        ("sslmode=verify-full", SERVER_HOST, "root certificate file"),
        ("sslrootcert={ca}", "localhost", 'does not match host name "localhost"'),
        ("sslmode=disable", SERVER_HOST, "no encryption"),
    ],
    ids=["other-ca", "no-ca", "host-name-mismatch", "plain"],
)
def test_a_refused_connection_is_a_configuration_fault_in_one_line(
    server: PrivatePostgres, files: TlsFiles, query: str, host: str, said: str
) -> None:
    query = query.format(other=files.other_ca, ca=files.ca)
    url = server.url(DATABASE, query, host=host).replace("postgres@", f"postgres:{SECRET}@")
    with pytest.raises(ConfigError) as caught:
        PostgresWarehouse(url=url)
    message = str(caught.value)
    assert said in message and f"{host}:{server.port}" in message, message
    assert "\n" not in message and SECRET not in message


def test_an_expired_certificate_is_a_configuration_fault(files: TlsFiles) -> None:
    with PrivatePostgres(files, expired=True) as expired, pytest.raises(ConfigError) as caught:
        PostgresWarehouse(url=expired.url(DATABASE, f"sslrootcert={files.ca}"))
    message = str(caught.value)
    assert "certificate verify failed" in message and f"{SERVER_HOST}:{expired.port}" in message
    assert "\n" not in message


def test_the_start_up_check_calls_it_a_configuration_fault(
    server: PrivatePostgres, files: TlsFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    url = server.url(DATABASE, f"sslrootcert={files.other_ca}")
    url = url.replace("postgres@", f"postgres:{SECRET}@")
    result = CliRunner().invoke(cli, ["check", "--warehouse", url])
    assert result.exit_code == 2, result.output
    (line,) = [line for line in result.output.splitlines() if line.startswith("FAIL")]
    assert line.startswith("FAIL warehouse") and "certificate verify failed" in line
    assert SECRET not in result.output
