"""The extract stage: a file's life from listing to its done mark, on a folder and SQLite."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import polars as pl
import pytest
from virtual_clock import VirtualClock

from etl4all import sample
from etl4all.clock import REAL, Clock
from etl4all.closing import Closing
from etl4all.errors import ConfigError
from etl4all.parsing import parse, reading
from etl4all.runners import wiring
from etl4all.settings import Settings
from etl4all.sources.base import FileRef, Source
from etl4all.stages import polling
from etl4all.stages.batching import PointBatch
from etl4all.stages.extract import Extractor
from etl4all.stages.extract_config import ExtractConfig
from etl4all.stages.filework import Item
from etl4all.stages.polling import check_forced
from etl4all.stages.prune import Prune
from etl4all.state.base import FileLedger, FileMark


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "in"


@pytest.fixture
def source(folder: Path) -> Iterator[Source]:
    folder.mkdir(exist_ok=True)
    with wiring.open_source(str(folder), Settings()) as source:
        yield source


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[FileLedger]:
    with wiring.open_state(Settings(state_url=f"sqlite:///{tmp_path}/state.db")) as ledger:
        yield ledger


def extractor(
    source: Source, ledger: FileLedger, clock: Clock = REAL, **config: object
) -> Extractor:
    return Extractor(
        source=source,
        ledger=ledger,
        config=ExtractConfig(scope="duckdb:///t", **config),
        clock=clock,
    )


def work(ex: Extractor, refs: list[FileRef], *, done: bool = False) -> list[Item]:
    """The items of ``refs``'s units of work, each marked done when ``done``."""
    found: list[Item] = []
    for ref in refs:
        with ex.take(ref) as unit:
            for item in unit.items():
                found.append(item)
                if done:
                    unit.done(item)
    return found


def batches(items: list[Item]) -> list[PointBatch]:
    return [item for item in items if isinstance(item, PointBatch)]


def prunes(items: list[Item]) -> list[Prune]:
    return [item for item in items if isinstance(item, Prune)]


def mark(ex: Extractor, name: str) -> FileMark:
    (ref,) = [ref for ref in ex.listing() if ref.name == name]
    return ex.ledger.done([ref.key])[ref.key]


def test_batches_are_chunked_with_deterministic_ids(
    folder: Path, source: Source, ledger: FileLedger
) -> None:
    sample.write_sample(folder, files=1, points=25, seed=3)
    first = work(extractor(source, ledger, batch_rows=10), source.list_files())
    again = work(extractor(source, ledger, batch_rows=10), source.list_files())
    assert [b.points.height for b in batches(first)] == [10, 10, 5]
    assert [item.last for item in first] == [False, False, False, True]
    assert isinstance(first[-1], Prune)  # by keys: a broker delivers in any order
    assert [b.batch_id for b in batches(first)] == [b.batch_id for b in batches(again)]
    assert len({b.batch_id for b in batches(first)}) == 3
    assert batches(first)[0].points["line"][0] < batches(first)[1].points["line"][0]
    assert len({b.version for b in batches(first)}) == 1


def test_an_ordered_driver_gets_a_prune_by_version(
    folder: Path, source: Source, ledger: FileLedger
) -> None:
    sample.write_sample(folder, files=1, points=25, seed=3)
    items = work(extractor(source, ledger, batch_rows=10, ordered=True), source.list_files())
    (prune,) = prunes(items)
    assert prune.keys is None and prune.version == batches(items)[0].version and items[-1] is prune


def test_only_the_last_item_done_marks_the_file_done(
    folder: Path, source: Source, ledger: FileLedger
) -> None:
    sample.write_sample(folder, files=1, points=25, seed=3)
    ex = extractor(source, ledger, batch_rows=10)
    todo = ex.pending(ex.listing())
    with ex.take(todo[0]) as unit:
        items = unit.items()
        unit.done(next(items))
        assert ex.pending(ex.listing()) == todo  # one batch done: the file is not done
        for item in items:
            unit.done(item)
    assert ex.pending(ex.listing()) == []
    assert ex.stats.files == 1 and ex.stats.batches == 3 and ex.stats.points == 25
    assert mark(ex, todo[0].name).points == 25


