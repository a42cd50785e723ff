"""Fault scenario: a file still being uploaded over FTP while the extractor polls.

The file is sent with ``STOR`` in small chunks with pauses shorter than the settle time, and
once stalls for longer than the settle time (and two listings) in the middle of a longitude:
the server holds ``... -51.2015`` while the record ends in ``-51.20150245``. The truncated
value still agrees with the DMS text, so only the upload's state tells it apart. Whatever the
extractor takes meanwhile, the warehouse must end with exactly the coordinates of the final
file: no row that exists only in a partial version of it.
"""

from __future__ import annotations

import ftplib
import re
import threading
import time
from pathlib import Path

from harness import MARKS, Pipeline, write_files
from sources.ftp_server import PASSWORD, USER

pytestmark = MARKS

SETTLE = 1.0
"""The extractor's settle time in this scenario (seconds)."""
STALL = 4 * SETTLE
"""The stall in the middle of a number: several listings see the file unchanged."""
PAUSE = 0.2 * SETTLE
"""The pauses between chunks: shorter than the settle time."""
CHUNK = 2048


class SlowUpload:
    """A file object for ``storbinary``: ``data`` in chunks with pauses, one long stall at
    ``stall_at``."""

    def __init__(self, data: bytes, stall_at: int) -> None:
        self.data = data
        self.stall_at = stall_at
        self.position = 0
        self.stalled = False

    def read(self, size: int) -> bytes:
        """The next chunk (never across the stall point), after its pause or the stall."""
        if self.position == self.stall_at and not self.stalled:
            self.stalled = True
            time.sleep(STALL)
        elif self.position:
            time.sleep(PAUSE)
        end = min(self.position + min(size, CHUNK), len(self.data))
        if self.position < self.stall_at < end:
            end = self.stall_at
        chunk = self.data[self.position : end]
        self.position = end
        return chunk


def cut_in_a_longitude(data: bytes) -> int:
    """A position in the middle of the file, after the 4th decimal of a longitude."""
    numbers = list(re.finditer(rb"Longitude:[^\r\n]*?(-?\d+\.\d{8})\r?\n", data))
    number = numbers[len(numbers) // 2]
    return number.start(1) + number.group(1).index(b".") + 5


def upload(port: int, name: str, source: SlowUpload, errors: list[BaseException]) -> None:
    """Send ``source`` as ``name`` to the test FTP server (errors go to ``errors``)."""
    try:
        with ftplib.FTP() as ftp:
            ftp.connect("127.0.0.1", port, timeout=30)
            ftp.login(USER, PASSWORD)
            ftp.storbinary(f"STOR {name}", source, blocksize=CHUNK)  # type: ignore[arg-type]
    except BaseException as exc:  # reported by the test thread
        errors.append(exc)


def test_a_file_still_being_uploaded_with_a_stall_in_a_number(pipeline: Pipeline) -> None:
    pipeline.env["ETL4ALL_SETTLE_SECONDS"] = str(SETTLE)
    pipeline.put_files(files=3, points=300, seed=81)
    (final,) = write_files(
        pipeline.root / "upload", prefix="up", files=1, points=400, seed=82, dirty_rate=0.0
    )
    data = final.read_bytes()
    stall_at = cut_in_a_longitude(data)
    pipeline.start()
    source = SlowUpload(data, stall_at)
    errors: list[BaseException] = []
    uploader = threading.Thread(
        target=upload, args=(pipeline.ftp.port, final.name, source, errors), daemon=True
    )
    uploader.start()
    pipeline.wait_for("the upload to finish", lambda: not uploader.is_alive(), 60)
    assert not errors, errors
    assert source.stalled and (pipeline.folder / final.name).read_bytes() == data
    pipeline.drain()
    figures = pipeline.verify()
    held = data[stall_at - 8 : stall_at].decode().split()[-1]
    pipeline.report(
        f"stall={STALL:.0f}s at={held}|{data[stall_at : stall_at + 4].decode()} "
        f"extracted={_parsed(pipeline, final.name)}× {figures}"
    )


def _parsed(pipeline: Pipeline, name: str) -> int:
    """How many times the extractors parsed the file ``name``."""
    assert pipeline.fleet is not None
    logs = Path(pipeline.fleet.logs).glob("extract-*.log")
    return sum(log.read_text().count(f"parsed file={name} ") for log in logs)
