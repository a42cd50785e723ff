"""The MySQL warehouse over TLS, against a private MariaDB started with the test CA's server
certificate (:mod:`private_mariadb`; TLS is negotiated inside the MySQL protocol, so a proxy
in front of the shared server cannot stand in for it).

The right CA loads and reads a batch (the whole-table read through PyMySQL: connectorx cannot
name a CA file), the same table connectorx reads without TLS; the wrong CA, no CA (the
system's store) and a host name the certificate does not hold fail in one line naming the
host, as a configuration fault, and so does asking TLS of a server without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from contracts.warehouse import addresses
from polars.testing import assert_frame_equal
from private_mariadb import PrivateMariaDb
from private_tls import TlsFiles

from etl4all.errors import ConfigError
from etl4all.operations import check
from etl4all.settings import Settings
from etl4all.warehouse.mysql import MySqlWarehouse
from etl4all.warehouse.mysql_connection import Dsn, open_session

pytestmark = pytest.mark.mysql
DATABASE = "etl4all_tls"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return TlsFiles.make(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def server(files: TlsFiles, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateMariaDb]:
    with PrivateMariaDb(tmp_path_factory.mktemp("mariadb"), tls=files) as private:
        yield private


def test_a_batch_is_loaded_and_read_over_verified_tls(
    server: PrivateMariaDb, files: TlsFiles
) -> None:
    url = server.url(DATABASE, f"ssl_ca={files.ca}")
    batch = addresses(5)
    with MySqlWarehouse(url=url) as warehouse:
        warehouse.init()
        assert warehouse.load(batch, batch.clear()).inserted == 5
        over_tls = warehouse.read()
    assert over_tls.height == 5
    assert_frame_equal(over_tls, MySqlWarehouse.read_url(server.url(DATABASE)))  # connectorx
    session = open_session(Dsn.parse(url), lambda cur: None)
    with session, session.cursor() as cur:
        cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        assert cur.fetchone()[1]  # the session is encrypted


@pytest.mark.parametrize(
    ("query", "host", "said"),
    [
        ("ssl_ca={other}", "127.0.0.1", "127.0.0.1:{port} refused: unknown CA or self-signed"),
        ("ssl=true", "127.0.0.1", "127.0.0.1:{port} refused: unknown CA"),
        ("ssl_ca={ca}", "localhost", "localhost:{port} refused: host name mismatch"),
    ],
)
def test_a_refused_certificate_is_a_configuration_fault_in_one_line(
    server: PrivateMariaDb, files: TlsFiles, query: str, host: str, said: str
) -> None:
    query = query.format(other=files.other_ca, ca=files.ca)
    url = server.url(DATABASE, query).replace("127.0.0.1", host)
    with pytest.raises(ConfigError) as caught:
        MySqlWarehouse(url=url)
    message = str(caught.value)
    assert said.format(port=server.port) in message and "\n" not in message


def test_the_start_up_check_calls_it_a_configuration_fault(
    server: PrivateMariaDb, files: TlsFiles, tmp_path: Path
) -> None:
    url = server.url(DATABASE, f"ssl_ca={files.other_ca}")
    settings = Settings(source_url=str(tmp_path), warehouse_url=url)
    (result,) = check.run_checks(settings, ["warehouse"])
    assert result.config_fault and "unknown CA" in result.line()


def test_tls_asked_of_a_server_without_it_is_a_configuration_fault(tmp_path: Path) -> None:
    refused = pytest.raises(ConfigError, match="enable TLS on the server")
    with PrivateMariaDb(tmp_path, tls=None) as plain, refused:
        MySqlWarehouse(url=plain.url(DATABASE, "ssl=true"))


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ("ssl=maybe", "ssl must be true or false"),
        ("ssl_verify=perhaps", "ssl_verify must be true or false"),
        ("ssl=false&ssl_ca=/ca.pem", "ssl=false and ssl_ca contradict each other"),
    ],
)
def test_bad_tls_options_are_refused(query: str, said: str) -> None:
    with pytest.raises(ConfigError, match=said) as caught:
        Dsn.parse(f"mysql://etl:s3cret@h/db?{query}")
    assert "s3cret" not in str(caught.value)


def test_no_tls_option_leaves_the_driver_default() -> None:
    assert Dsn.parse("mysql://h/db").tls is None
