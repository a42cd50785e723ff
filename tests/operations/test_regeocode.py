"""Re-geocoding rows already in the warehouse, on DuckDB and MySQL, against the fake Google API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from geocoders.fake_api import FakeApi, coord

from etl4all import frames, sample
from etl4all.cli import cli
from etl4all.errors import BudgetExceededError, ConfigError
from etl4all.operations.regeocode import Selection, plan, regeocode
from etl4all.parsing import parse
from etl4all.runners import wiring
from etl4all.runners.embedded import run
from etl4all.settings import Settings
from etl4all.warehouse.read import read_warehouse

PROVENANCE = ["id", "latitude", "longitude", "source_file", "source_line"]
PROVENANCE += ["distance_km", "bearing_deg", "created_at"]


@pytest.fixture(params=["duckdb", pytest.param("mysql", marks=pytest.mark.mysql)])
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "mysql":
        url = str(request.getfixturevalue("mysql_url"))
        with wiring.open_warehouse(Settings(warehouse_url=url)) as wh:
            wh.init()
        return url
    return f"duckdb:///{tmp_path}/w.duckdb"


@pytest.fixture
def api() -> Iterator[FakeApi]:
    with FakeApi() as fake:
        yield fake


@pytest.fixture
def settings(tmp_path: Path, warehouse_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """An offline run's settings, its files already loaded."""
    monkeypatch.chdir(tmp_path)
    sample.write_sample(tmp_path / "in", files=2, points=60, seed=5, duplicate_rate=0.1)
    offline = Settings(
        warehouse_url=warehouse_url, state_url=f"sqlite:///{tmp_path}/s.db", batch_rows=25
    )
    run(["in"], offline)
    return offline


def google(settings: Settings, api: FakeApi, **changes: object) -> Settings:
    return settings.replace(
        geocoder="google", google_key=api.key, google_url=api.google_url, qps=500.0, **changes
    )


def distinct(folder: Path) -> int:
    """Distinct coordinates at 6 decimals of the files in ``folder``."""
    points = pl.concat(parse.parse(p.read_bytes(), p.name).points for p in folder.glob("*.txt"))
    return (
        points.select(frames.scaled_key(pl.col(c), 6) for c in ("latitude", "longitude"))
        .unique()
        .height
    )


def test_offline_rows_move_to_google_keeping_their_provenance(
    settings: Settings, api: FakeApi, tmp_path: Path
) -> None:
    before = read_warehouse(settings.warehouse_url)
    keys = distinct(tmp_path / "in")
    to_google = google(settings, api)
    offline_rows = Selection(geocoders=("offline",))

    found = plan(offline_rows, to_google)
    assert (found.rows, found.distinct, found.cached, found.calls) == (before.height, keys, 0, keys)
    assert api.calls == 0 and read_warehouse(settings.warehouse_url).equals(before)

    done = regeocode(offline_rows, to_google)
    after = read_warehouse(settings.warehouse_url)
    assert done.rows == before.height and done.load.updated == before.height
    assert api.calls == keys
    assert after["geocoder"].unique().to_list() == ["google"]
    assert after.select(PROVENANCE).equals(before.select(PROVENANCE))
    assert after["street"].null_count() < after.height  # the offline geocoder has no streets

    assert regeocode(offline_rows, to_google).rows == 0  # nothing is offline any more
    again = regeocode(Selection(geocoders=("google",)), to_google)
    assert again.load.unchanged == before.height and api.calls == keys  # all from the cache
    assert read_warehouse(settings.warehouse_url).equals(after)


def test_a_run_stopped_by_the_budget_carries_on_and_pays_nothing_twice(
    settings: Settings, api: FakeApi, tmp_path: Path
) -> None:
    offline_rows = Selection(geocoders=("offline",))
    with pytest.raises(BudgetExceededError):
        regeocode(offline_rows, google(settings, api, max_calls=30))
    assert 0 < api.calls <= 30
    half = read_warehouse(settings.warehouse_url)["geocoder"].value_counts()
    assert set(half["geocoder"]) == {"offline", "google"}
    regeocode(offline_rows, google(settings, api))
    assert api.calls == distinct(tmp_path / "in")
    assert read_warehouse(settings.warehouse_url)["geocoder"].unique().to_list() == ["google"]


