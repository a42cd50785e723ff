"""Secrets never show, and percent-encoded passwords work.

Property tests: passwords made of every printable character are percent-encoded into the URL
of every backend (and given as the Google key); the backend is built and made to fail (a
closed port, or the real service refusing the login), and the commands are run with them.
Nothing a user can see may show the password: no piece of it (every 4 characters, or the
whole of a shorter one, raw or percent-encoded) may appear in the error chain, the log lines
(DEBUG, through the production filter), a repr, ``urls.redact`` output or a command's
output — unless the same text shows with another password too (then it is the message's own
text, such as a port number).

Live tests: a MariaDB user, a Redis ACL user, a RabbitMQ user and an FTP user whose
password holds ``/ @ : ? # %`` connect with that password percent-encoded in the URL; FTP
and SFTP servers refuse logins without showing the password.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import shutil
import socket
import string
import subprocess
import traceback
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import polars as pl
import pytest
import yarl
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from service_urls import SERVICE_URLS
from sources.ftp_server import FtpTestServer
from sources.sftp_server import SftpTestServer

from etl4all import broker, geocoders, logs, lookup, sample, sources, state, urls, warehouse
from etl4all.cli import cli
from etl4all.settings import Settings
from etl4all.warehouse.read import read_warehouse

OTHER = "~" * 8
"""The other password each output is compared with."""
CHARACTERS = st.one_of(
    st.sampled_from(string.printable.strip() + " "),
    st.characters(exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")),
)
PASSWORDS = st.text(CHARACTERS, min_size=1, max_size=16)
USER = "etl4all_nobody"
PROPERTY = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


CLOSED = f"127.0.0.1:{closed_port()}"


def encoded(password: str) -> str:
    return quote(password, safe="")


def pieces(secret: str) -> set[str]:
    """Every 4 characters of ``secret`` (none of a shorter one: its characters are everywhere;
    :func:`test_redact_hides_every_password` shows that even those never show)."""
    return {secret[i : i + 4] for i in range(len(secret) - 3)}


NOISE = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d[,.]\d+(\+00:00)?|0x[0-9a-f]{6,}|\d+\.\d+")
"""What differs from one run to the next (times, durations, addresses), blanked in outputs."""
_SHOWN_WITH_OTHER: dict[str, str] = {}


def assert_hidden(password: str, shown: Callable[[str], str], scenario: str) -> None:
    """No piece of ``password`` (raw or encoded) in ``shown(password)`` that does not show
    with the other password too (what ``scenario`` shows with it is computed once)."""
    said = NOISE.sub("#", shown(password))
    if scenario not in _SHOWN_WITH_OTHER:
        _SHOWN_WITH_OTHER[scenario] = NOISE.sub("#", shown(OTHER))
    other = _SHOWN_WITH_OTHER[scenario]
    forms = pieces(password) | pieces(encoded(password)) | pieces(yarl_encoded(password))
    leaked = sorted(piece for piece in forms if piece in said and piece not in other)
    assert not leaked, f"{leaked} of the password {password!r} show in:\n{said}"


def yarl_encoded(password: str) -> str:
    """``password`` as a query value, the way the Google client sends its key."""
    return yarl.URL("http://h/").with_query(key=password).raw_query_string[4:]


@contextlib.contextmanager
def log_lines() -> Iterator[io.StringIO]:
    """Every log line at DEBUG, in both formats (text, then JSON), through the filter the
    command line installs."""
    lines = io.StringIO()
    handlers = [logging.StreamHandler(lines) for _ in range(2)]
    handlers[0].setFormatter(logging.Formatter(logs.FORMAT))
    handlers[1].setFormatter(logs.JsonFormatter("test"))
    root = logging.getLogger()
    level = root.level
    for handler in handlers:
        handler.addFilter(logs.RedactingFilter())
        root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield lines
    finally:
        for handler in handlers:
            root.removeHandler(handler)
        root.setLevel(level)


def attempt(build: Callable[[], Any], use: Callable[[Any], Any]) -> str:
    """What building a backend and using it shows: its repr, the result or the whole error
    chain, and the log lines."""
    said: list[str] = []
    with log_lines() as lines:
        try:
            backend = build()
            try:
                said.append(repr(backend))
                said.append(repr(use(backend)))
            finally:
                backend.close()
        except Exception as exc:
            said.append("".join(traceback.format_exception(exc)))
    return "\n".join(said) + "\n" + lines.getvalue()


def url(scheme: str, password: str, where: str, path: str) -> str:
    return f"{scheme}://{USER}:{encoded(password)}@{where}/{path}"


KEY = "-30.04982864,-51.20150245"
BACKENDS: dict[str, tuple[str, str, Callable[[str], Any], Callable[[Any], Any]]] = {
    # scheme, path, build(url), use(backend)
    "mysql": ("mysql", "etl4all?connect_timeout=5", warehouse.from_url, lambda wh: wh.count()),
    "postgresql": (
        "postgresql",
        "etl4all?connect_timeout=5",
        warehouse.from_url,
        lambda wh: wh.count(),
    ),
    "redis": ("redis", "0", state.from_url, lambda store: store.done(["a"])),
    "amqp": (
        "amqp",
        "?reconnect_attempts=0&connection_attempts=1",
        lambda u: broker.from_url(u, prefix=f"etl4all-test-{uuid.uuid4().hex[:8]}"),
        lambda bus: bus.depth(bus.topology.points),
    ),
    "ftp": ("ftp", "in?timeout=5", sources.from_url, lambda source: source.list_files()),
    "ftps": ("ftps", "in?timeout=5", sources.from_url, lambda source: source.list_files()),
    "sftp": ("sftp", "in?timeout=5", sources.from_url, lambda source: source.list_files()),
    "mongodb": (
        "mongodb",
        "etl4all?serverSelectionTimeoutMS=100",
        lambda u: lookup.from_url(u, warehouse=None),  # type: ignore[arg-type]
        lambda keys: keys.present(pl.Series([KEY])),
    ),
}


@PROPERTY
@given(password=PASSWORDS)
@pytest.mark.parametrize(
    "scheme",
    ["mysql", "postgresql", "redis", "rediss", "amqp", "amqps", "ftp", "mongodb", "http", "https"],
)
def test_redact_hides_every_password(scheme: str, password: str) -> None:
    def shown(secret: str) -> str:
        link = url(scheme, secret, CLOSED, "db?x=1")
        key = f"https://maps.example/json?latlng=1,2&key={yarl_encoded(secret)}&language=pt"
        said = [urls.redact(link), urls.redact(f"error at {link}: refused"), urls.redact(key)]
        return "\n".join(said)

    assert shown(password) == shown(OTHER)  # nothing of it, however short
    urls.check_userinfo(url(scheme, password, CLOSED, "db"))  # percent-encoded: accepted


@PROPERTY
@given(password=PASSWORDS)
@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_a_backend_that_cannot_connect_shows_no_password(backend: str, password: str) -> None:
    scheme, path, build, use = BACKENDS[backend]
    assert_hidden(
        password,
        lambda secret: attempt(lambda: build(url(scheme, secret, CLOSED, path)), use),
        f"closed {backend}",
    )


@pytest.fixture
def sftp_server(tmp_path: Path) -> Iterator[SftpTestServer]:
    """An SFTP server, whose host key the URL's ``known_hosts`` trusts."""
    with SftpTestServer(tmp_path / "sftp", tmp_path / "sftp-keys") as server:
        (server.root / "in").mkdir()
        yield server


