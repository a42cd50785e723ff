"""File leases: short, kept alive by a heartbeat; a dead holder's taken over at once.

The tests run in virtual time (:mod:`virtual_clock`): the lease, its heartbeat and the
ledger's expiries (SQLite's clock, Redis's TTLs aged by :mod:`redis_time`) follow one clock
that the test moves, so a lease lasts its default 30 s and no test waits.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis_time import following
from tcp_proxy import TcpProxy
from virtual_clock import VirtualClock

from etl4all import sample, state
from etl4all.runners import wiring
from etl4all.settings import Settings
from etl4all.sources.base import FileRef, Source
from etl4all.stages.batching import PointBatch
from etl4all.stages.extract import Extractor
from etl4all.stages.extract_config import ExtractConfig
from etl4all.stages.lease import BEATS_PER_LEASE, Lease
from etl4all.state.base import FileLedger

LEASE = 30.0
BEAT = LEASE / BEATS_PER_LEASE


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "in"
    path.mkdir()
    return path


@pytest.fixture
def source(folder: Path) -> Iterator[Source]:
    with wiring.open_source(str(folder), Settings()) as source:
        yield source


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def state_url(request: pytest.FixtureRequest, tmp_path: Path, clock: VirtualClock) -> Iterator[str]:
    """A ledger whose expiries follow ``clock``."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/state.db"
        return
    url = str(request.getfixturevalue("redis_url"))
    with following(clock, url):
        yield url


def open_ledger(url: str, clock: VirtualClock) -> FileLedger:
    return state.from_url(url, **({"clock": clock} if url.startswith("sqlite") else {}))


def extractor(
    source: Source, ledger: FileLedger, clock: VirtualClock, **config: object
) -> Extractor:
    config = {"batch_rows": 10, "lease_seconds": LEASE, **config}
    return Extractor(
        source=source, ledger=ledger, config=ExtractConfig(scope="t", **config), clock=clock
    )


def only_file(ex: Extractor) -> FileRef:
    (ref,) = ex.pending(ex.listing())
    return ref


def points_of(ex: Extractor, ref: FileRef) -> list[int]:
    """The points of each batch of ``ref``'s unit of work, every item marked done."""
    sizes = []
    with ex.take(ref) as work:
        for item in work.items():
            if isinstance(item, PointBatch):
                sizes.append(item.points.height)
            work.done(item)
    return sizes


def test_a_slow_file_keeps_its_claim_for_longer_than_a_lease(
    folder: Path, source: Source, state_url: str, clock: VirtualClock
) -> None:
    sample.write_sample(folder, files=1, points=30, seed=1)  # 3 batches
    with open_ledger(state_url, clock) as ledger, open_ledger(state_url, clock) as other_ledger:
        slow, rival = extractor(source, ledger, clock), extractor(source, other_ledger, clock)
        ref = only_file(slow)
        stolen: list[int] = []
        finished = threading.Event()

        def try_to_steal() -> None:
            while not clock.wait(finished, LEASE / 10):
                stolen.extend(points_of(rival, ref))

        thief = threading.Thread(target=try_to_steal)
        sizes = []
        with slow.take(ref) as work:
            for item in work.items():
                if not thief.is_alive():
                    thief.start()
                    clock.until_waiting(2)  # the thief and the heartbeat
                clock.sleep(1.5 * LEASE)  # each batch takes longer downstream than a lease
                if isinstance(item, PointBatch):
                    sizes.append(item.points.height)
                work.done(item)
        finished.set()
        thief.join()
    assert sizes == [10, 10, 10] and slow.pending(slow.listing()) == []
    assert stolen == [] and rival.stats.busy > 10


