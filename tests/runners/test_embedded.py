"""The embedded driver: the stages inline, on a folder, SQLite and DuckDB."""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import threading
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest
from geocoders.fake_api import FakeApi, coord
from sources.ftp_server import FtpTestServer
from virtual_clock import VirtualClock

from etl4all import frames, sample, sources, state, urls
from etl4all.errors import (
    BudgetExceededError,
    ConfigError,
    GeocodeAuthError,
    GeocodeUnavailableError,
)
from etl4all.parsing import parse
from etl4all.runners.embedded import FAILED_IN_A_ROW, RunSummary, run
from etl4all.settings import Settings
from etl4all.sources.base import FileRef
from etl4all.stages.batching import PointBatch
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


class Recorder:
    """A RunProgress that writes down what it is told."""

    def __init__(self) -> None:
        self.started: list[FileRef] = []
        self.finished: list[FileRef] = []
        self.batches = self.points = self.answers_seen = self.geocoded = 0
        self.file_points: dict[str, int] = {}

    def geocoding(self, batch: PointBatch) -> None:
        self.geocoded += 1

    def files(self, refs: list[FileRef]) -> None:
        self.started.extend(refs)

    def batch(self, batch: PointBatch) -> None:
        self.batches += 1
        self.points += batch.points.height
        self.file_points[batch.ref.name] = (
            self.file_points.get(batch.ref.name, 0) + batch.points.height
        )

    def answers(self, count: int) -> None:
        self.answers_seen += count

    def file(self, ref: FileRef) -> None:
        self.finished.append(ref)


def parsed(folder: Path) -> tuple[int, int]:
    """(points, distinct coordinates at 6 decimals) of the files in ``folder``."""
    points = pl.concat(parse.parse(p.read_bytes(), p.name).points for p in folder.glob("*.txt"))
    keys = points.select(frames.scaled_key(pl.col(c), 6) for c in ("latitude", "longitude"))
    return points.height, keys.unique().height


