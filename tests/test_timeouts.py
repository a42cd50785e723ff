"""Servers that never answer are outages: every backend gives up within its timeouts.

Each backend meets a loopback listener (:mod:`silent_server`) that accepts connections and
never sends a byte, or that never even accepts them, configured with timeouts of a second or
less. It must fail with its role's retryable error, in one line that names the host, the port
and what timed out (:func:`etl4all.timeouts.timed_out`). Every call runs under
:func:`silent_server.bounded`, so a timeout that does not apply fails the test instead of
hanging the suite; nothing asserts on the wall clock. No service is needed.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from silent_server import SilentServer, bounded
from sources.ftp_server import FtpTestServer
from tcp_proxy import TcpProxy

from etl4all.broker import amqp_io
from etl4all.broker.amqp import AmqpBroker
from etl4all.errors import (
    BrokerError,
    Etl4allError,
    GeocodeTimeoutError,
    SourceError,
    StoreError,
    WarehouseError,
)
from etl4all.geocoders.base import KEYS_SCHEMA
from etl4all.geocoders.google import GoogleGeocoder
from etl4all.sources.ftp import FtpSource
from etl4all.state.redis import RedisState
from etl4all.timeouts import timed_out
from etl4all.warehouse.mysql import MySqlWarehouse
from etl4all.warehouse.postgres import PostgresWarehouse

BOUND = 20.0
"""Seconds any call below may take at most: its timeouts (1 s or less, a few attempts) plus
ample slack for a loaded machine."""
SECRET = "s3cret-pw"


def one_line(error: Etl4allError, server: SilentServer, what: str, option: str) -> str:
    """The error's message, checked: retryable, one line, host:port, what timed out."""
    text = str(error)
    assert type(error).retryable, type(error)
    assert "\n" not in text and SECRET not in text
    assert f"127.0.0.1:{server.port} {what} within " in text, text
    assert f"({option})" in text, text
    return text


def test_the_wording_names_the_host_the_port_the_time_and_the_option() -> None:
    said = timed_out("db.example", 3306, "sent nothing", 10.0, "connect_timeout")
    assert said == "db.example:3306 sent nothing within 10 s (connect_timeout)"
    assert timed_out("::1", 21, "x", 0.25, "timeout") == "[::1]:21 x within 0.2 s (timeout)"
    assert timed_out("h", None, "x", None, "o") == "h x (o)"


@pytest.mark.parametrize(
    ("accept", "what"),
    [
        (True, "accepted the connection but did not complete the handshake"),
        (False, "did not accept the connection"),
    ],
)
def test_mysql(accept: bool, what: str) -> None:
    with SilentServer(accept=accept) as server:
        url = server.url("mysql", "/etl4all?connect_timeout=1", f"root:{SECRET}")
        with pytest.raises(WarehouseError) as info:
            bounded(BOUND, lambda: MySqlWarehouse(url=url))
    text = one_line(info.value, server, what, "connect_timeout")
    assert text.startswith(f"connecting on mysql://root:***@127.0.0.1:{server.port}/etl4all")


@pytest.mark.parametrize("accept", [True, False])
def test_postgresql(accept: bool) -> None:
    with SilentServer(accept=accept) as server:
        url = server.url("postgresql", "/etl4all?connect_timeout=1", f"etl:{SECRET}")
        with pytest.raises(WarehouseError) as info:
            bounded(BOUND, lambda: PostgresWarehouse(url=url))
    text = one_line(info.value, server, "did not complete the connection", "connect_timeout")
    assert text.startswith(f"connecting on postgresql://etl:***@127.0.0.1:{server.port}/etl4all")


@pytest.mark.parametrize(
    ("accept", "query", "what", "option"),
    [
        (True, "socket_timeout=1", "did not answer", "socket_timeout"),
        (
            False,
            "socket_connect_timeout=0.5",
            "did not accept the connection",
            "socket_connect_timeout",
        ),
    ],
)
def test_redis(accept: bool, query: str, what: str, option: str) -> None:
    with SilentServer(accept=accept) as server:
        store = RedisState(url=server.url("redis", f"/0?{query}", f":{SECRET}"))
        with pytest.raises(StoreError) as info, store:
            bounded(BOUND, store.done_count)
    one_line(info.value, server, what, option)


@pytest.fixture
def thread_errors(monkeypatch: pytest.MonkeyPatch) -> list[threading.ExceptHookArgs]:
    """What escaped a thread (a traceback on stderr, the issue's first symptom)."""
    caught: list[threading.ExceptHookArgs] = []
    monkeypatch.setattr(threading, "excepthook", caught.append)
    return caught


