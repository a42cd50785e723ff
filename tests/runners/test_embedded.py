"""The embedded driver: the stages inline, on a folder, SQLite and DuckDB."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import pytest
from geocoders.fake_api import FakeApi, coord

from etl4all import frames, parse, sample, urls
from etl4all.errors import BudgetExceededError, GeocodeUnavailableError
from etl4all.runners.embedded import run
from etl4all.settings import Settings
from etl4all.sources.base import FileRef
from etl4all.warehouse.read import read_warehouse


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.chdir(tmp_path)
    sample.write_sample(tmp_path / "in", files=3, points=80, seed=2, dirty_rate=0.05)
    return Settings(
        warehouse_url=f"duckdb:///{tmp_path}/w.duckdb",
        state_url=f"sqlite:///{tmp_path}/s.db",
        batch_rows=30,
    )


def parsed(folder: Path) -> tuple[int, int]:
    """(points, distinct coordinates at 6 decimals) of the files in ``folder``."""
    points = pl.concat(parse.parse(p.read_bytes(), p.name).points for p in folder.glob("*.txt"))
    keys = points.select(frames.scaled_key(pl.col(c), 6) for c in ("latitude", "longitude"))
    return points.height, keys.unique().height


def test_every_file_is_processed_once_and_reported(settings: Settings, tmp_path: Path) -> None:
    started: list[FileRef] = []
    finished: list[FileRef] = []
    summary = run(["in"], settings, on_start=started.extend, on_file=finished.append)
    assert summary.files == summary.processed == 3 and summary.skipped == 0
    assert finished == started and len(started) == 3
    assert summary.points == parsed(tmp_path / "in")[0]
    assert summary.load.inserted == read_warehouse(settings.warehouse_url).height
    with duckdb.connect(urls.file_path(settings.warehouse_url)) as db:
        (kept,) = db.execute("SELECT count(*) FROM reject").fetchone() or (0,)
    assert kept == sum(summary.rejects.values()) > 0

    again = run(["in"], settings)
    assert (again.processed, again.skipped, again.points) == (0, 3, 0)


def test_a_run_stopped_by_the_budget_leaves_its_file_to_the_next_run(
    settings: Settings, tmp_path: Path
) -> None:
    _, distinct = parsed(tmp_path / "in")
    with FakeApi() as api:
        google = settings.replace(
            geocoder="google", google_key=api.key, google_url=api.google_url, qps=500.0
        )
        with pytest.raises(BudgetExceededError, match="--max-calls 40"):
            run(["in"], google.replace(max_calls=40))
        assert 0 < api.calls <= 40
        rest = run(["in"], google)  # the unfinished files are done now
        assert rest.skipped + rest.processed == 3 and rest.processed >= 1
        assert api.calls == distinct  # what the stopped run paid for came from the cache
    assert read_warehouse(settings.warehouse_url).height == distinct


def test_a_geocoder_outage_fails_the_run_and_loses_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    """Issue 8, failure 1: the API unreachable is an error, not `geocode_failed` rejects."""
    one = settings.replace(batch_rows=10_000)  # each file is one batch
    first = min((tmp_path / "in").glob("*.txt"))  # the run's first file
    points = parse.parse(first.read_bytes(), first.name).points
    with FakeApi() as api:
        google = one.replace(
            geocoder="google",
            google_key=api.key,
            google_url=api.google_url,
            qps=500.0,
            max_attempts=2,
        )
        down = points.row(0, named=True)  # this coordinate keeps failing: the API is "down"
        api.script[coord(down["latitude"], down["longitude"])] = [503] * 2
        with pytest.raises(GeocodeUnavailableError, match="google unavailable: gave up on"):
            run(["in"], google)
        paid = api.calls - 2
        assert read_warehouse(one.warehouse_url).height == 0  # the failing batch left nothing
        with duckdb.connect(urls.file_path(one.warehouse_url)) as db:
            (kept,) = db.execute("SELECT count(*) FROM reject").fetchone() or (0,)
        assert kept == 0
        again = run(["in"], google)  # the API is back: the same command finishes the job
        assert again.processed == 3 and not again.rejects.get("geocode_failed")
        _, distinct = parsed(tmp_path / "in")
        assert api.calls - 2 - paid == distinct - paid  # answers of the failed run were kept
    assert read_warehouse(one.warehouse_url).height == distinct
