"""Ctrl-C in the middle of a paid run: what was paid for is cached, the rerun pays the rest."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from geocoders.fake_api import FakeApi
from runners.test_embedded import parsed

from etl4all import sample
from etl4all.warehouse.read import read_warehouse

CONCURRENCY = 4


def etl4all_run(api: FakeApi, folder: Path) -> subprocess.Popen[str]:
    """``etl4all run`` on ``folder`` with Google at ``api``, as a user starts it."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "etl4all",
            "run",
            str(folder / "in"),
            "--warehouse",
            f"duckdb:///{folder}/w.duckdb",
            "--state",
            f"sqlite:///{folder}/s.db",
            "--geocoder",
            "google",
            "--google-url",
            api.google_url,
            "--google-key",
            str(api.key),
            "--qps",
            "500",
            "--concurrency",
            str(CONCURRENCY),
            "--batch-size",
            "100000",
        ],
        cwd=folder,
        env={**os.environ, "ETL4ALL_LOG_LEVEL": "WARNING"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_ctrl_c_keeps_the_paid_answers_and_the_rerun_pays_only_the_rest(tmp_path: Path) -> None:
    sample.write_sample(tmp_path / "in", files=2, points=700, seed=5, duplicate_rate=0.0)
    _, distinct = parsed(tmp_path / "in")
    with FakeApi(latency=0.02) as api:  # 4 in flight x 20 ms: about 200 calls a second
        first = etl4all_run(api, tmp_path)
        deadline = time.monotonic() + 60
        while api.calls < distinct // 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        first.send_signal(signal.SIGINT)
        out, _ = first.communicate(timeout=60)
        assert first.returncode == 130, out
        paid = api.calls
        assert paid < distinct  # interrupted halfway
        assert read_warehouse(f"duckdb:///{tmp_path}/w.duckdb").height == 0

        second = etl4all_run(api, tmp_path)
        out, _ = second.communicate(timeout=120)
        assert second.returncode == 0, out
        again = api.calls - paid
    print(f"distinct={distinct} interrupted_run_calls={paid} rerun_calls={again}")
    # Each run may make one start-up check call; requests in flight at Ctrl-C were sent but
    # their answers never arrived, and are the only ones paid twice.
    assert paid + again <= distinct + CONCURRENCY + 2
    assert read_warehouse(f"duckdb:///{tmp_path}/w.duckdb").height == distinct


def test_a_run_killed_with_sigkill_is_rerun_at_once(tmp_path: Path) -> None:
    """kill -9 leaves the file's claim in the ledger; the rerun of the same machine takes it
    at once (its holder is a dead process here) instead of waiting for it to expire."""
    sample.write_sample(tmp_path / "in", files=1, points=700, seed=6, duplicate_rate=0.0)
    _, distinct = parsed(tmp_path / "in")
    with FakeApi(latency=0.02) as api:
        first = etl4all_run(api, tmp_path)
        deadline = time.monotonic() + 60
        while api.calls < distinct // 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        first.kill()  # SIGKILL: no cleanup, the claim stays
        first.communicate(timeout=60)
        with sqlite3.connect(tmp_path / "s.db") as db:
            (claims,) = db.execute("SELECT count(*) FROM claims").fetchone()
        assert claims == 1  # left behind, 30 s from expiring
        second = etl4all_run(api, tmp_path)
        out, _ = second.communicate(timeout=120)
    assert second.returncode == 0, out
    assert "1 processed, 0 skipped" in out and "busy" not in out
    assert read_warehouse(f"duckdb:///{tmp_path}/w.duckdb").height == distinct
