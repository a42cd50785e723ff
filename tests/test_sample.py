"""The sample generator: realistic format, deterministic, and parsed back exactly."""

from __future__ import annotations

import polars as pl

from etl4all import sample
from etl4all.parsing import parse


def test_generated_coordinates_parse_back_exactly() -> None:
    table = sample.records(files=2, points=500, seed=7, dirty_rate=0.2, duplicate_rate=0.2)
    for (name,), part in table.group_by("file", maintain_order=True):
        parsed = parse.parse(sample.render(part), str(name))
        expected = part.filter(~pl.col("drop").is_in(["lat", "lon"]).fill_null(False))
        assert (
            parsed.points.select("latitude", "longitude").rows()
            == expected.select("latitude", "longitude").rows()
        )
        with_distance = expected.filter(pl.col("drop").ne_missing("dist"))
        assert parsed.points.get_column("distance_km").drop_nulls().to_list() == (
            with_distance.get_column("distance_km").to_list()
        )
        assert parsed.rejects.height == part.get_column("drop").is_in(["lat", "lon"]).sum()


def test_format_matches_the_field_files() -> None:
    data = sample.render(sample.records(files=1, points=2, seed=1))
    lines = data.decode().split("\r\n")
    assert lines[0].startswith("Latitude: 30°") and lines[0].endswith(tuple("0123456789"))
    assert "′" in lines[0] and "″S   -30." in lines[0]
    assert lines[1].startswith("Longitude: 51°") and "″W   -51." in lines[1]
    assert lines[2].startswith("Distance: ") and " km  Bearing: " in lines[2]
    assert lines[2].endswith("°")


def test_same_seed_same_files_other_seed_other_files() -> None:
    one = sample.records(files=1, points=50, seed=3, dirty_rate=0.1, duplicate_rate=0.1)
    assert one.equals(
        sample.records(files=1, points=50, seed=3, dirty_rate=0.1, duplicate_rate=0.1)
    )
    assert not one.equals(sample.records(files=1, points=50, seed=4))


def test_points_stay_within_the_radius_of_the_centre() -> None:
    table = sample.records(files=1, points=2000, center=(10.0, 20.0), radius_km=3, seed=2)
    assert table.get_column("distance_km").max() <= 3.0  # type: ignore[operator]
    # 3 km is about 0.027° of latitude
    assert (table.get_column("latitude") - 10.0).abs().max() < 0.03  # type: ignore[operator]


def test_duplicate_rate_repeats_earlier_coordinates() -> None:
    table = sample.records(files=1, points=2000, seed=5, duplicate_rate=0.3)
    distinct = table.select("latitude", "longitude").n_unique()
    assert 1200 < distinct < 1600
