"""The pika side of AmqpBroker without a RabbitMQ: error mapping, URL options, reconnecting."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pika.exceptions as px
import pytest
from virtual_clock import VirtualClock

from etl4all import urls
from etl4all.broker import amqp_errors, amqp_io
from etl4all.broker.amqp import AmqpBroker
from etl4all.errors import BrokerConfigError, BrokerError, ConfigError

URL = "amqp://guest:s3cret@127.0.0.1:5672/"


@pytest.mark.parametrize(
    ("error", "hint"),
    [
        (px.ProbableAuthenticationError("ACCESS_REFUSED"), "user and password"),
        (px.AuthenticationError("PLAIN"), "user and password"),
        (px.ProbableAccessDeniedError("vhost /x"), "vhost"),
        (px.ConnectionClosedByBroker(403, "ACCESS_REFUSED"), "permissions"),
        (px.ChannelClosedByBroker(530, "NOT_ALLOWED"), "permissions"),
        (px.ChannelClosedByBroker(404, "NOT_FOUND - no queue"), "does not exist"),
        (px.ChannelClosedByBroker(406, "PRECONDITION_FAILED - inequivalent arg"), "arguments"),
        (px.UnsupportedAMQPFieldException("x" * 500, 0.5), "header values"),
        (px.UnroutableError([]), "was the queue deleted"),
    ],
)
def test_faults_retrying_cannot_fix_are_config_errors(error: px.AMQPError, hint: str) -> None:
    connecting = amqp_errors.mapped(URL, "connecting")
    with pytest.raises(BrokerConfigError, match=hint) as info, connecting:
        raise error
    assert isinstance(info.value, ConfigError)
    assert type(info.value).retryable is False
    assert info.value.__cause__ is error
    assert "s3cret" not in str(info.value)
    assert len(str(info.value)) < 400


@pytest.mark.parametrize(
    "error",
    [
        px.AMQPConnectionError("refused"),
        px.StreamLostError("Transport indicated EOF"),
        px.ConnectionClosedByBroker(320, "CONNECTION_FORCED - shutdown"),
        px.ChannelClosedByBroker(541, "INTERNAL_ERROR"),
        px.NackError([]),
    ],
)
def test_other_faults_are_retryable(error: px.AMQPError) -> None:
    publishing = amqp_errors.mapped(URL, "publishing")
    with pytest.raises(BrokerError, match="retrying") as info, publishing:
        raise error
    assert type(info.value) is BrokerError
    assert type(info.value).retryable is True


def test_a_cut_connection_is_called_a_cut_not_a_protocol_error() -> None:
    """Issue 17, item 11: a broker cut was logged as ``IncompatibleProtocolError``."""
    with pytest.raises(BrokerError) as info, amqp_errors.mapped(URL, "connecting"):
        raise px.IncompatibleProtocolError("StreamLostError: ('Transport indicated EOF',)")
    assert "connecting failed: the connection was cut (" in str(info.value)
    assert "IncompatibleProtocolError:" not in str(info.value) and info.value.retryable


def test_parameters_apply_the_defaults_and_take_reconnect_attempts() -> None:
    params, attempts = amqp_io.parameters(URL)
    assert (params.heartbeat, params.blocked_connection_timeout, attempts) == (30, 60, 8)
    params, attempts = amqp_io.parameters(URL + "?heartbeat=5&reconnect_attempts=0")
    assert (params.heartbeat, attempts) == (5, 0)


@pytest.mark.parametrize(
    "url",
    [
        "amqp:///nohost",
        "redis://127.0.0.1/",
        URL + "?heartbeat=soon",
        URL + "?reconnect_attempts=many",
        URL + "?reconnect_attempts=-1",
    ],
)
def test_bad_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        amqp_io.parameters(url)
    assert "s3cret" not in str(info.value)


class FailingConnection:
    """Stands in for pika's BlockingConnection: every attempt raises ``error``."""

    attempts = 0
    error: Exception = px.AMQPConnectionError("refused")

    def __init__(self, params: Any) -> None:
        type(self).attempts += 1
        raise type(self).error


@pytest.fixture
def failing(monkeypatch: pytest.MonkeyPatch) -> type[FailingConnection]:
    class Connection(FailingConnection):
        pass

    monkeypatch.setattr(amqp_io, "BlockingConnection", Connection)
    return Connection


def test_connection_is_retried_reconnect_attempts_times_with_jitter(
    failing: type[FailingConnection], caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.WARNING, logger="etl4all.broker.amqp_io"),
        pytest.raises(BrokerError, match="refused") as info,
    ):
        AmqpBroker(url=URL + "?reconnect_attempts=2")
    assert type(info.value) is BrokerError
    assert failing.attempts == 3
    waits = [r.getMessage() for r in caplog.records if "reconnecting in" in r.getMessage()]
    assert len(waits) == 2


def test_refused_credentials_are_not_retried(failing: type[FailingConnection]) -> None:
    failing.error = px.ProbableAuthenticationError("ACCESS_REFUSED")
    with pytest.raises(BrokerConfigError, match="password"):
        AmqpBroker(url=URL + "?reconnect_attempts=5")
    assert failing.attempts == 1


def test_close_during_the_backoff_ends_the_retries(failing: type[FailingConnection]) -> None:
    clock = VirtualClock()
    io = amqp_io.IoThread(
        url=urls.redact(URL),
        params=amqp_io.parameters(URL)[0],
        reconnect_attempts=100,
        connect_timeout=60.0,
        name="amqp-test",
        on_connect=lambda conn: None,
        on_tick=lambda: None,
        on_drop=lambda: None,
        on_shutdown=lambda error: None,
        clock=clock,
    )
    errors: list[BrokerError] = []

    def start() -> None:
        try:
            io.start()
        except BrokerError as exc:
            errors.append(exc)

    starter = threading.Thread(target=start)
    starter.start()
    clock.until_waiting(1)  # the I/O thread failed to connect and waits its backoff
    started = clock.monotonic()
    io.close()
    starter.join(timeout=30)
    assert not starter.is_alive() and clock.monotonic() == started  # no backoff waited out
    assert [str(e) for e in errors] == [f"RabbitMQ {io.url}: the broker object is closed"]
    assert io.fatal is None
    assert failing.attempts <= 2
