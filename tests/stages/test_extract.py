"""The extract stage: a file's life from listing to its done mark, on a folder and SQLite."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from etl4all import sample
from etl4all.errors import ConfigError
from etl4all.runners import wiring
from etl4all.settings import Settings
from etl4all.sources.base import Source
from etl4all.stages.extract import ExtractConfig, Extractor, check_forced
from etl4all.state.base import FileLedger


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


def extractor(source: Source, ledger: FileLedger, **config: object) -> Extractor:
    return Extractor(
        source=source, ledger=ledger, config=ExtractConfig(scope="duckdb:///t", **config)
    )


def test_batches_are_chunked_with_deterministic_ids(
    folder: Path, source: Source, ledger: FileLedger
) -> None:
    sample.write_sample(folder, files=1, points=25, seed=3)
    first = list(extractor(source, ledger, batch_rows=10).batches(source.list_files()))
    again = list(extractor(source, ledger, batch_rows=10).batches(source.list_files()))
    assert [b.points.height for b in first] == [10, 10, 5]
    assert [b.last for b in first] == [False, False, True]
    assert [b.batch_id for b in first] == [b.batch_id for b in again]
    assert len({b.batch_id for b in first}) == 3
    assert first[0].points.get_column("line").to_list()[0] < first[1].points["line"][0]


def test_only_the_last_commit_marks_the_file_done(
    folder: Path, source: Source, ledger: FileLedger
) -> None:
    sample.write_sample(folder, files=1, points=25, seed=3)
    ex = extractor(source, ledger, batch_rows=10)
    todo = ex.pending(ex.listing())
    items = ex.batches(todo)
    first = next(items)
    first.commit()
    assert ex.pending(ex.listing()) == todo  # one batch committed: the file is not done
    for item in items:
        item.commit()
    assert ex.pending(ex.listing()) == []
    assert ex.stats.files == 1 and ex.stats.batches == 3 and ex.stats.points == 25


def test_a_file_left_midway_is_done_again(folder: Path, source: Source, ledger: FileLedger) -> None:
    sample.write_sample(folder, files=1, points=25, seed=3)
    ex = extractor(source, ledger, batch_rows=10)
    items = ex.batches(ex.pending(ex.listing()))
    next(items).commit()
    items.close()  # the driver stopped (error, Ctrl-C): the claim is released
    redo = list(ex.batches(ex.pending(ex.listing())))
    assert [b.points.height for b in redo] == [10, 10, 5]


def test_parse_rejects_ride_on_the_first_batch_only(
    folder: Path, source: Source, ledger: FileLedger
) -> None:
    sample.write_sample(folder, files=1, points=25, seed=3, dirty_rate=0.2)
    items = list(extractor(source, ledger, batch_rows=10).batches(source.list_files()))
    assert items[0].rejects.height > 0
    assert all(b.rejects.height == 0 for b in items[1:])
    assert items[0].rejects_id == items[0].batch_id + ".rejects"


def test_a_file_without_points_still_gets_one_batch_to_commit(
    folder: Path, source: Source, ledger: FileLedger
) -> None:
    (folder / "junk.txt").write_bytes(b"hello\r\nnot a record\r\n")
    ex = extractor(source, ledger)
    (only,) = list(ex.batches(ex.pending(ex.listing())))
    assert only.points.height == 0 and only.rejects.height == 2 and only.last
    only.commit()
    assert ex.pending(ex.listing()) == []


def test_a_touched_file_is_not_read_into_batches_again(
    folder: Path, source: Source, ledger: FileLedger
) -> None:
    (path,) = sample.write_sample(folder, files=1, points=5, seed=3)
    ex = extractor(source, ledger)
    for item in ex.batches(ex.pending(ex.listing())):
        item.commit()
    os.utime(path, (time.time() + 60, time.time() + 60))  # same bytes, new mtime
    touched = ex.pending(ex.listing())
    assert len(touched) == 1
    assert list(ex.batches(touched)) == []  # content unchanged: only the mark is refreshed
    assert ex.pending(ex.listing()) == []


def test_a_file_claimed_by_another_worker_is_left_alone(
    folder: Path, source: Source, ledger: FileLedger
) -> None:
    sample.write_sample(folder, files=1, points=5, seed=3)
    ex = extractor(source, ledger)
    (ref,) = ex.pending(ex.listing())
    assert ledger.claim(ref.key, 60) is not None
    assert list(ex.batches([ref])) == []
    assert ex.stats.busy == 1


def test_done_marks_belong_to_one_warehouse(
    folder: Path, source: Source, ledger: FileLedger
) -> None:
    sample.write_sample(folder, files=1, points=5, seed=3)
    ex = extractor(source, ledger)
    for item in ex.batches(ex.pending(ex.listing())):
        item.commit()
    other = Extractor(source=source, ledger=ledger, config=ExtractConfig(scope="mysql://h/db"))
    assert len(other.pending(other.listing())) == 1


def test_a_file_still_growing_is_left_for_a_later_poll(
    folder: Path, source: Source, ledger: FileLedger
) -> None:
    done, growing = sample.write_sample(folder, files=2, points=50, seed=1)
    ex = extractor(source, ledger, once=True, settle_seconds=0.6)

    def upload() -> None:  # another record arrives while the extractor waits
        time.sleep(0.3)
        with growing.open("ab") as out:
            out.write(b"\r\nLatitude: -30.1\r\nLongitude: -51.1")

    writer = threading.Thread(target=upload)
    writer.start()
    (settled,) = list(ex.poll(threading.Event()))
    writer.join()
    assert [ref.name for ref in settled] == [done.name]
    for item in ex.batches(settled):
        item.commit()

    (later,) = list(ex.poll(threading.Event()))  # now it has settled
    assert [ref.name for ref in later] == [growing.name]
    assert sum(b.points.height for b in ex.batches(later)) == 51


def test_poll_returns_when_stopped(source: Source, ledger: FileLedger) -> None:
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    assert list(extractor(source, ledger, poll_interval=30).poll(stop)) == []
    assert time.monotonic() - started < 5


def test_a_forced_file_is_redone_whatever_its_mark_says(
    folder: Path, source: Source, ledger: FileLedger
) -> None:
    first, second = sample.write_sample(folder, files=2, points=5, seed=3)
    ex = extractor(source, ledger)
    for item in ex.batches(ex.pending(ex.listing())):
        item.commit()
    forced = extractor(source, ledger, force_files=(first.name,))
    todo = forced.pending(forced.listing())
    assert [ref.name for ref in todo] == [first.name]
    items = list(forced.batches(todo))
    assert sum(b.points.height for b in items) == 5 and forced.stats.files == 1
    every = extractor(source, ledger, force_all=True)
    assert [ref.name for ref in every.pending(every.listing())] == [first.name, second.name]


def test_a_forced_file_claimed_by_another_worker_is_still_left_alone(
    folder: Path, source: Source, ledger: FileLedger
) -> None:
    sample.write_sample(folder, files=1, points=5, seed=3)
    ex = extractor(source, ledger, force_all=True)
    (ref,) = ex.pending(ex.listing())
    assert ledger.claim(ref.key, 60) is not None
    assert list(ex.batches([ref])) == [] and ex.stats.busy == 1


def test_force_file_globs_must_match_a_file(folder: Path, source: Source) -> None:
    (path,) = sample.write_sample(folder, files=1, points=5, seed=3)
    refs = source.list_files()
    check_forced(("data_points_*.txt", path.name), refs)
    with pytest.raises(ConfigError, match=r"--force-file typo\.txt matches no file"):
        check_forced((path.name, "typo.txt"), refs)


def test_a_poller_refuses_to_force(source: Source, ledger: FileLedger) -> None:
    with pytest.raises(ConfigError, match="--once"):
        list(extractor(source, ledger, force_all=True).poll(threading.Event()))
    with pytest.raises(ConfigError, match="matches no file"):
        once = extractor(source, ledger, force_files=("x*",), once=True, settle_seconds=0)
        list(once.poll(threading.Event()))