def test_a_file_left_midway_is_done_again(folder: Path, source: Source, ledger: FileLedger) -> None:
    sample.write_sample(folder, files=1, points=25, seed=3)
    ex = extractor(source, ledger, batch_rows=10)
    (ref,) = ex.pending(ex.listing())
    with ex.take(ref) as unit:
        unit.done(next(unit.items()))  # the driver stopped (error, Ctrl-C) after one batch
    redo = work(ex, ex.pending(ex.listing()))  # the claim was released on the way out
    assert [b.points.height for b in batches(redo)] == [10, 10, 5]


def test_parse_rejects_ride_on_the_first_batch_only(
    folder: Path, source: Source, ledger: FileLedger
) -> None:
    sample.write_sample(folder, files=1, points=25, seed=3, dirty_rate=0.2)
    items = batches(work(extractor(source, ledger, batch_rows=10), source.list_files()))
    assert items[0].rejects.height > 0
    assert all(b.rejects.height == 0 for b in items[1:])
    assert items[0].rejects_id == items[0].batch_id + ".rejects"


def test_a_large_file_is_read_in_pieces_that_give_what_the_whole_file_gives(
    folder: Path, source: Source, ledger: FileLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reading, "MIN_PIECE_BYTES", 0)  # pieces of 10 records' bytes
    (path,) = sample.write_sample(folder, files=1, points=200, seed=3, dirty_rate=0.2)
    whole = parse.parse(path.read_bytes(), path.name)
    ex = extractor(source, ledger, batch_rows=10)
    items = batches(take(ex))
    forced = extractor(source, ledger, batch_rows=10, force_all=True)
    again = batches(work(forced, ex.listing(), done=True))
    assert sum(b.rejects.height > 0 for b in items) > 5  # rejects ride with many pieces
    assert pl.concat([b.points for b in items]).equals(whole.points)
    assert pl.concat([b.rejects for b in items]).equals(whole.rejects)
    assert [b.batch_id for b in items] == [b.batch_id for b in again]
    assert len({b.batch_id for b in items}) == len(items) > 20
    assert sum(b.share for b in items) == pytest.approx(path.stat().st_size)
    assert ex.stats.points == whole.points.height and ex.pending(ex.listing()) == []
    path.write_bytes(b"garbage\n" + sample.render(sample.records(files=1, points=100, seed=4)))
    rewritten = take(ex)
    (prune,) = prunes(rewritten)
    assert prune.keys is not None and prune.keys.height == 100 and len(rewritten) > 5


def test_a_file_without_points_still_gets_one_batch_and_its_prune(
    folder: Path, source: Source, ledger: FileLedger
) -> None:
    (folder / "junk.txt").write_bytes(b"hello\r\nnot a record\r\n")
    ex = extractor(source, ledger)
    only, prune = work(ex, ex.pending(ex.listing()), done=True)
    assert isinstance(only, PointBatch) and isinstance(prune, Prune)
    assert only.points.height == 0 and only.rejects.height == 1 and prune.last  # one record
    assert ex.pending(ex.listing()) == []


def test_a_touched_file_is_not_read_into_batches_again(
    folder: Path, source: Source, ledger: FileLedger
) -> None:
    (path,) = sample.write_sample(folder, files=1, points=5, seed=3)
    ex = extractor(source, ledger)
    take(ex)
    os.utime(path, (time.time() + 60, time.time() + 60))  # same bytes, new mtime
    touched = ex.pending(ex.listing())
    assert len(touched) == 1
    assert work(ex, touched) == []  # content unchanged: only the mark is refreshed
    assert ex.pending(ex.listing()) == []


class Tagged(Closing):
    """``source``'s files with an etag (as an S3 store lists them): ``etag`` when listed."""

    def __init__(self, source: Source) -> None:
        self.source, self.etag = source, '"one"'

    def list_files(self) -> list[FileRef]:
        return [dataclasses.replace(ref, etag=self.etag) for ref in self.source.list_files()]

    def read(self, ref: FileRef) -> bytes:
        return self.source.read(ref)

    def open(self, ref: FileRef) -> BinaryIO:
        return self.source.open(ref)

    def close(self) -> None:
        """The wrapped source is the fixture's to close."""


