"""The RabbitMQ broker over TLS (``amqps://``), through a TLS-terminating proxy in front of the
loopback RabbitMQ (:class:`private_tls.TlsProxy`, the test CA's server certificate).

The proxy proves the client side, which is all etl4all owns: the context, the verification
and the error. The right CA carries a batch there and back; the wrong CA and a host name the
certificate does not hold fail at once in one line naming the host, as a configuration fault
(no reconnection backoff).
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from contracts.broker import take
from private_tls import TlsFiles, TlsProxy
from service_urls import SERVICE_URLS

from etl4all.broker import amqp_io
from etl4all.broker.amqp import AmqpBroker
from etl4all.broker.queues import Topology
from etl4all.errors import BrokerConfigError, BrokerError, ConfigError

pytestmark = pytest.mark.rabbitmq
_PARTS = urlsplit(SERVICE_URLS["rabbitmq"])
RABBITMQ = (_PARTS.hostname or "127.0.0.1", _PARTS.port or 5672)
"""Where the proxies forward to: the loopback RabbitMQ's plain AMQP port."""


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return TlsFiles.make(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def topology(unique: str) -> Topology:
    return Topology(prefix=f"etl4all-test-{unique}", max_deliveries=3)


def build(url: str, topology: Topology) -> AmqpBroker:
    return AmqpBroker(url=url, prefix=topology.prefix, prefetch=1, max_deliveries=3)


@pytest.fixture(scope="module")
def proxy(files: TlsFiles) -> Iterator[TlsProxy]:
    with TlsProxy(files.server_context(), RABBITMQ) as p:
        yield p


def amqps(amqp_url: str, proxy: TlsProxy, query: str, host: str = "127.0.0.1") -> str:
    """``amqp_url``'s user, password and vhost, over TLS through the proxy."""
    parts = urlsplit(amqp_url)
    userinfo = parts.netloc.rpartition("@")[0]
    return f"amqps://{userinfo}@{host}:{proxy.port}{parts.path or '/'}?{query}"


def test_a_batch_goes_there_and_back_over_tls_with_the_right_ca(
    amqp_url: str, proxy: TlsProxy, files: TlsFiles, topology: Topology
) -> None:
    with build(amqps(amqp_url, proxy, f"ssl_ca={files.ca}"), topology) as broker:
        try:
            broker.publish(topology.points, b"over tls", {"batch_id": "t1"})
            (delivery,) = take(broker, topology.points, 1)
            assert delivery.body == b"over tls"
            delivery.ack()
        finally:
            broker.delete()


def test_a_client_certificate_is_presented_when_given(
    amqp_url: str, files: TlsFiles, topology: Topology
) -> None:
    with TlsProxy(files.server_context(client_certs=True), RABBITMQ) as strict:
        query = f"ssl_ca={files.ca}&ssl_cert={files.client_cert}"
        with build(amqps(amqp_url, strict, query), topology) as broker:
            broker.delete()
        with pytest.raises(BrokerError):  # no certificate: the server ends the connection
            build(amqps(amqp_url, strict, f"ssl_ca={files.ca}&reconnect_attempts=0"), topology)


@pytest.mark.parametrize(
    ("query", "host", "said"),
    [
        ("ssl_ca={other}", "127.0.0.1", "127.0.0.1:{port} refused: unknown CA or self-signed"),
        ("reconnect_attempts=8", "127.0.0.1", "127.0.0.1:{port} refused: unknown CA"),
        ("ssl_ca={ca}", "localhost", "localhost:{port} refused: host name mismatch"),
    ],
)
def test_a_refused_certificate_is_a_configuration_fault_in_one_line(
    amqp_url: str,
    proxy: TlsProxy,
    files: TlsFiles,
    topology: Topology,
    query: str,
    host: str,
    said: str,
) -> None:
    url = amqps(amqp_url, proxy, query.format(other=files.other_ca, ca=files.ca), host)
    with pytest.raises(BrokerConfigError) as caught:
        build(url, topology)
    message = str(caught.value)
    assert said.format(port=proxy.port) in message and "\n" not in message
    assert not caught.value.retryable
    assert f":{urlsplit(amqp_url).password}@" not in message


def test_tls_options_need_amqps() -> None:
    with pytest.raises(ConfigError, match="ssl_ca need an amqps:// URL"):
        amqp_io.parameters("amqp://guest:guest@h/?ssl_ca=/ca.pem")


def test_amqps_verifies_against_the_system_store_by_default() -> None:
    params, _ = amqp_io.parameters("amqps://guest:guest@broker.example/")
    assert params.ssl_options is not None
    assert params.ssl_options.server_hostname == "broker.example"
    assert params.ssl_options.context.check_hostname