def test_zero_results_rows_are_chosen_by_status(settings: Settings, api: FakeApi) -> None:
    table = read_warehouse(settings.warehouse_url)
    nowhere = table.head(5).select("latitude", "longitude").rows()
    api.zero_results = {coord(lat, lon) for lat, lon in nowhere}
    regeocode(Selection(geocoders=("offline",)), google(settings, api))
    zero = Selection(statuses=("ZERO_RESULTS",))
    assert plan(zero, google(settings, api)).rows == 5
    back = regeocode(zero, settings)  # back to the offline geocoder for those five
    assert (back.rows, back.load.updated) == (5, 5)
    after = read_warehouse(settings.warehouse_url)
    assert after.filter(pl.col("geocode_status") == "ZERO_RESULTS").height == 0
    assert after.filter(pl.col("geocoder") == "offline").height == 5


def test_failed_points_get_their_rows(settings: Settings, api: FakeApi, tmp_path: Path) -> None:
    (path,) = sample.write_sample(tmp_path / "g", files=1, points=40, seed=99)  # new points
    refused = parse.parse(path.read_bytes(), path.name).points.head(3)
    api.invalid = {coord(lat, lon) for lat, lon in refused.select("latitude", "longitude").rows()}
    with_google = google(settings, api)
    first = run(["g"], with_google)
    assert first.rejects["invalid_request"] >= 3
    rows = read_warehouse(settings.warehouse_url).height

    api.invalid = set()
    failed = Selection(statuses=("failed",))
    assert plan(failed, with_google).failed == first.rejects["invalid_request"]
    done = regeocode(failed, with_google)
    assert done.load.inserted == 3 and done.rejects == 0
    table = read_warehouse(settings.warehouse_url)
    assert table.height == rows + 3
    new = table.filter(pl.col("id") > table["id"].sort()[rows - 1])
    assert set(new.select("source_file", "source_line").rows()) == set(
        refused.select("source", "line").rows()
    )
    assert new["distance_km"].is_null().all() and new["geocoder"].unique().to_list() == ["google"]
    assert plan(failed, with_google).failed == 0  # they have rows now


def test_the_command_needs_a_choice_and_a_dry_run_changes_nothing(
    settings: Settings, api: FakeApi
) -> None:
    before = read_warehouse(settings.warehouse_url)
    common = ["--warehouse", settings.warehouse_url, "--state", settings.state_url]
    key = ["--geocoder", "google", "--google-key", api.key, "--google-url", api.google_url]
    nothing = CliRunner().invoke(cli, ["regeocode", *common])
    assert nothing.exit_code == 2 and "--from-geocoder" in nothing.output
    dry = CliRunner().invoke(
        cli, ["regeocode", *common, *key, "--from-geocoder", "offline", "--dry-run"]
    )
    assert dry.exit_code == 0, dry.output
    assert f"chosen      {before.height} rows, 0 failed points" in dry.output
    assert "calls       " in dry.output and api.calls == 0
    assert read_warehouse(settings.warehouse_url).equals(before)
    real = CliRunner().invoke(cli, ["regeocode", *common, *key, "--from-geocoder", "offline"])
    assert real.exit_code == 0, real.output
    assert f"{before.height} updated, 0 inserted" in real.output
    assert api.key not in real.output + dry.output


def test_a_selection_needs_a_geocoder_or_a_status() -> None:
    with pytest.raises(ConfigError, match="--from-geocoder"):
        Selection()
    assert Selection(statuses=("failed",)).where is None
    assert Selection(geocoders=("offline",), statuses=("OK", "failed")).where == {
        "geocoder": ("offline",),
        "geocode_status": ("OK",),
    }


def test_a_wrong_key_stops_the_command_before_any_row_changes(
    settings: Settings, api: FakeApi
) -> None:
    before = read_warehouse(settings.warehouse_url)
    common = ["--warehouse", settings.warehouse_url, "--state", settings.state_url]
    wrong = [
        "--geocoder",
        "google",
        "--google-key",
        "AIzaWRONG-key",
        "--google-url",
        api.google_url,
    ]
    result = CliRunner().invoke(cli, ["regeocode", *common, *wrong, "--from-geocoder", "offline"])
    assert result.exit_code == 2 and "REQUEST_DENIED" in result.output
    assert api.calls == 1 and "AIzaWRONG" not in result.output  # the start-up check only
    assert read_warehouse(settings.warehouse_url).equals(before)