def test_a_new_etag_at_the_same_size_and_mtime_is_new_work(
    folder: Path, source: Source, ledger: FileLedger
) -> None:
    sample.write_sample(folder, files=1, points=5, seed=3)
    tagged = Tagged(source)
    ex = extractor(tagged, ledger)
    assert len(batches(take(ex))) == 1
    assert ex.pending(ex.listing()) == []  # the mark holds the etag
    tagged.etag = '"two"'  # rewritten within the same second, at the same size
    (ref,) = ex.pending(ex.listing())
    assert work(ex, [ref]) == []  # content unchanged: only the mark is refreshed
    assert ex.pending(ex.listing()) == []


def test_a_file_claimed_by_another_worker_is_left_alone(
    folder: Path, source: Source, ledger: FileLedger
) -> None:
    sample.write_sample(folder, files=1, points=5, seed=3)
    ex = extractor(source, ledger)
    (ref,) = ex.pending(ex.listing())
    assert ledger.claim(ref.key, 60) is not None
    with ex.take(ref) as unit:
        assert unit.status == "busy" and list(unit.items()) == []
        assert unit.holder is not None and unit.holder.holder.expires_in > 50
        assert f"claimed by {socket.gethostname()}:{os.getpid()}" in str(unit.holder)
    assert ex.stats.busy == 1


def test_a_claim_of_a_dead_process_of_this_host_is_taken_at_once(
    folder: Path, source: Source, ledger: FileLedger
) -> None:
    sample.write_sample(folder, files=1, points=5, seed=3)
    ex = extractor(source, ledger)
    (ref,) = ex.pending(ex.listing())
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead = f"{socket.gethostname()}:{child.stdout.strip()}/1.x"  # its pid runs nothing now
    with contextlib.closing(sqlite3.connect(ledger.path)) as db, db:  # type: ignore[attr-defined]
        db.execute("INSERT INTO claims VALUES (?, ?, ?)", (ref.key, dead, time.time() + 60))
    assert ledger.holder(ref.key) is not None
    assert len(batches(work(ex, [ref], done=True))) == 1 and ex.stats.busy == 0
    assert ex.pending(ex.listing()) == []


def test_done_marks_belong_to_one_warehouse(
    folder: Path, source: Source, ledger: FileLedger
) -> None:
    sample.write_sample(folder, files=1, points=5, seed=3)
    ex = extractor(source, ledger)
    take(ex)
    other = Extractor(source=source, ledger=ledger, config=ExtractConfig(scope="mysql://h/db"))
    assert len(other.pending(other.listing())) == 1


def test_a_file_still_growing_is_left_for_a_later_poll(
    folder: Path, source: Source, ledger: FileLedger
) -> None:
    done, growing = sample.write_sample(folder, files=2, points=50, seed=1)
    clock = VirtualClock()
    ex = extractor(source, ledger, clock, once=True, settle_seconds=0.6)

    def upload() -> None:  # another record arrives while the extractor waits
        clock.sleep(0.3)
        with growing.open("ab") as out:
            out.write(
                b"\r\nLatitude: -30.1\r\nLongitude: -51.1\r\nDistance: 1 km  Bearing: 2\xc2\xb0"
            )

    writer = threading.Thread(target=upload)
    writer.start()
    clock.until_waiting(1)
    polls: list[list[FileRef]] = []
    ex.poll(threading.Event(), polls.append)
    assert not writer.is_alive() and clock.slept == [0.6]  # it wrote within the settle time
    (settled,) = polls
    assert [ref.name for ref in settled] == [done.name]
    work(ex, settled, done=True)

    polls.clear()
    ex.poll(threading.Event(), polls.append)
    (later,) = polls  # now it has settled
    assert [ref.name for ref in later] == [growing.name]
    assert sum(b.points.height for b in batches(work(ex, later))) == 51