LIVE = {
    "mysql": SERVICE_URLS["mysql"],
    "postgresql": SERVICE_URLS["postgres"],
    "redis": SERVICE_URLS["redis"],
    "amqp": SERVICE_URLS["rabbitmq"],
}


@pytest.fixture
def ftp_server(tmp_path: Path) -> Iterator[FtpTestServer]:
    """An FTP server (one at a time: pyftpdlib's servers share one I/O loop)."""
    with FtpTestServer(tmp_path / "ftp") as server:
        (server.root / "in").mkdir()
        yield server


@pytest.mark.mysql
@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.rabbitmq
@PROPERTY
@given(password=PASSWORDS)
@pytest.mark.parametrize("backend", ["mysql", "postgresql", "redis", "amqp", "ftp", "sftp"])
def test_a_refused_login_shows_no_password(
    backend: str, password: str, request: pytest.FixtureRequest
) -> None:
    scheme, path, build, use = BACKENDS[backend]
    if backend == "ftp":
        live = f"127.0.0.1:{request.getfixturevalue('ftp_server').port}"
    elif backend == "sftp":
        server = request.getfixturevalue("sftp_server")
        live, path = f"127.0.0.1:{server.port}", f"in{server.known_hosts_option}"
    else:
        live = _host_port(LIVE[backend])

    def shown(secret: str) -> str:
        return attempt(lambda: build(url(scheme, secret, live, path)), use)

    assert_hidden(password, shown, f"login {backend} {live}")


