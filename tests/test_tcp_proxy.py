"""The test helper TcpProxy: forwards, cuts, restores, pauses and resumes, against real Redis."""

from __future__ import annotations

import threading

import pytest
import redis
from service_urls import SERVICE_URLS
from tcp_proxy import TcpProxy

pytestmark = pytest.mark.redis


def test_cut_drops_every_connection_until_restored() -> None:
    with TcpProxy.to_url(SERVICE_URLS["redis"]) as proxy:
        client = redis.Redis.from_url(proxy.url(SERVICE_URLS["redis"]), socket_timeout=5)
        assert client.ping() and proxy.open == 1
        proxy.cut()
        assert proxy.open == 0
        with pytest.raises(redis.exceptions.ConnectionError):
            client.ping()
        proxy.restore()
        assert client.ping()
        assert proxy.accepted >= 3  # the first connection, the refused one, the new one
        client.close()


def test_pause_holds_the_bytes_back_and_resume_delivers_them(unique: str) -> None:
    key = f"etl4all-test-{unique}:proxy"
    with TcpProxy.to_url(SERVICE_URLS["redis"]) as proxy:
        client = redis.Redis.from_url(proxy.url(SERVICE_URLS["redis"]))
        assert client.ping()
        proxy.pause()
        writer = threading.Thread(target=client.set, args=(key, "held"))
        writer.start()
        writer.join(timeout=0.5)
        assert writer.is_alive()  # the SET waits on the partition
        proxy.resume()
        writer.join(timeout=10)
        assert not writer.is_alive()
        direct = redis.Redis.from_url(SERVICE_URLS["redis"])
        assert direct.get(key) == b"held"
        direct.delete(key)
        direct.close()
        client.close()


def test_url_keeps_credentials_and_path() -> None:
    with TcpProxy("127.0.0.1", 5672) as proxy:
        assert proxy.url("amqp://u:p%2Fw@rabbit:5672/vh?x=1") == (
            f"amqp://u:p%2Fw@127.0.0.1:{proxy.port}/vh?x=1"
        )
