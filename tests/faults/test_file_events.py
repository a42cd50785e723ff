"""Fault scenarios over a file's life: replaced, truncated, re-uploaded, and a killed run.

- A loaded file is replaced by a version that drops every 7th record (coordinates three later
  files also hold) and adds 100; the loader is killed right after its first commit of the new
  version's work (prune parts and batches arrive in any order). The warehouse must end with
  exactly the coordinates of the files as they are: the dropped ones that other files hold
  stay, the others go.
- A loaded file is re-uploaded over FTP and the transfer fails halfway (a strict prefix of the
  version loaded): the extractor holds it, the rows stay; the whole upload then leaves the
  warehouse as it was.
- ``etl4all run`` on the FTP source, Redis and MariaDB is killed with SIGKILL mid-file and run
  again at once: the rerun takes the dead process's claim and finishes the job.
"""

from __future__ import annotations

import ftplib
import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import polars as pl
from harness import MARKS, Pipeline, write_files
from sources.ftp_server import PASSWORD, USER

from etl4all.parsing import parse

pytestmark = MARKS


def records(path: Path) -> list[bytes]:
    """The records of a sample file (three CRLF lines each, the last without a line break)."""
    lines = path.read_bytes().split(b"\r\n")
    return [b"\r\n".join(lines[i : i + 3]) for i in range(0, len(lines), 3)]


def test_a_replaced_file_keeps_what_other_files_hold_with_the_loader_killed(
    pipeline: Pipeline,
) -> None:
    files = write_files(pipeline.folder, prefix="f", files=5, points=300, seed=61, dirty_rate=0.0)
    replaced, later = files[1], files[2:]
    old = records(replaced)
    dropped = old[::7]
    for path in later:  # each later file also holds every 7th record of the one replaced
        path.write_bytes(path.read_bytes() + b"\r\n" + b"\r\n".join(dropped))
    pipeline.start()
    pipeline.drain()
    pipeline.verify()
    before = pipeline.rows()

    (extra,) = write_files(
        pipeline.root / "extra", prefix="x", files=1, points=100, seed=62, dirty_rate=0.0
    )
    new = [r for i, r in enumerate(old) if i % 7] + records(extra)
    fleet = pipeline.start()
    (loader,) = fleet.of("load")
    fleet.pause(loader)
    try:
        staged = replaced.with_suffix(".part")
        staged.write_bytes(b"\r\n".join(new))
        os.replace(staged, replaced)
        pipeline.wait_for(
            "the new version's prune and batches to wait for the loader",
            lambda: pipeline.probe.depths()["addresses"] >= 2,
            60,
        )
        rows = pipeline.rows()
    finally:
        fleet.resume(loader)
    pipeline.wait_for("the loader to commit", lambda: pipeline.rows() != rows, 60, poll=0.005)
    fleet.kill(loader)
    pipeline.drain()
    figures = pipeline.verify()  # exactly the files' coordinates: the dropped ones stay
    kept = pl.concat([parse.parse(r, "x").points for r in dropped]).height
    pipeline.report(f"rows_before={before} dropped_but_held_elsewhere={kept} {figures}")


def test_a_truncated_re_upload_over_ftp_is_held_then_whole_again(pipeline: Pipeline) -> None:
    files = pipeline.put_files(files=3, points=300, seed=63)
    pipeline.start()
    pipeline.drain()
    pipeline.verify()
    rows = pipeline.rows()

    whole = files[0].read_bytes()
    fleet = pipeline.start()
    with ftplib.FTP() as ftp:  # the transfer fails halfway: the server keeps what came
        ftp.connect("127.0.0.1", pipeline.ftp.port, timeout=30)
        ftp.login(USER, PASSWORD)
        ftp.storbinary(f"STOR {files[0].name}", io.BytesIO(whole[: len(whole) // 2]))
    (extractor,) = fleet.of("extract")
    pipeline.wait_for(
        "the extractor to hold the file", lambda: "held file=" in extractor.output(), 60
    )
    assert pipeline.rows() == rows  # nothing pruned
    assert f"--accept-shrink '{files[0].name}'" in extractor.output()
    with ftplib.FTP() as ftp:  # uploaded again, whole
        ftp.connect("127.0.0.1", pipeline.ftp.port, timeout=30)
        ftp.login(USER, PASSWORD)
        ftp.storbinary(f"STOR {files[0].name}", io.BytesIO(whole))
    pipeline.drain()
    figures = pipeline.verify()
    assert pipeline.rows() == rows
    pipeline.report(f"held_at={len(whole) // 2}/{len(whole)} bytes {figures}")


def test_run_killed_with_sigkill_is_rerun_at_once(pipeline: Pipeline) -> None:
    pipeline.put_files(files=2, points=600, seed=64)
    pipeline.api.latency = 0.02
    env = {**os.environ, **pipeline.env, "ETL4ALL_QPS": "100", "ETL4ALL_BATCH_ROWS": "100000"}
    del env["ETL4ALL_BROKER_URL"]  # the embedded run, on the services' backends
    command = [sys.executable, "-m", "etl4all", "run", "-q"]
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    pipeline.wait_for("the run to hold a claim", lambda: len(pipeline.probe.claims()) == 1, 60)
    pipeline.wait_for("the run to pay for a few", lambda: pipeline.api.calls >= 50, 60)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)
    paid = pipeline.api.calls
    assert pipeline.probe.claims()  # left behind by the dead process
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "busy" not in second.stdout
    figures = pipeline.verify()
    pipeline.report(f"killed_at_calls={paid} rerun=exit 0 {figures}")