def _host_port(service_url: str) -> str:
    parts = yarl.URL(service_url)
    return f"{parts.host}:{parts.port}"


@PROPERTY
@given(password=PASSWORDS)
def test_the_google_key_shows_nowhere(password: str) -> None:
    def shown(secret: str) -> str:
        def build() -> Any:
            return geocoders.from_name(
                "google", key=secret, url=f"http://{CLOSED}", max_attempts=1, qps=1000.0
            )

        def use(geocoder: Any) -> Any:
            answer = geocoder.reverse(pl.DataFrame({"latitude": [-30.0], "longitude": [-51.0]}))
            return answer.failed.rows()

        every_url = Settings(
            google_key=secret,
            warehouse_url=url("mysql", secret, CLOSED, "etl4all"),
            state_url=url("redis", secret, CLOSED, "0"),
            broker_url=url("amqp", secret, CLOSED, ""),
            source_url=url("ftp", secret, CLOSED, "in"),
            lookup_url=url("mongodb", secret, CLOSED, "etl4all"),
            google_url=f"http://{CLOSED}/json?key={yarl_encoded(secret)}",
        )
        return attempt(build, use) + repr(every_url)

    assert_hidden(password, shown, "google")


@settings(PROPERTY, max_examples=10)  # each example runs eleven commands
@given(password=PASSWORDS)
def test_commands_show_no_password(password: str, tmp_path: Path) -> None:
    work = tmp_path / "work"  # the same paths for every password: only it differs

    def shown(secret: str) -> str:
        shutil.rmtree(work, ignore_errors=True)
        sample.write_sample(work / "in", files=1, points=3, seed=1)
        local = ["--state", f"sqlite:///{work}/s.db", "--warehouse", f"duckdb:///{work}/w.db"]
        bad = {
            "--warehouse": url("mysql", secret, CLOSED, "etl4all"),
            "--state": url("redis", secret, CLOSED, "0"),
            "--broker": url("amqp", secret, CLOSED, "?reconnect_attempts=0"),
        }
        bad["--lookup"] = url("mongodb", secret, CLOSED, "etl4all?serverSelectionTimeoutMS=100")
        said = [
            CliRunner().invoke(cli, [command, *local, option, value]).output
            for option, value in bad.items()
            for command in ("status", "check")
            if (command, option) != ("status", "--lookup")
        ]
        source = url("ftp", secret, CLOSED, "in?timeout=5")
        said.append(CliRunner().invoke(cli, ["check", source, *local]).output)
        google = [
            "--geocoder",
            "google",
            "--google-key",
            secret,
            "--google-url",
            f"http://{CLOSED}",
            "--max-attempts",
            "1",
        ]
        run = ["run", str(work / "in"), *local, *google, "-vv"]
        said.append(CliRunner().invoke(cli, run).output)
        said.append(CliRunner().invoke(cli, ["check", *local, *google, "-vv"]).output)
        with warehouse.from_url(f"duckdb:///{work}/w.db") as wh:  # what the rejects keep
            said.append(repr(wh.select("reject", {}, after_id=0, limit=100).rows()))
        return "\n".join(said)

    assert_hidden(password, shown, f"commands {tmp_path}")


# -- percent-encoded passwords work ---------------------------------------------------------

HARD = "p/w@x:y?z#1%2F é&=+"
"""A password with every URL delimiter; it works only percent-encoded."""


