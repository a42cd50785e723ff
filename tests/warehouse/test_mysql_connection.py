"""The MySQL warehouse's URL parsing and error mapping: unit tests, no server needed."""

from __future__ import annotations

from urllib.parse import urlsplit

import pymysql
import pytest
from click.testing import CliRunner
from service_urls import SERVICE_URLS

from etl4all.cli import cli
from etl4all.errors import ConfigError, DataError, WarehouseError
from etl4all.warehouse import mysql_connection
from etl4all.warehouse.mysql import MySqlWarehouse
from etl4all.warehouse.mysql_connection import Dsn

DSN = Dsn.parse("mysql://root:s3cret@h/db")


def test_dsn_parses_the_url_and_hides_the_password() -> None:
    dsn = Dsn.parse("mysql://u%40x:p%2Fss@db.example:3307/etl?connect_timeout=3&ssl_ca=/ca.pem")
    assert (dsn.user, dsn.password, dsn.host, dsn.port) == ("u@x", "p/ss", "db.example", 3307)
    assert (dsn.database, dsn.connect_timeout, dsn.read_timeout) == ("etl", 3.0, 300.0)
    assert dsn.tls is not None and dsn.tls.ca == "/ca.pem"
    assert "p/ss" not in repr(dsn) and "p%2Fss" not in dsn.url


@pytest.mark.parametrize(
    "bad",
    [
        "mysql://root@127.0.0.1:3306/",
        "mysql://root@127.0.0.1:3306/bad-name",
        "mysql://root@127.0.0.1:3306/db?bogus=1",
        "mysql://root@127.0.0.1:port/db",
        "mysql://root@127.0.0.1:3306/db?connect_timeout=soon",
        "mysql://root@127.0.0.1:3306/db?read_timeout=0",
        "mysql://root@127.0.0.1:3306/db?write_timeout=-1",
    ],
)
def test_bad_url_is_a_config_error(bad: str) -> None:
    with pytest.raises(ConfigError):
        MySqlWarehouse(url=bad)


def test_unreachable_server_is_retryable_and_hides_the_password() -> None:
    with pytest.raises(WarehouseError) as info:
        MySqlWarehouse(url="mysql://root:s3cret@127.0.0.1:1/db?connect_timeout=2")
    assert info.value.retryable
    assert "s3cret" not in str(info.value)


def _error(cls: type[pymysql.err.MySQLError], code: int) -> pymysql.err.MySQLError:
    return cls(code, "message")


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (_error(pymysql.err.OperationalError, 2003), WarehouseError),
        (_error(pymysql.err.OperationalError, 2006), WarehouseError),
        (_error(pymysql.err.OperationalError, 2013), WarehouseError),
        (_error(pymysql.err.OperationalError, 1205), WarehouseError),
        (_error(pymysql.err.OperationalError, 1213), WarehouseError),
        (_error(pymysql.err.IntegrityError, 1062), WarehouseError),
        (_error(pymysql.err.InterfaceError, 0), WarehouseError),
        (_error(pymysql.err.DataError, 1366), DataError),
        (_error(pymysql.err.DataError, 1406), DataError),
        (_error(pymysql.err.DataError, 1264), DataError),
        (_error(pymysql.err.OperationalError, 3948), ConfigError),
        (_error(pymysql.err.OperationalError, 1148), ConfigError),
        (_error(pymysql.err.OperationalError, 1045), ConfigError),
        (_error(pymysql.err.ProgrammingError, 1146), ConfigError),
    ],
)
def test_driver_errors_are_mapped(error: Exception, expected: type[Exception]) -> None:
    with (
        pytest.raises(expected) as info,
        mysql_connection.errors("loading", DSN),
    ):
        raise error
    assert info.value.__cause__ is error
    if isinstance(info.value, ConfigError) and error.args[0] in (3948, 1148):
        assert "local_infile" in str(info.value)
        assert "SET GLOBAL local_infile=1" in str(info.value)


def test_messages_name_the_error_not_the_drivers_tuple() -> None:
    with (
        pytest.raises(ConfigError) as info,
        mysql_connection.errors("counting rows", DSN),
    ):
        raise pymysql.err.OperationalError(1046, "No database selected")
    assert "MySQL error 1046: No database selected" in str(info.value)
    assert "(1046," not in str(info.value)


@pytest.mark.parametrize("url", ["mysql:/etl4all", "mysql:etl4all", "mysql:///etl4all"])
def test_a_url_without_a_host_is_refused_not_taken_as_localhost(url: str) -> None:
    with pytest.raises(ConfigError, match=r"mysql://"):
        mysql_connection.Dsn.parse(url)


def test_programming_errors_are_bugs_not_mapped() -> None:
    with pytest.raises(pymysql.err.ProgrammingError), mysql_connection.errors("x", DSN):
        raise pymysql.err.ProgrammingError(1064, "syntax")


@pytest.mark.parametrize(
    ("code", "connecting", "said"),
    [
        (2003, True, "h:3306 did not accept the connection within 10 s (connect_timeout)"),
        (2013, True, "h:3306 accepted the connection but did not complete the handshake within "),
        (2013, False, "h:3306 did not answer within 300 s (read_timeout)"),
        (2006, False, "h:3306 took no data within 300 s (write_timeout)"),
    ],
)
def test_a_timeout_names_the_host_the_port_and_what_timed_out(
    code: int, connecting: bool, said: str
) -> None:
    with (
        pytest.raises(WarehouseError) as info,
        mysql_connection.errors("loading", DSN, connecting=connecting),
    ):
        try:
            raise TimeoutError("timed out")
        except TimeoutError as exc:  # PyMySQL wraps the socket's timeout the same way
            raise pymysql.err.OperationalError(code, f"Lost connection ({exc})") from None
    assert said in str(info.value) and "\n" not in str(info.value)
    assert str(info.value).startswith("loading on mysql://root:***@h/db failed: ")


def test_defaults_bound_the_handshake_and_each_query_wait() -> None:
    dsn = Dsn.parse("mysql://root@h/db?write_timeout=60")
    assert (dsn.connect_timeout, dsn.read_timeout, dsn.write_timeout) == (10.0, 300.0, 60.0)


@pytest.mark.parametrize(
    ("code", "hint"),
    [
        (1045, "check the user and password in the URL"),
        (1044, "check the user's grants"),
        (1142, "check the user's grants"),
        (1049, "create them with `etl4all init-db`"),
        (1146, "create them with `etl4all init-db`"),
    ],
)
def test_each_setup_fault_says_its_own_fix(code: int, hint: str) -> None:
    """Issue 17, item 11: a wrong password advised running `init-db`."""
    with (
        pytest.raises(ConfigError) as info,
        mysql_connection.errors("connecting", DSN),
    ):
        raise _error(pymysql.err.OperationalError, code)
    assert hint in str(info.value)
    assert (code == 1045) == ("init-db" not in str(info.value) and "grants" not in str(info.value))


@pytest.mark.mysql
def test_init_db_with_a_wrong_password_says_to_check_it() -> None:
    parts = urlsplit(SERVICE_URLS["mysql"])
    url = f"mysql://{parts.username or 'root'}:Wr0ng-pw@{parts.hostname}:{parts.port or 3306}/x"
    result = CliRunner().invoke(cli, ["init-db", "--warehouse", url])
    assert result.exit_code == 2, result.output
    assert "check the user and password in the URL" in result.output
    assert "run `etl4all init-db`" not in result.output and "Wr0ng-pw" not in result.output