def test_poll_returns_when_stopped(source: Source, ledger: FileLedger) -> None:
    clock, stop = VirtualClock(), threading.Event()
    started = clock.monotonic()

    def stopper() -> None:
        clock.sleep(0.2)
        stop.set()

    threading.Thread(target=stopper).start()
    clock.until_waiting(1)
    polls: list[list[FileRef]] = []
    extractor(source, ledger, clock, poll_interval=30).poll(stop, polls.append)
    assert polls == []
    assert clock.slept == [30] and clock.monotonic() - started == pytest.approx(0.2)


def test_a_polling_extractor_says_it_is_alive_while_nothing_comes(
    source: Source, ledger: FileLedger, caplog: pytest.LogCaptureFixture
) -> None:
    clock, stop = VirtualClock(), threading.Event()
    started = clock.monotonic()
    polls: list[list[FileRef]] = []

    def work(refs: list[FileRef]) -> None:
        polls.append(refs)
        if len(polls) == 2:
            stop.set()

    with caplog.at_level(logging.INFO, logger="etl4all.stages.extract"):
        interval = polling.HEARTBEAT_SECONDS
        extractor(source, ledger, clock, poll_interval=interval, settle_seconds=0.0).poll(
            stop, work
        )
    beats = [r.getMessage() for r in caplog.records if r.getMessage().startswith("still watching")]
    assert polls == [[], []] and len(beats) == 2 and clock.monotonic() - started == 2 * interval
    assert str(source) in beats[0] and "0 files taken in the last 300 s" in beats[0]


# -- uploads that stall: cut-off last records, partial marks, prunes ------------------------

LAT = "Latitude: 30°02′59″S   -30.04982864"
LON = "Longitude: 51°12′05″W   -51.20150245"
DIST = "Distance: 2.2959 km  Bearing: 137.352°"
FIRST = "\r\n".join(
    ["Latitude: 30°01′12″S   -30.01986809", "Longitude: 51°11′12″W   -51.18678828", DIST]
)
STALLED = (FIRST + "\r\n" + LAT + "\r\n" + LON[:-5]).encode()  # cut in -51.20150245
FINISHED = (FIRST + "\r\n" + LAT + "\r\n" + LON + "\r\n" + DIST).encode()


def write(path: Path, data: bytes, mtime: float) -> None:
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))


def take(ex: Extractor) -> list[Item]:
    """Every item of the pending files, each marked done."""
    return work(ex, ex.pending(ex.listing()), done=True)


def coordinates(items: list[Item]) -> list[tuple[float, float]]:
    rows = (b.points.select("latitude", "longitude").rows() for b in batches(items))
    return [row for part in rows for row in part]


def test_a_stalled_upload_is_read_without_its_cut_off_record(
    folder: Path, source: Source, ledger: FileLedger
) -> None:
    path, clock = folder / "f.txt", VirtualClock(1_700_000_000.0)
    write(path, STALLED, clock.wall() - 15)  # settled, not final
    ex = extractor(source, ledger, clock, final_seconds=300)
    first = take(ex)
    assert coordinates(first) == [(-30.01986809, -51.18678828)]  # no -51.201
    assert batches(first)[0].rejects.is_empty()
    assert mark(ex, "f.txt").partial_since == clock.wall()
    assert ex.stats.partial == 1
    clock.advance(200)
    assert ex.pending(ex.listing()) == []  # unchanged and not final: nothing to do

    write(path, FINISHED, clock.wall())  # the upload resumes and ends
    done = take(ex)
    assert coordinates(done) == [(-30.01986809, -51.18678828), (-30.04982864, -51.20150245)]
    assert mark(ex, "f.txt").partial_since is None
    assert prunes(done) == []  # it only grew: nothing of the first read is stale
    assert ex.pending(ex.listing()) == []


def test_a_partial_record_without_distance_is_read_once_the_file_is_final(
    folder: Path, source: Source, ledger: FileLedger
) -> None:
    path, clock = folder / "f.txt", VirtualClock(1_700_000_000.0)
    write(path, (FIRST + "\r\n" + LAT + "\r\n" + LON).encode(), clock.wall() - 15)
    ex = extractor(source, ledger, clock, final_seconds=300)
    assert len(coordinates(take(ex))) == 1
    clock.advance(284)
    assert ex.pending(ex.listing()) == []
    clock.advance(1)  # 300 s after the last change: final
    final = take(ex)
    assert coordinates(final)[-1] == (-30.04982864, -51.20150245)
    assert mark(ex, "f.txt").partial_since is None and prunes(final) == []
    assert ex.pending(ex.listing()) == []


