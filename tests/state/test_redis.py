"""RedisState: the ledger and cache contracts, plus key layout and error mapping."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from contracts.state import FILE, SCOPE, CacheContract, LedgerContract, cache_rows, keys_of
from redis_time import following
from virtual_clock import VirtualClock

from etl4all import state as state_role
from etl4all.errors import ConfigError, StoreConfigError, StoreError
from etl4all.redis_client import DEFAULT_PREFIX
from etl4all.state.base import FileMark, StateStore
from etl4all.state.redis import RedisState

pytestmark = pytest.mark.redis


@pytest.fixture
def store_url(redis_url: str) -> str:
    """The contracts' store: a test-private key prefix."""
    return redis_url


@pytest.fixture
def store_options(store_url: str, clock: VirtualClock) -> Iterator[dict[str, Any]]:
    """Redis expires by its own TTLs: they age with the contract's clock."""
    with following(clock, store_url):
        yield {}


class TestRedisLedger(LedgerContract):
    """The file ledger contract on Redis."""


class TestRedisCache(CacheContract):
    """The geocode cache contract on Redis."""


def test_key_layout(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url.split("?")[0], decode_responses=True)
    with RedisState(url=redis_url) as state:
        prefix = state.prefix
        assert prefix.startswith("etl4all-test-")
        token = state.claim(FILE, 30)
        assert client.get(f"{prefix}claim:{FILE}") == token
        assert 0 < client.pttl(f"{prefix}claim:{FILE}") <= 30_000
        mark = FileMark(10, 1.5, "ab" * 32, version=7, points=3, checkpoints="64:6c61:")
        state.mark_done({FILE: mark})
        stored = client.hget(f"{prefix}done", FILE)
        assert stored is not None and FileMark.from_json(stored) == mark  # one JSON object
        client.hset(f"{prefix}done", "old", f"10|1.5|{'ab' * 32}|2.5")  # an older release's
        assert state.done(["old"]) == {"old": FileMark(10, 1.5, "ab" * 32, partial_since=2.5)}
        rows = cache_rows(1)
        state.cache_put(SCOPE, rows, 60)
        name = f"{prefix}geo:{SCOPE}:{rows['lat_key'][0]}:{rows['lon_key'][0]}"
        assert 0 < client.pttl(name) <= 60_000
    client.close()


def test_keys_expire_on_the_server(redis_url: str) -> None:
    """The TTLs Redis is given expire there: with the shortest TTL, polled (no sleep)."""
    client = redis.Redis.from_url(redis_url.split("?")[0], decode_responses=True)
    with RedisState(url=redis_url) as state:
        assert state.claim(FILE, 0.001)
        state.cache_put(SCOPE, cache_rows(1), 0.001)
        for _ in range(100_000):  # round trips until Redis's clock has passed 1 ms
            if not client.keys(f"{state.prefix}*"):
                break
        assert client.keys(f"{state.prefix}*") == []
        assert state.claim(FILE, 30) and state.cache_get(SCOPE, keys_of(cache_rows(1))).is_empty()
    client.close()


def test_twenty_thousand_keys_take_a_round_trip_per_chunk(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pipelined by CHUNK commands: 2 round trips to put 20,000 rows, 1 to get 20,500 keys."""
    trips: list[int] = []
    execute = redis.client.Pipeline.execute

    def counted(pipe: redis.client.Pipeline, *args: Any, **kwargs: Any) -> Any:
        trips.append(len(pipe.command_stack))
        return execute(pipe, *args, **kwargs)

    monkeypatch.setattr(redis.client.Pipeline, "execute", counted)
    with RedisState(url=redis_url) as state:
        state.cache_put(SCOPE, cache_rows(20_000), 600)
        assert trips == [10_000, 10_000]
        assert state.cache_get(SCOPE, keys_of(cache_rows(20_500))).height == 20_000
        assert trips == [10_000, 10_000, 3]


def test_default_prefix_and_factory() -> None:
    with state_role.from_url("redis://127.0.0.1:6379/0") as state:
        assert isinstance(state, RedisState)
        assert isinstance(state, StateStore)
        assert state.prefix == DEFAULT_PREFIX == "etl4all:"
    with state_role.from_url("rediss://127.0.0.1:6379/0") as tls:
        assert isinstance(tls, RedisState)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:6379/0",
        "redis://127.0.0.1:6379/zero",
        "redis://127.0.0.1:6379/0?no_such_option=1",
        "redis://127.0.0.1:6379/0?socket_timeout=soon",
        "redis:///0",
    ],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(ConfigError):
        RedisState(url=url)


def test_unreachable_server_is_a_store_error_without_the_password() -> None:
    state = RedisState(url="redis://:s3cret@127.0.0.1:1/0?prefix=x:")
    with state, pytest.raises(StoreError) as info:
        state.claim(FILE, 30)
    message = str(info.value)
    assert "s3cret" not in message
    assert "redis://:***@127.0.0.1:1/0" in message
    assert isinstance(info.value.__cause__, redis.exceptions.ConnectionError)
    assert info.value.retryable


def test_refused_credentials_are_a_config_error_without_the_password(redis_url: str) -> None:
    url = redis_url.replace("redis://", "redis://nobody-etl4all:s3cret@")
    state = RedisState(url=url)
    with state, pytest.raises(StoreConfigError) as info:
        state.done_count()
    assert isinstance(info.value, ConfigError) and not info.value.retryable
    assert "s3cret" not in str(info.value) and "check the user and password" in str(info.value)


def test_malformed_done_mark_is_a_store_error(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url.split("?")[0], decode_responses=True)
    with RedisState(url=redis_url) as state:
        client.hset(f"{state.prefix}done", FILE, "garbage")
        with pytest.raises(StoreError, match="malformed done mark"):
            state.done([FILE])
    client.close()


def test_a_database_number_the_server_lacks_is_a_config_error(redis_url: str) -> None:
    """Issue 17, item 6: `redis://…/99` was a retryable error: exit 1 for ever."""
    parts = urlsplit(redis_url)
    with (
        RedisState(url=urlunsplit(parts._replace(path="/99"))) as state,
        pytest.raises(StoreConfigError, match="no database of that number") as caught,
    ):
        state.done_count()
    assert isinstance(caught.value, ConfigError) and not caught.value.retryable