def test_every_file_is_processed_once_and_reported(settings: Settings, tmp_path: Path) -> None:
    seen = Recorder()
    summary = run(["in"], settings, progress=seen)
    assert summary.files == summary.processed == 3 and summary.skipped == 0
    assert seen.finished == seen.started and len(seen.started) == 3
    assert seen.geocoded == seen.batches  # each batch said so before its answers came
    assert summary.points == parsed(tmp_path / "in")[0] == seen.points
    assert seen.batches == sum(-(-n // 30) for n in seen.file_points.values())  # batch_rows 30
    assert summary.distinct == read_warehouse(settings.warehouse_url).height
    assert summary.repeats == summary.points - summary.distinct
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


def test_a_flaky_coordinate_costs_a_retry_of_its_batch_not_the_run(
    settings: Settings, tmp_path: Path
) -> None:
    one = settings.replace(batch_rows=10_000, max_attempts=2)  # each file is one batch
    first = min((tmp_path / "in").glob("*.txt"))
    flaky = parse.parse(first.read_bytes(), first.name).points.row(0, named=True)
    with FakeApi() as api:
        google = one.replace(
            geocoder="google", google_key=api.key, google_url=api.google_url, qps=500.0
        )
        api.script[coord(flaky["latitude"], flaky["longitude"])] = [503] * 3  # 2 tries + 1
        waits = VirtualClock()
        summary = run(["in"], google, clock=waits)
    _, distinct = parsed(tmp_path / "in")
    assert summary.processed == 3 and summary.set_aside == [] and len(waits.slept) == 1
    assert read_warehouse(one.warehouse_url).height == distinct


def test_a_batch_that_keeps_failing_is_set_aside_and_the_rest_goes_on(
    settings: Settings, tmp_path: Path
) -> None:
    """Issue 8, failure 1: the API unreachable for a coordinate is an error, not a
    `geocode_failed` reject; issue 17, item 5: it costs its batch, not the run."""
    one = settings.replace(batch_rows=10_000, max_attempts=2)  # each file is one batch
    first = min((tmp_path / "in").glob("*.txt"))  # the run's first file
    down = parse.parse(first.read_bytes(), first.name).points.row(0, named=True)
    _, distinct = parsed(tmp_path / "in")
    with FakeApi() as api:
        google = one.replace(
            geocoder="google", google_key=api.key, google_url=api.google_url, qps=500.0
        )
        api.script[coord(down["latitude"], down["longitude"])] = [503] * 6  # 3 tries of 2
        summary = run(["in"], google, clock=VirtualClock())
        (aside,) = summary.set_aside
        assert aside.name == first.name and "google unavailable: gave up on" in aside.reason
        assert summary.processed == 3  # the other two files were loaded and are done
        loaded = read_warehouse(one.warehouse_url).height
        assert 0 < loaded < distinct
        with duckdb.connect(urls.file_path(one.warehouse_url)) as db:
            kept = db.execute(
                "SELECT count(*) FROM reject WHERE source_file = ?", [first.name]
            ).fetchone()
        assert kept == (0,)  # the batch set aside left nothing
        paid = api.calls
        again = run(["in"], google)  # the API is back: the same command finishes the job
        assert (again.processed, again.skipped) == (1, 2) and not again.set_aside
        assert api.calls - paid <= distinct - loaded  # answers of the failed try were kept
    assert read_warehouse(one.warehouse_url).height == distinct


def test_batches_failing_in_a_row_stop_the_run_with_what_was_done(
    settings: Settings, tmp_path: Path
) -> None:
    one = settings.replace(batch_rows=50, max_attempts=1)
    with FakeApi() as api:
        google = one.replace(
            geocoder="google", google_key=api.key, google_url=api.google_url, qps=500.0
        )
        api.go_down()
        summary = RunSummary()
        with pytest.raises(GeocodeUnavailableError):
            run(["in"], google, summary=summary, clock=VirtualClock())
    assert len(summary.set_aside) == FAILED_IN_A_ROW - 1 and summary.seconds > 0


# -- an upload that stalls in the middle of a number (issue 8, item 8) ---------------------

RECORDS = [
    ("30°01′12″S   -30.01986809", "51°11′12″W   -51.18678828", "3.397 km  Bearing: 61.067°"),
    ("30°00′24″S   -30.00657367", "51°15′27″W   -51.25739042", "4.9387 km  Bearing: 309.206°"),
    ("30°02′59″S   -30.04982864", "51°12′05″W   -51.20150245", "2.2959 km  Bearing: 137.352°"),
]


def upload(records: list[tuple[str, str, str]]) -> bytes:
    """The bytes of a file of ``records``, CRLF, ending without a line break."""
    labels = ("Latitude", "Longitude", "Distance")
    lines = [f"{k}: {v}" for r in records for k, v in zip(labels, r, strict=True)]
    return "\r\n".join(lines).encode()


FINISHED = upload(RECORDS)
STALLED = FINISHED[: FINISHED.rindex(b"-51.201") + len(b"-51.201")]


def coordinates(settings: Settings) -> set[tuple[float, float]]:
    table = read_warehouse(settings.warehouse_url)
    return set(table.select(pl.col("latitude", "longitude").round(8)).rows())


def rejects_of(settings: Settings) -> list[tuple[int, str]]:
    with duckdb.connect(urls.file_path(settings.warehouse_url)) as db:
        return db.execute("SELECT source_line, reason FROM reject ORDER BY 1").fetchall()


@pytest.fixture
def stall(tmp_path: Path) -> Settings:
    return Settings(
        warehouse_url=f"duckdb:///{tmp_path}/stall.duckdb",
        state_url=f"sqlite:///{tmp_path}/stall.db",
    )


@pytest.mark.parametrize("where", ["local", "ftp"])
def test_an_upload_stalled_in_a_number_loads_only_the_finished_coordinates(
    stall: Settings, tmp_path: Path, where: str
) -> None:
    folder = tmp_path / "up"
    folder.mkdir()
    path = folder / "data_points_20180101.txt"
    with contextlib.ExitStack() as stack:
        url = str(folder)
        if where == "ftp":
            url = stack.enter_context(FtpTestServer(folder)).url
        path.write_bytes(STALLED)  # the upload pauses in -51.20150245 and the run starts
        first = run([url], stall)
        assert first.partial == 1 and first.load.inserted == 2
        assert (-30.04982864, -51.201) not in coordinates(stall)
        assert run([url], stall).processed == 0  # unchanged, not final: left alone
        path.write_bytes(FINISHED)  # the upload resumes and ends
        second = run([url], stall)
    assert second.processed == 1 and second.partial == 0 and second.load.inserted == 1
    assert coordinates(stall) == set(
        parse.parse(FINISHED, path.name).points.select("latitude", "longitude").rows()
    )
    assert rejects_of(stall) == []


def test_rows_of_a_cut_off_tail_loaded_as_final_are_pruned_when_the_file_grows(
    stall: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "up"
    folder.mkdir()
    path = folder / "f.txt"
    path.write_bytes(STALLED)
    assert run([str(folder)], stall.replace(final_seconds=0)).load.inserted == 3
    assert (-30.04982864, -51.201) in coordinates(stall)  # a stall longer than final_seconds
    path.write_bytes(FINISHED)
    again = run([str(folder)], stall)
    assert again.pruned == 1
    assert coordinates(stall) == {
        (-30.01986809, -51.18678828),
        (-30.00657367, -51.25739042),
        (-30.04982864, -51.20150245),
    }


def test_a_rewritten_file_keeps_no_rows_or_rejects_of_its_earlier_version(
    stall: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "up"
    folder.mkdir()
    (folder / "a.txt").write_bytes(upload(RECORDS[:2]) + b"\r\ngarbage\r\n" + upload(RECORDS[2:]))
    (folder / "b.txt").write_bytes(upload(RECORDS[1:2]))  # shares a coordinate with a.txt
    run([str(folder)], stall)
    assert len(coordinates(stall)) == 3 and rejects_of(stall) == [(7, "unrecognized")]
    (folder / "a.txt").write_bytes(upload(RECORDS[2:]) + b"\r\nx\r\n")
    again = run([str(folder)], stall)
    assert again.pruned == 1  # of the first two records of a.txt, b.txt still holds one
    assert coordinates(stall) == {(-30.04982864, -51.20150245), (-30.00657367, -51.25739042)}
    assert rejects_of(stall) == [(4, "unrecognized")]


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


def test_a_lost_cache_does_not_bill_again_what_the_warehouse_holds(
    settings: Settings, tmp_path: Path
) -> None:
    _, distinct = parsed(tmp_path / "in")
    with FakeApi() as api:
        google = settings.replace(
            geocoder="google", google_key=api.key, google_url=api.google_url, qps=500.0
        )
        run(["in"], google)
        assert api.calls == distinct
        state = Path(urls.file_path(settings.state_url))
        state.unlink()  # the cache and the done marks are gone: every file is new work
        again = run(["in"], google)
        assert again.processed == 3 and again.geocode.cache_hits == distinct
        assert api.calls == distinct  # answered from the warehouse
        with sqlite3.connect(state) as db:  # and put back into the cache
            assert db.execute("SELECT count(*) FROM geocode_cache").fetchone() == (distinct,)
        state.unlink()
        stale = google.replace(cache_ttl_days=1e-9)  # answers older than the TTL are paid again
        run(["in"], stale)
        assert api.calls == 2 * distinct


def test_force_files_redo_only_the_files_named(settings: Settings, tmp_path: Path) -> None:
    run(["in"], settings)
    first = sorted(p.name for p in (tmp_path / "in").glob("*.txt"))[0]
    again = run(["in"], settings.replace(force_files=(first,)))
    assert (again.processed, again.skipped) == (1, 2)
    with pytest.raises(ConfigError, match="--force-file nothing\\* matches no file"):
        run(["in"], settings.replace(force_files=(first, "nothing*")))


def test_a_file_held_by_a_live_worker_is_waited_for_then_named(
    settings: Settings, tmp_path: Path
) -> None:
    sample.write_sample(tmp_path / "held", files=1, points=10, seed=2)
    with sources.from_url("held") as source:
        (ref,) = source.list_files()
    key = f"{urls.redact(settings.warehouse_url)} <- {ref.key}"  # as the extractor scopes it
    with state.from_url(settings.state_url) as ledger:
        token = ledger.claim(key, 600)  # this live process holds it
        assert token
        waiting = VirtualClock()
        started = waiting.monotonic()
        summary = run(["held"], settings, clock=waiting)
        assert summary.processed == 0 and summary.busy == 1
        assert waiting.monotonic() - started >= settings.claim_wait  # waited, in virtual time
        (busy,) = summary.busy_files
        assert busy.name == ref.name and f"claimed by {socket.gethostname()}:{os.getpid()}" in str(
            busy
        )

        released = VirtualClock()
        released.listeners.append(lambda seconds: ledger.release(key, token))
        done = run(["held"], settings, clock=released)
    assert done.processed == 1 and done.busy_files == [] and len(released.slept) == 1


def test_a_run_stopped_by_an_error_leaves_no_claim_and_no_heartbeat(
    settings: Settings, tmp_path: Path
) -> None:
    """Issue 16, finding 6: the embedded driver did not close a file's batches, so after an
    error the lease heartbeat stopped only when the generator was garbage-collected."""
    with FakeApi() as api:
        api.script.update(
            {coord(lat, lon): ["REQUEST_DENIED"] * 9 for lat, lon in first_points(tmp_path)}
        )
        google = settings.replace(
            geocoder="google", google_key=api.key, google_url=api.google_url, qps=500.0
        )
        with pytest.raises(GeocodeAuthError):
            run(["in"], google)
    assert not [t for t in threading.enumerate() if t.name.startswith("lease ")]
    with state.from_url(settings.state_url) as ledger:
        assert ledger.claims() == {}  # released on the way out, not left to expire


def first_points(tmp_path: Path) -> list[tuple[float, float]]:
    """The coordinates of the run's first file."""
    first = min((tmp_path / "in").glob("*.txt"))
    points = parse.parse(first.read_bytes(), first.name).points
    return points.select("latitude", "longitude").rows()


@pytest.mark.parametrize("then", ["restored", "truncated"])
def test_a_version_cut_short_never_outlives_the_next_read(
    settings: Settings, tmp_path: Path, then: str
) -> None:
    """A new version's first batch loads, its second is set aside (the file is not done);
    then the file goes back to the version done, or is cut to a prefix of it (held): the
    rows only the version cut short loaded go either way."""
    folder = tmp_path / "cut"
    folder.mkdir()
    path = folder / "f.txt"
    one = settings.replace(
        batch_rows=1, geocoder="google", qps=500.0, final_seconds=0, max_attempts=1
    )
    loaded = upload(RECORDS[:2])
    with FakeApi() as api:
        google = one.replace(google_key=api.key, google_url=api.google_url)
        path.write_bytes(loaded)
        run([str(folder)], google)
        fresh = ("30°03′00″S   -30.05000000", "51°13′00″W   -51.21666667", "1 km  Bearing: 1°")
        path.write_bytes(upload([RECORDS[2], fresh]))  # a new version
        os.utime(path, (time.time() + 10, time.time() + 10))
        api.script[coord("-30.05000000", "-51.21666667")] = [503] * 30  # its batch 2 fails
        cut = run([str(folder)], google, clock=VirtualClock())
        assert len(cut.set_aside) == 1
        assert (-30.04982864, -51.20150245) in coordinates(google)  # its first batch loaded
        api.script.clear()
        path.write_bytes(loaded if then == "restored" else loaded[: len(loaded) // 2])
        os.utime(path, (time.time() + 20, time.time() + 20))
        after = run([str(folder)], google)
    assert len(after.held) == (then == "truncated")
    assert coordinates(google) == {(-30.01986809, -51.18678828), (-30.00657367, -51.25739042)}
