"""URL helpers: redaction, scheme tables, file paths."""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest

from etl4all import broker, geocoders, lookup, sources, state, urls, warehouse
from etl4all.errors import ConfigError, UnknownSchemeError


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("ftp://username:mypass@host:21/dir", "mypass"),
        ("amqp://guest:s3cr3t@localhost:5672/", "s3cr3t"),
        ("GET https://maps.example/json?latlng=1,2&key=AIzaSECRET&language=pt", "AIzaSECRET"),
        ("error at mysql://root:pw@db/etl4all: refused", "pw@"),
    ],
)
def test_redact_hides_secrets(text: str, hidden: str) -> None:
    clean = urls.redact(text)
    assert hidden not in clean and "***" in clean


def test_redact_keeps_urls_without_secrets() -> None:
    assert urls.redact("redis://localhost:6379/0") == "redis://localhost:6379/0"


def test_unknown_scheme_suggests_the_closest() -> None:
    with pytest.raises(UnknownSchemeError, match="Did you mean 'mysql'"):
        urls.load_class("warehouse", "mysq", warehouse.SCHEMES)


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("duckdb:///data/x.duckdb", "data/x.duckdb"),
        ("duckdb:////data/x.duckdb", "/data/x.duckdb"),
        ("duckdb:///etl4all.duckdb", "etl4all.duckdb"),
        ("sqlite:///.etl4all/state.db", ".etl4all/state.db"),
        ("sqlite:////abs/state.db", "/abs/state.db"),
        ("sqlite:///./tmp/state.db", "./tmp/state.db"),
    ],
)
def test_file_path(url: str, path: str) -> None:
    assert urls.file_path(url) == path


def test_an_existing_root_folder_does_not_make_three_slashes_absolute() -> None:
    assert os.path.isdir("/tmp")  # a folder at the root of that name exists
    assert urls.file_path("duckdb:///tmp/x.duckdb") == "tmp/x.duckdb"
    assert urls.file_path("sqlite:///tmp/state.db") == "tmp/state.db"
    assert urls.file_path("duckdb:////tmp/x.duckdb") == "/tmp/x.duckdb"


def test_a_three_slash_warehouse_opens_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with warehouse.from_url("duckdb:///tmp/x.duckdb"):
        pass
    assert (tmp_path / "tmp" / "x.duckdb").is_file()


def test_parse_gives_the_parts_decoded_and_hides_the_password() -> None:
    url = urls.parse("MySQL://etl:Pa%2Fss@DB.example:3307/etl4all?read_timeout=5&ssl_ca=")
    assert (url.scheme, url.user, url.password) == ("mysql", "etl", "Pa/ss")
    assert (url.host, url.port, url.database) == ("db.example", 3307, "etl4all")
    assert url.query == (("read_timeout", "5"), ("ssl_ca", ""))
    assert "Pa" not in url.shown and "Pa" not in repr(url)
    assert url.with_query([("a", "1")]) == "mysql://etl:Pa%2Fss@DB.example:3307/etl4all?a=1"


@pytest.mark.parametrize("path", ["data/in", "/srv/in", "a%20b", "C:\\in"])
def test_a_bare_path_is_a_file_url_of_that_path(path: str) -> None:
    url = urls.parse(path)
    assert (url.scheme, url.path, url.host, url.netloc) == ("file", path, None, "")


def test_a_bad_port_is_a_config_error_without_the_password() -> None:
    with pytest.raises(ConfigError, match="bad port") as caught:
        _ = urls.parse("ftp://u:S3cret@h:99999/in").port
    assert "S3cret" not in str(caught.value)


def test_file_path_refuses_a_host() -> None:
    with pytest.raises(ConfigError, match="three slashes"):
        urls.file_path("duckdb://host/x.duckdb")


@pytest.mark.parametrize(
    "table",
    [
        sources.SCHEMES,
        geocoders.NAMES,
        state.SCHEMES,
        lookup.SCHEMES,
        warehouse.SCHEMES,
        broker.SCHEMES,
    ],
)
def test_every_table_entry_imports(table: dict[str, tuple[str, str]]) -> None:
    for key in table:
        assert isinstance(urls.load_class("role", key, table), type)


@pytest.mark.parametrize(
    "url",
    [
        "mysql://etl:Pa/ss@db:3306/etl4all",
        "ftp://u:p#1@h/in",
        "redis://:a?b@h:6379/0",
        "amqp://u:R&J[+fiE]@h:5672/",
        "mysql://etl:ab[cdef@db/etl4all",
    ],
)
def test_unencoded_password_is_refused_with_the_fix_and_hidden(url: str) -> None:
    with pytest.raises(ConfigError, match="percent-encode") as caught:
        urls.check_userinfo(url)
    password = url.split("//")[1].split(":")[1].split("@")[0]
    everything = "".join(traceback.format_exception(caught.value))  # the chain too
    assert password not in everything and password[-4:] not in everything
    assert "***" in urls.redact(url)


@pytest.mark.parametrize(
    "url",
    ["mysql://etl:Pa%2Fss@db/etl4all", "ftp://h:21/dir@2024", "file:///a@b", "redis://h:6379/0"],
)
def test_encoded_passwords_ports_and_paths_pass(url: str) -> None:
    urls.check_userinfo(url)


def test_a_percent_encoded_password_reaches_the_driver_decoded() -> None:
    from etl4all.warehouse.mysql_connection import Dsn

    dsn = Dsn.parse("mysql://etl:Pa%2Fss%40x@db:3306/etl4all")
    assert dsn.password == "Pa/ss@x" and "Pa" not in repr(dsn)


@pytest.mark.parametrize(
    ("url", "form"),
    [
        ("mysql:/etl4all", "mysql://host/"),
        ("redis:/0", "redis://host/"),
        ("amqp:/x", "amqp://host/"),
        ("mongodb:db", "mongodb://host/"),
        ("duckdb:/x.duckdb", "duckdb:///path"),
    ],
)
def test_a_scheme_without_two_slashes_is_refused_with_its_form(url: str, form: str) -> None:
    with pytest.raises(ConfigError, match=form):
        urls.check_form(url)


@pytest.mark.parametrize(
    "build",
    [
        lambda: warehouse.from_url("mysql:/x"),
        lambda: state.from_url("redis:/x"),
        lambda: state.from_url("sqlite:x.db"),
        lambda: broker.from_url("amqp:/x", prefix="x", max_deliveries=3),
        lambda: lookup.from_url("mongodb:/x", warehouse=None),  # type: ignore[arg-type]
    ],
    ids=["mysql", "redis", "sqlite", "amqp", "mongodb"],
)
def test_every_factory_refuses_a_one_slash_url(build: Callable[[], object]) -> None:
    with pytest.raises(ConfigError, match="not a valid URL"):
        build()


def test_a_one_slash_url_hides_its_password() -> None:
    with pytest.raises(ConfigError) as info:
        urls.check_form("mysql:/root:S3cret@db/etl4all")
    assert "S3cret" not in str(info.value)


@pytest.mark.parametrize(
    "url", ["/srv/in", "data/in", "file:/srv/in", "file:///srv/in", "memory://"]
)
def test_paths_and_file_urls_pass_the_form_check(url: str) -> None:
    urls.check_form(url)
