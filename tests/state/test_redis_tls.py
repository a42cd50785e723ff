"""Redis over TLS (``rediss://``): the state and the fleet's quota against a private
``redis-server --tls-port`` whose certificate the test's own CA signed (:mod:`private_tls`).

The right CA passes a state round trip; the wrong CA, no CA (the system's store does not know
the test CA) and a host name the certificate does not hold fail in one line naming the host,
as a configuration fault, at once: the quota does not wait it out as an outage.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.exceptions
from contracts.state import FILE
from private_redis import PrivateRedis
from private_tls import TlsFiles

from etl4all import redis_client
from etl4all.errors import ConfigError, StoreConfigError
from etl4all.operations import check
from etl4all.quota.redis import RedisQuota
from etl4all.settings import Settings
from etl4all.state.base import FileMark
from etl4all.state.redis import RedisState

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return TlsFiles.make(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def server(files: TlsFiles, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    with PrivateRedis(tmp_path_factory.mktemp("redis"), tls=files) as private:
        yield private


def url(server: PrivateRedis, query: str, host: str = "127.0.0.1") -> str:
    return f"rediss://{host}:{server.port}/0?prefix=etl4all-test-tls:&{query}"


def test_a_state_round_trip_over_tls_with_the_right_ca(server: PrivateRedis) -> None:
    mark = FileMark(10, 1.5, "ab" * 32)
    with RedisState(url=server.url()) as store, RedisState(url=server.url()) as other:
        store.mark_done({FILE: mark})
        assert other.done([FILE]) == {FILE: mark}


@pytest.mark.parametrize("query", ["ssl_ca={other}", "ssl_verify=true"])
def test_an_unknown_ca_fails_in_one_line_naming_the_host(
    server: PrivateRedis, files: TlsFiles, query: str
) -> None:
    store_url = url(server, query.format(other=files.other_ca))
    with RedisState(url=store_url) as store, pytest.raises(StoreConfigError) as caught:
        store.done([FILE])
    said = str(caught.value)
    assert f"TLS certificate of 127.0.0.1:{server.port} refused: unknown CA" in said
    assert "\n" not in said


def test_a_host_name_mismatch_fails_clearly(server: PrivateRedis, files: TlsFiles) -> None:
    store_url = url(server, f"ssl_ca={files.ca}", host="localhost")
    mismatch = pytest.raises(StoreConfigError, match=r"localhost:\d+ refused: host name mismatch")
    with RedisState(url=store_url) as store, mismatch:
        store.done([FILE])


def test_verification_off_connects_with_a_warning(
    server: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="etl4all.tls"):
        client, _ = redis_client.connect(url(server, "ssl_verify=false", host="localhost"))
    with client:
        assert client.ping()
    assert "ssl_verify=false" in caplog.text


def test_a_client_certificate_is_presented_when_given(files: TlsFiles, tmp_path: Path) -> None:
    with PrivateRedis(tmp_path, tls=files, client_certs=True) as strict:
        client, _ = redis_client.connect(f"{strict.url()}&ssl_cert={files.client_cert}")
        with client:
            assert client.ping()
        client, _ = redis_client.connect(strict.url())  # no certificate: the server refuses
        with client, pytest.raises(redis.exceptions.ConnectionError):
            client.ping()


def test_the_quota_stops_at_a_refused_certificate_instead_of_waiting(
    server: PrivateRedis, files: TlsFiles
) -> None:
    with RedisQuota(url=url(server, f"ssl_ca={files.other_ca}")) as quota:
        limiter = quota.limiter(provider="google", endpoint="http://x", secret="k", qps=5.0)
        with pytest.raises(StoreConfigError, match="unknown CA"):
            asyncio.run(limiter.acquire())


def test_the_start_up_check_calls_it_a_configuration_fault(
    server: PrivateRedis, files: TlsFiles, tmp_path: Path
) -> None:
    settings = Settings(source_url=str(tmp_path), state_url=url(server, f"ssl_ca={files.other_ca}"))
    (result,) = check.run_checks(settings, ["state"])
    assert result.config_fault and check.exit_code([result]) == 2
    assert "unknown CA" in result.line() and "\n" not in result.line()


@pytest.mark.parametrize(
    ("bad", "said"),
    [
        ("redis://h/0?ssl_ca=/ca.pem", "ssl_ca need a rediss:// URL"),
        ("rediss://h/0?ssl_ca=/nowhere.pem", "ssl_ca /nowhere.pem: No such file"),
        ("rediss://:pw@h/0?ssl_verify=perhaps", "ssl_verify must be true or false"),
    ],
)
def test_bad_tls_options_are_refused_when_built(bad: str, said: str) -> None:
    with pytest.raises(ConfigError, match=said) as caught:
        redis_client.connect(bad)
    assert "pw" not in str(caught.value)