@pytest.mark.mysql
def test_a_percent_encoded_password_logs_in_to_mariadb(mysql_url: str, unique: str) -> None:
    import pymysql

    root = yarl.URL(SERVICE_URLS["mysql"])
    admin = pymysql.connect(
        host=root.host, port=root.port, user=root.user or "root", password=root.password or ""
    )
    name, database = f"etl4all_pw_{unique}", mysql_url.rsplit("/", 1)[1]
    try:
        with admin.cursor() as cur:
            cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (name, HARD))
            cur.execute(f"GRANT ALL ON `{database}`.* TO %s@'%%'", (name,))
        link = f"mysql://{name}:{encoded(HARD)}@{root.host}:{root.port}/{database}"
        with warehouse.from_url(link) as wh:
            wh.init()
            assert wh.count() == 0
        assert read_warehouse(link).height == 0  # connectorx logs in with it too
    finally:
        with admin.cursor() as cur:
            cur.execute("DROP USER IF EXISTS %s@'%%'", (name,))
        admin.close()


@pytest.mark.redis
def test_a_percent_encoded_password_logs_in_to_redis(unique: str) -> None:
    import redis

    admin = redis.Redis.from_url(SERVICE_URLS["redis"])
    name, prefix = f"etl4all-pw-{unique}", f"etl4all-test-{unique}:"
    admin.acl_setuser(
        name, enabled=True, passwords=[f"+{HARD}"], keys=[f"{prefix}*"], commands=["+@all"]
    )
    try:
        where, db = _host_port(SERVICE_URLS["redis"]), yarl.URL(SERVICE_URLS["redis"]).path
        with state.from_url(f"redis://{name}:{encoded(HARD)}@{where}{db}?prefix={prefix}") as store:
            token = store.claim("a", 5)
            assert token is not None and store.claim("a", 5) is None
            store.release("a", token)
    finally:
        admin.acl_deluser(name)
        admin.close()


@pytest.mark.rabbitmq
def test_a_percent_encoded_password_logs_in_to_rabbitmq(unique: str) -> None:
    name = f"etl4all-pw-{unique}"
    rabbitmqctl = ["rabbitmqctl", "--quiet"]
    subprocess.run([*rabbitmqctl, "add_user", name, HARD], check=True, capture_output=True)
    try:
        subprocess.run(
            [*rabbitmqctl, "set_permissions", "-p", "/", name, ".*", ".*", ".*"],
            check=True,
            capture_output=True,
        )
        where = _host_port(SERVICE_URLS["rabbitmq"])
        link = f"amqp://{name}:{encoded(HARD)}@{where}/"
        with broker.from_url(link, prefix=f"etl4all-test-{unique}") as bus:
            try:
                bus.publish(bus.topology.points, b"x", {"batch_id": "b"})
                assert bus.depth(bus.topology.points) == 1
            finally:
                bus.delete()
    finally:
        subprocess.run([*rabbitmqctl, "delete_user", name], check=True, capture_output=True)


def test_a_percent_encoded_password_logs_in_to_ftp(tmp_path: Path) -> None:
    with FtpTestServer(tmp_path, user="etl4all", password=HARD) as server:
        (tmp_path / "a.txt").write_text("x")
        link = f"ftp://etl4all:{encoded(HARD)}@127.0.0.1:{server.port}/"
        with sources.from_url(link) as source:
            assert [ref.name for ref in source.list_files()] == ["a.txt"]


def test_a_traceback_in_the_log_hides_what_a_driver_said() -> None:
    with log_lines() as lines:
        try:
            raise OSError("cannot reach mysql://etl:Pa55w0rd@db/etl4all")
        except OSError:
            logging.getLogger("etl4all.test").exception("loading failed")
    assert "Pa55w0rd" not in lines.getvalue() and "mysql://etl:***@db" in lines.getvalue()


def extra_fields_said(password: str) -> str:
    """The log lines of a record whose ``extra=`` fields hold a URL with ``password``."""
    link = f"ftp://etl:{encoded(password)}@host/in"
    with log_lines() as lines:
        logging.getLogger("etl4all.test").info("read", extra={"file": link, "batch": link})
    return lines.getvalue()


@PROPERTY
@given(password=PASSWORDS)
def test_log_fields_given_with_extra_hide_the_password(password: str) -> None:
    assert '"file": "ftp://etl:***@host/in"' in extra_fields_said(password)
    assert_hidden(password, extra_fields_said, "extra fields")