def test_a_final_file_with_a_cut_off_tail_reads_it_as_it_is(
    folder: Path, source: Source, ledger: FileLedger
) -> None:
    path, clock = folder / "f.txt", VirtualClock(1_700_000_000.0)
    write(path, STALLED, clock.wall() - 300)
    ex = extractor(source, ledger, clock, final_seconds=300)
    assert coordinates(take(ex))[-1] == (-30.04982864, -51.201)  # all the file ever said
    assert mark(ex, "f.txt").partial_since is None


def test_a_file_dated_in_the_future_is_final_by_the_ledgers_time(
    folder: Path, source: Source, ledger: FileLedger
) -> None:
    path, clock = folder / "f.txt", VirtualClock(1_700_000_000.0)
    write(path, STALLED, clock.wall() + 86_400)  # a server clock a day ahead
    ex = extractor(source, ledger, clock, final_seconds=300)
    assert len(coordinates(take(ex))) == 1
    clock.advance(299)
    os.utime(path, (clock.wall() + 86_400, clock.wall() + 86_400))  # touched, same bytes
    assert work(ex, ex.pending(ex.listing())) == []  # still partial, same age
    clock.advance(1)
    assert len(coordinates(take(ex))) == 2


def test_final_seconds_zero_takes_every_file_whole(
    folder: Path, source: Source, ledger: FileLedger
) -> None:
    write(folder / "f.txt", STALLED, time.time())
    ex = extractor(source, ledger, final_seconds=0)
    assert len(coordinates(take(ex))) == 2 and mark(ex, "f.txt").partial_since is None


def test_a_rewritten_file_carries_a_prune_of_its_new_version(
    folder: Path, source: Source, ledger: FileLedger
) -> None:
    path, clock = folder / "f.txt", VirtualClock(1_700_000_000.0)
    write(path, FINISHED, clock.wall() - 400)
    ex = extractor(source, ledger, clock, batch_rows=1, final_seconds=300)
    first = take(ex)
    write(path, (LAT + "\r\n" + LON + "\r\nx\r\n").encode(), clock.wall() - 300)
    items = take(ex)
    assert [type(item) for item in items] == [PointBatch, Prune]  # the prune ends the file
    (prune,) = prunes(items)
    assert prune.source == "f.txt" and prune.keys is not None
    assert prune.keys.rows() == [(-30.04982864, -51.20150245)]
    assert prune.version > prunes(first)[0].version
    assert ex.stats.pruned == 1


def test_a_final_cut_off_tail_that_grows_later_is_pruned(
    folder: Path, source: Source, ledger: FileLedger
) -> None:
    path, clock = folder / "f.txt", VirtualClock(1_700_000_000.0)
    write(path, STALLED, clock.wall() - 300)  # final: -51.201 is read
    ex = extractor(source, ledger, clock, final_seconds=300)
    take(ex)
    write(path, FINISHED, clock.wall())  # the upload resumed after all
    (prune,) = prunes(take(ex))  # its -51.201 must go
    assert prune.keys is not None and (-30.04982864, -51.201) not in prune.keys.rows()


def test_a_file_that_grew_between_listing_and_reading_needs_no_prune_later(
    folder: Path, source: Source, ledger: FileLedger
) -> None:
    path, clock = folder / "f.txt", VirtualClock(1_700_000_000.0)
    write(path, FIRST.encode(), clock.wall() - 15)
    ex = extractor(source, ledger, clock, final_seconds=300)
    listed = ex.pending(ex.listing())
    write(path, STALLED, clock.wall() - 10)  # more arrives before the file is read
    work(ex, listed, done=True)
    write(path, FINISHED, clock.wall())
    last = take(ex)
    assert prunes(last) == [] and len(coordinates(last)) == 2


