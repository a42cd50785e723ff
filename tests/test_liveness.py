"""What counts as progress for the liveness probe (:mod:`etl4all.liveness`), in virtual time:
each geocoding answer, each piece of a file downloaded (each turn of a worker's loop:
tests/stages/test_worker.py)."""

from __future__ import annotations

import contextlib

import pytest
from virtual_clock import VirtualClock

from etl4all import liveness
from etl4all.geocoders.outcomes import Failed, RunState
from etl4all.liveness import Liveness
from etl4all.sources.base import Downloading, FileRef, Writes


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> VirtualClock:
    """A virtual clock that the process's liveness record reads."""
    clock = VirtualClock()
    monkeypatch.setattr(liveness, "PROCESS", Liveness(clock))
    return clock


def test_each_geocoding_answer_is_progress(clock: VirtualClock) -> None:
    state = RunState()
    clock.sleep(300)
    state.add(-30.0, -51.0, Failed("REQUEST_DENIED", "no"), "google")
    assert liveness.PROCESS.silent_for() == 0


def test_each_piece_of_a_download_is_progress(clock: VirtualClock) -> None:
    silences: list[float] = []

    class Slow(Downloading):
        """Three pieces a minute apart, as a big file on a slow link."""

        def _fetch(self, ref: FileRef, local: Writes) -> None:
            for _ in range(3):
                clock.sleep(60)
                silences.append(liveness.PROCESS.silent_for())
                local.write(b"x" * 10)
                silences.append(liveness.PROCESS.silent_for())

        def _errors(self, action: str) -> contextlib.AbstractContextManager[None]:
            return contextlib.nullcontext()

    with Slow().open(FileRef(key="k", name="f.txt", size=30, mtime=0.0)) as local:
        assert local.read() == b"x" * 30
    assert silences == [60, 0, 60, 0, 60, 0]
