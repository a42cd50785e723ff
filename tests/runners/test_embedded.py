"""The embedded driver: the stages inline, on a folder, SQLite and DuckDB."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import pytest
from geocoders.fake_api import FakeApi

from etl4all import frames, parse, sample, urls
from etl4all.errors import BudgetExceededError, ConfigError
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


def test_a_forced_rerun_leaves_the_same_rows_and_pays_nothing_twice(
    settings: Settings, tmp_path: Path
) -> None:
    _, distinct = parsed(tmp_path / "in")
    with FakeApi() as api:
        google = settings.replace(
            geocoder="google", google_key=api.key, google_url=api.google_url, qps=500.0
        )
        run(["in"], google)
        before = read_warehouse(settings.warehouse_url)
        assert api.calls == distinct
        again = run(["in"], google.replace(force=True))
        assert (again.processed, again.skipped) == (3, 0)
        assert again.geocode.cache_hits == again.geocode.distinct > 0
        assert api.calls == distinct  # every answer came from the cache
    assert (again.load.inserted, again.load.updated) == (0, 0)
    assert again.load.unchanged == before.height
    assert read_warehouse(settings.warehouse_url).equals(before)


def test_force_files_redo_only_the_files_named(settings: Settings, tmp_path: Path) -> None:
    run(["in"], settings)
    first = sorted(p.name for p in (tmp_path / "in").glob("*.txt"))[0]
    again = run(["in"], settings.replace(force_files=(first,)))
    assert (again.processed, again.skipped) == (1, 2)
    with pytest.raises(ConfigError, match="--force-file nothing\\* matches no file"):
        run(["in"], settings.replace(force_files=(first, "nothing*")))
