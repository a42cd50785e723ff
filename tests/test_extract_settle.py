"""The extractor takes a file only once it has settled (not while it is being uploaded)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from etl4all import sample
from etl4all.broker.memory import MemoryBroker
from etl4all.services import run_extract
from etl4all.settings import Settings
from etl4all.state.sqlite import SqliteState


def test_a_file_still_growing_is_left_for_a_later_poll(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    done, growing = sample.write_sample(folder, files=2, points=50, seed=1)
    settings = Settings.load(
        environ={},
        overrides={
            "source_url": str(folder),
            "once": True,
            "settle_seconds": 0.6,
            "state_url": f"sqlite:///{tmp_path}/state.db",
        },
    )
    stop = threading.Event()

    def upload() -> None:  # another record arrives while the extractor waits
        time.sleep(0.3)
        with growing.open("ab") as out:
            out.write(b"\r\nLatitude: -30.1\r\nLongitude: -51.1")

    writer = threading.Thread(target=upload)
    with MemoryBroker() as bus, SqliteState(url=settings.state_url) as store:
        writer.start()
        stats = run_extract(settings, stop, bus=bus, store=store)
        writer.join()
        assert stats.files == 1
        points = bus.topology.points
        assert [d.headers["source"] for d in bus.consume(points, timeout=0.1)] == [done.name]

        later = run_extract(settings, stop, bus=bus, store=store)  # now it has settled
        assert later.files == 1 and later.points == 51
