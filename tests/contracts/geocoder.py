"""The Geocoder contract: offline, google and nominatim pass the same tests.

A geocoder's test module subclasses :class:`GeocoderContract` and overrides the ``geocoder``
fixture (the API geocoders point it at the fake API of ``tests/geocoders/fake_api.py``, which
answers every key).
"""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Iterator

import polars as pl
import pytest

from etl4all import frames
from etl4all.geocoders import NAMES
from etl4all.geocoders.base import FAILED_SCHEMA, KEYS_SCHEMA, RESULT_SCHEMA, Geocoder


def distinct_keys(n: int) -> pl.DataFrame:
    """``n`` distinct coordinates in Brazil, 6 decimals (``KEYS_SCHEMA``)."""
    return pl.DataFrame(
        {
            "latitude": [round(-23.5 - i * 0.0173, 6) for i in range(n)],
            "longitude": [round(-46.6 + i * 0.0291, 6) for i in range(n)],
        },
        schema=KEYS_SCHEMA,
    )


class GeocoderContract:
    """Behaviour every Geocoder must have."""

    @pytest.fixture
    def geocoder(self) -> Iterator[Geocoder]:
        """A ready geocoder; override in the geocoder's module."""
        raise NotImplementedError

    def test_satisfies_the_protocol(self, geocoder: Geocoder) -> None:
        assert isinstance(geocoder, Geocoder)
        for method in ("reverse", "close"):
            declared = inspect.signature(getattr(Geocoder, method))
            assert inspect.signature(getattr(type(geocoder), method)) == declared, method

    def test_name_is_registered_and_paid_is_set(self, geocoder: Geocoder) -> None:
        assert geocoder.name in NAMES
        assert NAMES[geocoder.name][0].endswith(f":{type(geocoder).__name__}")
        assert isinstance(geocoder.paid, bool)

    def test_one_row_per_key_in_the_result_schema(self, geocoder: Geocoder) -> None:
        keys = distinct_keys(25)
        result = geocoder.reverse(keys)
        assert result.addresses.schema == pl.Schema(RESULT_SCHEMA)
        assert result.failed.schema == pl.Schema(FAILED_SCHEMA)
        assert result.failed.is_empty()
        assert result.addresses.height == keys.height
        got = result.addresses.select(list(KEYS_SCHEMA)).sort(list(KEYS_SCHEMA))
        assert got.equals(keys.sort(list(KEYS_SCHEMA)))
        assert result.addresses["geocoder"].unique().to_list() == [geocoder.name]
        assert result.addresses["geocode_status"].null_count() == 0
        stamp = result.addresses["geocoded_at"].max()
        assert isinstance(stamp, dt.datetime)
        assert abs(dt.datetime.now(dt.UTC) - stamp) < dt.timedelta(minutes=1)

    def test_calls_are_counted_for_paid_geocoders_only(self, geocoder: Geocoder) -> None:
        result = geocoder.reverse(distinct_keys(7))
        assert result.calls == (7 if geocoder.paid else 0)
        assert result.retries == 0

    def test_empty_keys_give_empty_frames(self, geocoder: Geocoder) -> None:
        result = geocoder.reverse(frames.empty(KEYS_SCHEMA))
        assert result.addresses.is_empty()
        assert result.addresses.schema == pl.Schema(RESULT_SCHEMA)
        assert result.failed.is_empty()
        assert result.failed.schema == pl.Schema(FAILED_SCHEMA)
        assert result.calls == 0

    def test_context_manager_closes(
        self, geocoder: Geocoder, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        closed: list[bool] = []
        monkeypatch.setattr(geocoder, "close", lambda: closed.append(True))
        with geocoder as entered:
            assert entered is geocoder
        assert closed == [True]

    def test_close_twice_is_harmless(self, geocoder: Geocoder) -> None:
        geocoder.close()
        geocoder.close()
