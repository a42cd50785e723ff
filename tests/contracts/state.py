"""The state contracts: every state store (SQLite, Redis) passes the same tests.

:class:`LedgerContract` checks the file ledger (claims, done marks), :class:`CacheContract`
the geocode cache. A backend's test module subclasses each contract it implements and
provides a ``store_url`` fixture: the URL of a fresh, test-private store, and a
``store_options`` fixture: what ``state.from_url`` takes besides, for the store's expiries to
follow the contract's virtual ``clock`` (SQLite takes the clock; Redis's TTLs are made to age
with it, :mod:`redis_time`). The contracts build two instances on it, as two workers would see
it, and let leases and cache entries expire by moving the clock: no test sleeps.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import socket
import threading
from collections.abc import Iterator
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from virtual_clock import VirtualClock

from etl4all import state
from etl4all.errors import ConfigError, DataError
from etl4all.state.base import FileLedger, FileMark, GeocodeCache, StateStore
from etl4all.state.payloads import CACHE_KEYS_SCHEMA, CACHE_SCHEMA

SCOPE = "google:pt-BR:6"
FILE = "ftp://127.0.0.1:21/in/São Paulo|day 1.txt"


def cache_rows(n: int, *, offset: int = 0, city: str = "Porto Alegre") -> pl.DataFrame:
    """``n`` cache rows with distinct keys, some nulls and microsecond timestamps."""
    base = dt.datetime(2024, 5, 17, 13, 45, 7, 123456, tzinfo=dt.UTC)
    index = pl.int_range(offset, offset + n, eager=True)
    frame = pl.DataFrame(
        {
            "lat_key": -30_049_828 - index,
            "lon_key": -51_201_502 + index * 7,
            "street": pl.Series([f"Rua {i}" for i in index]),
            "number": pl.Series([None if i % 3 == 0 else str(i) for i in index]),
            "neighborhood": pl.Series(["Centro Histórico"] * n),
            "city": pl.Series([city] * n),
            "postal_code": pl.Series(["90010-000"] * n),
            "state": pl.Series(["RS"] * n),
            "country": pl.Series(["BR"] * n),
            "formatted_address": pl.Series(['Rua "X", 1\t– São João\n'] * n),
            "place_id": pl.Series([None] * n, dtype=pl.String),
            "location_type": pl.Series(["ROOFTOP"] * n),
            "geocoder": pl.Series(["google"] * n),
            "geocode_status": pl.Series(["OK"] * n),
            "geocoded_at": pl.Series([base + dt.timedelta(microseconds=int(i)) for i in index]),
        }
    )
    return frame.cast(CACHE_SCHEMA)  # type: ignore[arg-type]


def keys_of(rows: pl.DataFrame) -> pl.DataFrame:
    """The key columns of ``rows``."""
    return rows.select(list(CACHE_KEYS_SCHEMA))


def sorted_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` in key order, for comparisons."""
    return frame.sort("lat_key", "lon_key")


class StoreFixtures:
    """Two instances on the backend's ``store_url``; shared by both contracts."""

    @pytest.fixture
    def clock(self) -> VirtualClock:
        """The time the stores' expiries follow."""
        return VirtualClock()

    @pytest.fixture
    def store(self, store_url: str, store_options: dict[str, Any]) -> Iterator[StateStore]:
        """A store on the test-private ``store_url``."""
        with state.from_url(store_url, **store_options) as store:
            yield store

    @pytest.fixture
    def other_store(self, store_url: str, store_options: dict[str, Any]) -> Iterator[StateStore]:
        """A second instance on the same store as ``store`` (another worker)."""
        with state.from_url(store_url, **store_options) as store:
            yield store


