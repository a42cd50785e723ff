"""OfflineGeocoder: the Geocoder contract, plus what is specific to the local lookup."""

from __future__ import annotations

from collections.abc import Iterator

import polars as pl
import pytest
from contracts.geocoder import GeocoderContract

from etl4all.geocoders import from_name
from etl4all.geocoders.offline import OfflineGeocoder


class TestOfflineGeocoder(GeocoderContract):
    @pytest.fixture
    def geocoder(self) -> Iterator[OfflineGeocoder]:
        with OfflineGeocoder() as geocoder:
            yield geocoder


def test_built_by_name_with_no_options() -> None:
    geocoder = from_name("offline")
    assert isinstance(geocoder, OfflineGeocoder)
    assert geocoder.paid is False


def test_city_state_and_full_country_name() -> None:
    keys = pl.DataFrame({"latitude": [-30.0346], "longitude": [-51.2177]})
    (row,) = OfflineGeocoder().reverse(keys).addresses.iter_rows(named=True)
    assert row["city"] == "Porto Alegre"
    assert row["country"] == "Brazil"
    assert row["street"] is None