@pytest.mark.parametrize(
    ("accept", "what", "option"),
    [
        (True, "did not complete the connection and the AMQP handshake", "stack_timeout"),
        (False, "did not accept the TCP connection", "socket_timeout"),
    ],
)
def test_rabbitmq_within_the_connect_timeout(
    accept: bool, what: str, option: str, thread_errors: list[Any]
) -> None:
    with SilentServer(accept=accept) as server:
        url = server.url("amqp", "/", f"guest:{SECRET}")
        with pytest.raises(BrokerError) as info:  # 8 reconnections allowed, 1 s to use them
            bounded(BOUND, lambda: AmqpBroker(url=url, connect_timeout=1.0))
    text = one_line(info.value, server, what, option)
    assert f"within 1 s ({option})" in text  # each attempt: what is left of connect_timeout
    assert text.startswith(f"RabbitMQ amqp://guest:***@127.0.0.1:{server.port}/: connecting")
    assert not thread_errors


def test_rabbitmq_checks_make_one_attempt_and_keep_the_url(thread_errors: list[Any]) -> None:
    with SilentServer() as server:
        url = server.url("amqp", "/?stack_timeout=0.5", "guest:guest")
        with pytest.raises(BrokerError) as info:
            bounded(BOUND, lambda: AmqpBroker(url=url, connect_timeout=60, reconnect_attempts=0))
    what = "did not complete the connection and the AMQP handshake"
    text = one_line(info.value, server, what, "stack_timeout")
    assert "reconnect_attempts" not in text and "?stack_timeout=0.5:" in text
    assert server.accepted == 1 and not thread_errors


def test_rabbitmq_attempts_are_capped_by_what_is_left_of_the_connect_timeout() -> None:
    params, _ = amqp_io.parameters("amqp://guest:guest@h/?socket_timeout=3")
    assert (params.socket_timeout, params.stack_timeout, params.heartbeat) == (3, 15, 30)
    capped = amqp_io.bounded(params, 2.0)
    assert (capped.socket_timeout, capped.stack_timeout) == (2.0, 2.0)
    assert (params.socket_timeout, params.stack_timeout) == (3, 15)  # a copy
    assert amqp_io.bounded(params, 0.01).stack_timeout == amqp_io.MIN_ATTEMPT_SECONDS
    assert amqp_io.bounded(params, 60).stack_timeout == 15


@pytest.mark.parametrize(
    ("accept", "query", "what"),
    [
        (True, "timeout=1", "accepted the connection but sent no greeting"),
        (False, "timeout=0.5", "did not accept the connection"),
    ],
)
def test_ftp_while_connecting(accept: bool, query: str, what: str) -> None:
    with SilentServer(accept=accept) as server:
        source = FtpSource(url=server.url("ftp", f"/in?{query}", f"user:{SECRET}"))
        with pytest.raises(SourceError) as info, source:
            bounded(BOUND, source.list_files)
    one_line(info.value, server, what, "timeout")


def test_ftp_server_that_stops_answering_once_logged_in(tmp_path: Path) -> None:
    def list_pause_list_resume_list(source: FtpSource, proxy: TcpProxy) -> SourceError:
        """In one thread: FtpSource keeps one connection per thread."""
        assert [ref.name for ref in source.list_files()] == ["a.txt"]
        proxy.pause()  # the control connection stays open; no reply comes any more
        with pytest.raises(SourceError) as info:
            source.list_files()
        proxy.resume()
        assert [ref.name for ref in source.list_files()] == ["a.txt"]  # reconnected
        return info.value

    with FtpTestServer(tmp_path / "ftp") as ftp, TcpProxy.to_url(ftp.url) as proxy:
        (ftp.root / "a.txt").write_text("x")
        with FtpSource(url=proxy.url(ftp.url) + "?timeout=1") as source:
            error = bounded(BOUND, lambda: list_pause_list_resume_list(source, proxy))
    text = str(error)
    assert type(error).retryable and "\n" not in text
    assert f"127.0.0.1:{proxy.port} did not answer within 1 s (timeout)" in text


@pytest.mark.parametrize(
    ("accept", "what", "option"),
    [
        (True, "did not answer", "--request-timeout"),
        (False, "did not accept the connection", "--request-connect-timeout"),
    ],
)
def test_http_geocoder(accept: bool, what: str, option: str) -> None:
    keys = pl.DataFrame({"latitude": [-30.0], "longitude": [-51.0]}, schema=KEYS_SCHEMA)
    with SilentServer(accept=accept) as server:
        geocoder = GoogleGeocoder(
            key=SECRET,
            url=server.url("http", "/maps/api/geocode/json"),
            qps=1000,
            timeout=1,
            connect_timeout=0.5,
            max_attempts=1,
        )
        with pytest.raises(GeocodeTimeoutError) as info, geocoder:
            bounded(BOUND, lambda: geocoder.reverse(keys))
    one_line(info.value, server, what, option)