def test_a_claim_taken_over_stops_the_file(
    folder: Path,
    source: Source,
    redis_url: str,
    clock: VirtualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sample.write_sample(folder, files=1, points=80, seed=1)
    client = redis.Redis.from_url(redis_url.split("?")[0])
    prefix = redis_url.split("prefix=")[1]
    with open_ledger(redis_url, clock) as ledger:
        ex = extractor(source, ledger, clock)
        ref = only_file(ex)
        with ex.take(ref) as work:
            items = work.items()
            work.done(next(items))
            # The lease ran out (a long GC pause, a frozen VM) and another worker took the file.
            client.set(f"{prefix}claim:{ref.key}", "another-worker", px=60_000)
            clock.until_waiting(1)
            clock.sleep(BEAT)  # a heartbeat renewal finds it gone
            rest = list(items)
    client.close()
    assert rest == []
    assert ex.pending(ex.listing()) == [ref]  # not done: the other worker finishes it
    assert "lost the claim on file=" in caplog.text


def test_a_lease_not_renewed_for_a_whole_lease_is_lost(
    redis_url: str, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The store is unreachable: the lease may have run out, so the holder stops."""
    with TcpProxy.to_url(redis_url) as proxy, open_ledger(proxy.url(redis_url), clock) as ledger:
        lease = Lease.take(ledger, "file", LEASE, name="file", clock=clock)
        assert lease is not None
        with lease:
            clock.until_waiting(1)
            clock.sleep(2 * LEASE)
            assert not lease.lost  # the heartbeat renews it
            proxy.cut()
            clock.sleep(LEASE - BEAT)  # two renewals fail
            assert not lease.lost
            assert caplog.text.count("could not renew the claim on file=file") == 2
            clock.sleep(BEAT)  # the third: a whole lease since the last renewal
            assert lease.lost
            proxy.restore()


def test_a_lease_is_released_when_its_file_ends(
    folder: Path, source: Source, state_url: str, clock: VirtualClock
) -> None:
    sample.write_sample(folder, files=1, points=15, seed=1)
    with open_ledger(state_url, clock) as ledger:
        ex = extractor(source, ledger, clock)
        ref = only_file(ex)
        before = set(threading.enumerate())
        with ex.take(ref) as work:
            next(work.items())
            assert ledger.claim(ref.key, LEASE) is None
            started = set(threading.enumerate()) - before
            heartbeats = [t for t in started if t.name.startswith("lease")]
            assert len(heartbeats) == 1
        assert ledger.claim(ref.key, LEASE) is not None
        assert not heartbeats[0].is_alive()


HOLDER = textwrap.dedent(
    """
    import signal, sys
    from etl4all.runners import wiring
    from etl4all.settings import Settings
    from etl4all.stages.extract import Extractor
    from etl4all.stages.extract_config import ExtractConfig

    folder, url, lease = sys.argv[1], sys.argv[2], float(sys.argv[3])
    source = wiring.open_source(folder, Settings())
    ledger = wiring.open_state(Settings(state_url=url))
    config = ExtractConfig(scope="t", batch_rows=10, lease_seconds=lease)
    ex = Extractor(source=source, ledger=ledger, config=config)
    (ref,) = ex.pending(ex.listing())
    work = ex.take(ref).__enter__()
    next(work.items())
    print("claimed", flush=True)
    signal.pause()  # working on the first batch until killed
    """
)


def test_a_killed_extractors_file_is_taken_over_at_once(
    folder: Path,
    source: Source,
    state_url: str,
    clock: VirtualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The holder is another process, on the real clock: its claim of a whole lease is
    taken while it still holds (before it expires), as soon as the process has ended."""
    caplog.set_level(logging.INFO)
    sample.write_sample(folder, files=1, points=30, seed=1)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(folder), state_url, str(LEASE)],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "claimed\n"
        with wiring.open_state(Settings(state_url=state_url)) as ledger:
            ex = extractor(source, ledger, clock)
            ref = only_file(ex)
            assert points_of(ex, ref) == [] and ex.stats.busy == 1  # the live holder keeps it
            holder.send_signal(signal.SIGKILL)
            holder.wait(timeout=30)
            held = ledger.holder(ref.key)
            taken = points_of(ex, ref)  # the holder is a dead process of this host
    finally:
        holder.kill()
        holder.wait()
    assert held is not None and held.expires_in > 0  # not expired: taken over
    assert taken == [10, 10, 10]
    assert "a process that has ended; taken over" in caplog.text
    assert ex.pending(ex.listing()) == []