def test_a_forced_file_is_redone_whatever_its_mark_says(
    folder: Path, source: Source, ledger: FileLedger
) -> None:
    first, second = sample.write_sample(folder, files=2, points=5, seed=3)
    ex = extractor(source, ledger)
    take(ex)
    forced = extractor(source, ledger, force_files=(first.name,))
    todo = forced.pending(forced.listing())
    assert [ref.name for ref in todo] == [first.name]
    items = work(forced, todo)
    assert sum(b.points.height for b in batches(items)) == 5 and forced.stats.files == 1
    assert prunes(items) == []  # the same content: nothing to prune
    every = extractor(source, ledger, force_all=True)
    assert [ref.name for ref in every.pending(every.listing())] == [first.name, second.name]


def test_a_forced_file_claimed_by_another_worker_is_still_left_alone(
    folder: Path, source: Source, ledger: FileLedger
) -> None:
    sample.write_sample(folder, files=1, points=5, seed=3)
    ex = extractor(source, ledger, force_all=True)
    (ref,) = ex.pending(ex.listing())
    assert ledger.claim(ref.key, 60) is not None
    assert work(ex, [ref]) == [] and ex.stats.busy == 1


def test_force_file_globs_must_match_a_file(folder: Path, source: Source) -> None:
    (path,) = sample.write_sample(folder, files=1, points=5, seed=3)
    refs = source.list_files()
    check_forced(("data_points_*.txt", path.name), refs)
    with pytest.raises(ConfigError, match=r"--force-file typo\.txt matches no file"):
        check_forced((path.name, "typo.txt"), refs)


def test_a_poller_refuses_to_force(source: Source, ledger: FileLedger) -> None:
    found: list[list[FileRef]] = []
    with pytest.raises(ConfigError, match="--once"):
        extractor(source, ledger, force_all=True).poll(threading.Event(), found.append)
    with pytest.raises(ConfigError, match="matches no file"):
        once = extractor(source, ledger, force_files=("x*",), once=True, settle_seconds=0)
        once.poll(threading.Event(), found.append)
    assert found == []


# -- a shrink to a prefix of the version loaded is held ---------------------------------------


@pytest.mark.parametrize("keep", [0, 0.5], ids=["emptied", "half-uploaded"])
def test_a_file_cut_to_a_prefix_is_held_with_its_rows(
    folder: Path, source: Source, ledger: FileLedger, keep: float
) -> None:
    (path,) = sample.write_sample(folder, files=1, points=20, seed=3)
    whole = path.read_bytes()
    ex = extractor(source, ledger)
    take(ex)
    write(path, whole[: int(len(whole) * keep)], time.time())  # fresh: a transfer that failed
    (ref,) = ex.pending(ex.listing())
    with ex.take(ref) as unit:
        assert unit.status == "held" and list(unit.items()) == []
        assert unit.held is not None and unit.held.loaded_points == 20
        assert f"--accept-shrink '{path.name}'" in str(unit.held)
    assert ex.stats.held == [unit.held]
    assert ex.pending(ex.listing()) == [ref]  # not done: offered again until resolved
    write(path, whole, time.time() + 5)  # the upload, whole again: the same content
    assert work(ex, ex.pending(ex.listing()), done=True) == []
    assert ex.pending(ex.listing()) == []


def test_a_shrink_named_by_accept_shrink_is_pruned(
    folder: Path, source: Source, ledger: FileLedger
) -> None:
    (path,) = sample.write_sample(folder, files=1, points=20, seed=3)
    take(extractor(source, ledger))
    write(path, b"", time.time())
    accepting = extractor(source, ledger, accept_shrink=("data_points_*",))
    items = take(accepting)
    assert [type(item) for item in items] == [PointBatch, Prune] and accepting.stats.held == []


def test_a_shrink_that_is_not_a_prefix_is_a_new_version(
    folder: Path, source: Source, ledger: FileLedger
) -> None:
    (path,) = sample.write_sample(folder, files=1, points=30, seed=3)
    lines = path.read_bytes().split(b"\r\n")
    ex = extractor(source, ledger)
    take(ex)
    shorter = lines[:6] + lines[9:-3]  # one record dropped near the start, one at the end
    write(path, b"\r\n".join(shorter), time.time())
    items = take(ex)
    assert ex.stats.held == [] and len(prunes(items)) == 1
    assert sum(b.points.height for b in batches(items)) == 28
