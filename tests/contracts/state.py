"""The State contract: every state store (SQLite, Redis) passes the same tests.

A backend's test module subclasses :class:`StateContract` and overrides the ``state`` and
``other_state`` fixtures: two instances on the same (fresh, test-private) store, as two
workers would see it.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from etl4all.errors import ConfigError, DataError
from etl4all.state.base import CACHE_KEYS_SCHEMA, CACHE_SCHEMA, FileMark, State

SCOPE = "google:6"
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


class StateContract:
    """Behaviour every State backend must have."""

    @pytest.fixture
    def state(self) -> Iterator[State]:
        """A store on a fresh, test-private namespace; override in the backend's module."""
        raise NotImplementedError

    @pytest.fixture
    def other_state(self) -> Iterator[State]:
        """A second instance on the same store as ``state`` (another worker)."""
        raise NotImplementedError

    def test_satisfies_the_protocol(self, state: State) -> None:
        assert isinstance(state, State)

    # -- claims ---------------------------------------------------------------------------

    def test_claim_is_exclusive(self, state: State, other_state: State) -> None:
        token = state.claim(FILE, 30)
        assert token
        assert state.claim(FILE, 30) is None
        assert other_state.claim(FILE, 30) is None
        assert other_state.claim(FILE + ".other", 30) not in (None, token)

    def test_expired_claim_can_be_taken_over(self, state: State, other_state: State) -> None:
        first = state.claim(FILE, 0.2)
        assert first
        time.sleep(0.35)
        second = other_state.claim(FILE, 30)
        assert second and second != first

    def test_release_only_by_the_holder(self, state: State, other_state: State) -> None:
        token = state.claim(FILE, 30)
        assert token
        other_state.release(FILE, "not-the-token")
        assert other_state.claim(FILE, 30) is None
        state.release(FILE, token)
        assert other_state.claim(FILE, 30)

    def test_stale_release_keeps_the_new_lease(self, state: State, other_state: State) -> None:
        stale = state.claim(FILE, 0.2)
        assert stale
        time.sleep(0.35)
        assert other_state.claim(FILE, 30)
        state.release(FILE, stale)
        assert state.claim(FILE, 30) is None

    def test_renew_extends_only_the_holders_lease(self, state: State, other_state: State) -> None:
        token = state.claim(FILE, 0.3)
        assert token
        assert not other_state.renew(FILE, "not-the-token", 30)  # type: ignore[attr-defined]
        assert state.renew(FILE, token, 30)  # type: ignore[attr-defined]
        time.sleep(0.45)
        assert other_state.claim(FILE, 30) is None

    def test_renew_fails_after_takeover(self, state: State, other_state: State) -> None:
        token = state.claim(FILE, 0.2)
        assert token
        time.sleep(0.35)
        assert other_state.claim(FILE, 30)
        assert not state.renew(FILE, token, 30)  # type: ignore[attr-defined]

    def test_threads_racing_on_a_claim_one_wins(self, state: State) -> None:
        keys = [f"{FILE}.{i}" for i in range(20)]
        winners: dict[str, list[str]] = {key: [] for key in keys}
        barrier = threading.Barrier(4)

        def race() -> None:
            barrier.wait()
            for key in keys:
                token = state.claim(key, 30)
                if token:
                    winners[key].append(token)

        threads = [threading.Thread(target=race) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert {key: len(tokens) for key, tokens in winners.items()} == dict.fromkeys(keys, 1)

    def test_bad_ttl_is_refused(self, state: State) -> None:
        with pytest.raises(ConfigError):
            state.claim(FILE, 0)
        with pytest.raises(ConfigError):
            state.cache_put(SCOPE, cache_rows(1), -1)

    # -- done files -----------------------------------------------------------------------

    def test_done_marks_round_trip(self, state: State, other_state: State) -> None:
        assert state.done([]) == {}
        assert state.done([FILE]) == {}
        mark = FileMark(size=123_456_789_012, mtime=1_700_000_000.123456, sha256="ab" * 32)
        state.mark_done({FILE: mark, "file:///x.txt": FileMark(0, 0.0, "00" * 32)})
        assert other_state.done([FILE, "file:///missing.txt"]) == {FILE: mark}
        changed = FileMark(size=1, mtime=1_700_000_060.5, sha256="cd" * 32)
        other_state.mark_done({FILE: changed})
        assert state.done([FILE, "file:///x.txt"]) == {
            FILE: changed,
            "file:///x.txt": FileMark(0, 0.0, "00" * 32),
        }
        state.mark_done({})
        assert state.done_count() == 2

    # -- geocode cache --------------------------------------------------------------------

    def test_cache_round_trip_is_exact(self, state: State, other_state: State) -> None:
        rows = cache_rows(50)
        state.cache_put(SCOPE, rows, 60)
        got = other_state.cache_get(SCOPE, keys_of(rows))
        assert got.schema == pl.Schema(CACHE_SCHEMA)
        assert_frame_equal(sorted_rows(got), sorted_rows(rows))

    def test_cache_miss_and_partial_hit(self, state: State) -> None:
        rows = cache_rows(10)
        empty = state.cache_get(SCOPE, keys_of(rows))
        assert empty.is_empty() and empty.schema == pl.Schema(CACHE_SCHEMA)
        state.cache_put(SCOPE, rows.head(4), 60)
        wanted = pl.concat([keys_of(rows), keys_of(rows.head(2))])  # duplicates too
        got = state.cache_get(SCOPE, wanted)
        assert_frame_equal(sorted_rows(got), sorted_rows(rows.head(4)))

    def test_cache_put_replaces(self, state: State) -> None:
        state.cache_put(SCOPE, cache_rows(5), 60)
        state.cache_put(SCOPE, cache_rows(5, city="Canoas"), 60)
        got = state.cache_get(SCOPE, keys_of(cache_rows(5)))
        assert got["city"].to_list() == ["Canoas"] * 5

    def test_cache_entries_expire(self, state: State) -> None:
        rows = cache_rows(5)
        state.cache_put(SCOPE, rows, 0.2)
        state.cache_put(SCOPE, cache_rows(3, offset=100), 60)
        assert state.cache_get(SCOPE, keys_of(rows)).height == 5
        assert state.cache_size() == 8
        time.sleep(0.35)
        assert state.cache_get(SCOPE, keys_of(rows)).is_empty()
        assert state.cache_size() == 3

    def test_scopes_do_not_mix(self, state: State) -> None:
        rows = cache_rows(5)
        state.cache_put(SCOPE, rows, 60)
        state.cache_put("nominatim:6", cache_rows(5, city="Outra"), 60)
        assert state.cache_get("google:5", keys_of(rows)).is_empty()
        assert state.cache_get(SCOPE, keys_of(rows))["city"].unique().to_list() == ["Porto Alegre"]
        assert state.cache_get("nominatim:6", keys_of(rows))["city"].unique().to_list() == ["Outra"]
        assert state.cache_size() == 10

    def test_empty_frames(self, state: State) -> None:
        state.cache_put(SCOPE, cache_rows(0), 60)
        got = state.cache_get(SCOPE, pl.DataFrame(schema=CACHE_KEYS_SCHEMA))
        assert got.is_empty() and got.schema == pl.Schema(CACHE_SCHEMA)
        assert state.cache_size() == 0

    def test_cache_rejects_rows_of_the_wrong_shape(self, state: State) -> None:
        with pytest.raises(DataError):
            state.cache_put(SCOPE, cache_rows(2).drop("city"), 60)
        with pytest.raises(DataError):
            state.cache_get(SCOPE, pl.DataFrame({"lat_key": ["x"], "lon_key": [1]}))

    def test_twenty_thousand_keys(self, state: State) -> None:
        rows = cache_rows(20_000)
        started = time.perf_counter()
        state.cache_put(SCOPE, rows, 600)
        got = state.cache_get(SCOPE, keys_of(cache_rows(20_500)))
        elapsed = time.perf_counter() - started
        assert_frame_equal(sorted_rows(got), sorted_rows(rows))
        assert state.cache_size() == 20_000
        assert elapsed < 10, f"20,000 keys took {elapsed:.1f} s"