class LedgerContract(StoreFixtures):
    """Behaviour every FileLedger backend must have."""

    def test_satisfies_the_protocol(self, store: FileLedger) -> None:
        assert isinstance(store, FileLedger)

    # -- claims ---------------------------------------------------------------------------

    def test_claim_is_exclusive(self, store: FileLedger, other_store: FileLedger) -> None:
        token = store.claim(FILE, 30)
        assert token
        assert store.claim(FILE, 30) is None
        assert other_store.claim(FILE, 30) is None
        assert other_store.claim(FILE + ".other", 30) not in (None, token)

    def test_claims_name_their_holder(self, store: FileLedger, other_store: FileLedger) -> None:
        token = store.claim(FILE, 30)
        assert token
        claims = other_store.claims()
        assert set(claims) == {FILE}
        assert claims[FILE].owner == f"{socket.gethostname()}:{os.getpid()}"
        assert 0 < claims[FILE].expires_in <= 30
        store.release(FILE, token)
        assert other_store.claims() == {}

    def test_expired_claim_can_be_taken_over(
        self, store: FileLedger, other_store: FileLedger, clock: VirtualClock
    ) -> None:
        first = store.claim(FILE, 0.2)
        assert first
        clock.advance(0.35)
        second = other_store.claim(FILE, 30)
        assert second and second != first

    def test_release_only_by_the_holder(self, store: FileLedger, other_store: FileLedger) -> None:
        token = store.claim(FILE, 30)
        assert token
        other_store.release(FILE, "not-the-token")
        assert other_store.claim(FILE, 30) is None
        store.release(FILE, token)
        assert other_store.claim(FILE, 30)

    def test_stale_release_keeps_the_new_lease(
        self, store: FileLedger, other_store: FileLedger, clock: VirtualClock
    ) -> None:
        stale = store.claim(FILE, 0.2)
        assert stale
        clock.advance(0.35)
        assert other_store.claim(FILE, 30)
        store.release(FILE, stale)
        assert store.claim(FILE, 30) is None

    def test_renew_extends_only_the_holders_lease(
        self, store: FileLedger, other_store: FileLedger, clock: VirtualClock
    ) -> None:
        token = store.claim(FILE, 0.3)
        assert token
        assert not other_store.renew(FILE, "not-the-token", 30)
        assert store.renew(FILE, token, 30)
        clock.advance(0.45)
        assert other_store.claim(FILE, 30) is None

    def test_renew_fails_after_takeover(
        self, store: FileLedger, other_store: FileLedger, clock: VirtualClock
    ) -> None:
        token = store.claim(FILE, 0.2)
        assert token
        clock.advance(0.35)
        assert other_store.claim(FILE, 30)
        assert not store.renew(FILE, token, 30)

    def test_threads_racing_on_a_claim_one_wins(self, store: FileLedger) -> None:
        keys = [f"{FILE}.{i}" for i in range(20)]
        winners: dict[str, list[str]] = {key: [] for key in keys}
        barrier = threading.Barrier(4)

        def race() -> None:
            barrier.wait()
            for key in keys:
                token = store.claim(key, 30)
                if token:
                    winners[key].append(token)

        threads = [threading.Thread(target=race) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert {key: len(tokens) for key, tokens in winners.items()} == dict.fromkeys(keys, 1)

    def test_bad_ttl_is_refused(self, store: FileLedger) -> None:
        with pytest.raises(ConfigError):
            store.claim(FILE, 0)

    def test_a_dead_holders_claim_is_taken_by_its_token(
        self, store: FileLedger, other_store: FileLedger
    ) -> None:
        assert other_store.holder(FILE) is None
        token = store.claim(FILE, 30)
        assert token
        holder = other_store.holder(FILE)
        assert holder is not None and holder.token == token and 0 < holder.expires_in <= 30
        assert other_store.claim(FILE, 30, replace="not-the-token") is None
        taken = other_store.claim(FILE, 30, replace=token)
        assert taken and taken != token
        assert not store.renew(FILE, token, 30)  # the old holder has lost it
        other_store.release(FILE, taken)
        assert store.holder(FILE) is None

    # -- done files -----------------------------------------------------------------------

    def test_done_marks_round_trip(self, store: FileLedger, other_store: FileLedger) -> None:
        assert store.done([]) == {}
        assert store.done([FILE]) == {}
        mark = FileMark(size=123_456_789_012, mtime=1_700_000_000.123456, sha256="ab" * 32)
        store.mark_done({FILE: mark, "file:///x.txt": FileMark(0, 0.0, "00" * 32)})
        assert other_store.done([FILE, "file:///missing.txt"]) == {FILE: mark}
        changed = FileMark(size=1, mtime=1_700_000_060.5, sha256="cd" * 32)
        other_store.mark_done({FILE: changed})
        assert store.done([FILE, "file:///x.txt"]) == {
            FILE: changed,
            "file:///x.txt": FileMark(0, 0.0, "00" * 32),
        }
        store.mark_done({})
        assert store.done_count() == 2

    def test_marks_keep_the_version_and_its_checkpoints(
        self, store: FileLedger, other_store: FileLedger
    ) -> None:
        mark = FileMark(10, 1.5, "ab" * 32, version=1_700_000_000_123_456, points=3)
        mark = dataclasses.replace(mark, checkpoints="64:6c61:0123456789ab")
        store.mark_done({FILE: mark})
        assert other_store.done([FILE]) == {FILE: mark}

    def test_partial_marks_round_trip(self, store: FileLedger, other_store: FileLedger) -> None:
        partial = FileMark(size=10, mtime=1_700_000_000.5, sha256="ab" * 32, partial_since=1.25e9)
        store.mark_done({FILE: partial})
        assert other_store.done([FILE]) == {FILE: partial}
        complete = FileMark(size=12, mtime=1_700_000_001.5, sha256="cd" * 32)
        other_store.mark_done({FILE: complete})
        assert store.done([FILE]) == {FILE: complete}


class CacheContract(StoreFixtures):
    """Behaviour every GeocodeCache backend must have."""

    def test_satisfies_the_protocol(self, store: GeocodeCache) -> None:
        assert isinstance(store, GeocodeCache)

    def test_bad_ttl_is_refused(self, store: GeocodeCache) -> None:
        with pytest.raises(ConfigError):
            store.cache_put(SCOPE, cache_rows(1), -1)

    def test_cache_round_trip_is_exact(
        self, store: GeocodeCache, other_store: GeocodeCache
    ) -> None:
        rows = cache_rows(50)
        store.cache_put(SCOPE, rows, 60)
        got = other_store.cache_get(SCOPE, keys_of(rows))
        assert got.schema == pl.Schema(CACHE_SCHEMA)
        assert_frame_equal(sorted_rows(got), sorted_rows(rows))

    def test_cache_miss_and_partial_hit(self, store: GeocodeCache) -> None:
        rows = cache_rows(10)
        empty = store.cache_get(SCOPE, keys_of(rows))
        assert empty.is_empty() and empty.schema == pl.Schema(CACHE_SCHEMA)
        store.cache_put(SCOPE, rows.head(4), 60)
        wanted = pl.concat([keys_of(rows), keys_of(rows.head(2))])  # duplicates too
        got = store.cache_get(SCOPE, wanted)
        assert_frame_equal(sorted_rows(got), sorted_rows(rows.head(4)))

    def test_cache_put_replaces(self, store: GeocodeCache) -> None:
        store.cache_put(SCOPE, cache_rows(5), 60)
        store.cache_put(SCOPE, cache_rows(5, city="Canoas"), 60)
        got = store.cache_get(SCOPE, keys_of(cache_rows(5)))
        assert got["city"].to_list() == ["Canoas"] * 5

    def test_cache_entries_expire(self, store: GeocodeCache, clock: VirtualClock) -> None:
        rows = cache_rows(5)
        store.cache_put(SCOPE, rows, 0.2)
        store.cache_put(SCOPE, cache_rows(3, offset=100), 60)
        assert store.cache_get(SCOPE, keys_of(rows)).height == 5
        assert store.cache_size() == 8
        clock.advance(0.35)
        assert store.cache_get(SCOPE, keys_of(rows)).is_empty()
        assert store.cache_size() == 3

    def test_scopes_do_not_mix(self, store: GeocodeCache) -> None:
        rows = cache_rows(5)
        store.cache_put(SCOPE, rows, 60)
        store.cache_put("nominatim:pt-BR:6", cache_rows(5, city="Outra"), 60)
        assert store.cache_get("google:pt-BR:5", keys_of(rows)).is_empty()
        assert store.cache_get(SCOPE, keys_of(rows))["city"].unique().to_list() == ["Porto Alegre"]
        assert store.cache_get("nominatim:pt-BR:6", keys_of(rows))["city"].unique().to_list() == [
            "Outra"
        ]
        assert store.cache_size() == 10

    def test_empty_frames(self, store: GeocodeCache) -> None:
        store.cache_put(SCOPE, cache_rows(0), 60)
        got = store.cache_get(SCOPE, pl.DataFrame(schema=CACHE_KEYS_SCHEMA))
        assert got.is_empty() and got.schema == pl.Schema(CACHE_SCHEMA)
        assert store.cache_size() == 0

    def test_cache_rejects_rows_of_the_wrong_shape(self, store: GeocodeCache) -> None:
        with pytest.raises(DataError):
            store.cache_put(SCOPE, cache_rows(2).drop("city"), 60)
        with pytest.raises(DataError):
            store.cache_get(SCOPE, pl.DataFrame({"lat_key": ["x"], "lon_key": [1]}))

    def test_twenty_thousand_keys(self, store: GeocodeCache) -> None:
        """(How many round trips they take is the backend's test: Redis pipelines them.)"""
        rows = cache_rows(20_000)
        store.cache_put(SCOPE, rows, 600)
        got = store.cache_get(SCOPE, keys_of(cache_rows(20_500)))
        assert_frame_equal(sorted_rows(got), sorted_rows(rows))
        assert store.cache_size() == 20_000
