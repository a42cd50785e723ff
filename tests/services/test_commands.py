"""`init-db`, `status` and `run --broker` against the real services."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from workers import table

from etl4all.cli import cli
from etl4all.runners.broker import run_all
from etl4all.settings import Settings

pytestmark = [pytest.mark.mysql, pytest.mark.redis, pytest.mark.rabbitmq]


def invoke(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.output


def test_init_db_is_idempotent_and_status_reports_everything(stack: dict[str, str]) -> None:
    for _ in range(2):
        code, output = invoke(stack, "init-db")
        assert code == 0 and "warehouse ready" in output and "(0 rows)" in output
    code, output = invoke(stack, "status")
    assert code == 0, output
    prefix = stack["ETL4ALL_QUEUE_PREFIX"]
    for name in ("points", "addresses", "dead"):
        assert f"{prefix}.{name}" in output
    assert re.search(r"warehouse rows +│ +0 ", output) and re.search(r"files done +│ +0 ", output)
    assert re.search(r"last load +│ +never", output)


def test_run_through_the_broker_in_one_process(stack: dict[str, str], tmp_path: Path) -> None:
    invoke(stack, "init-db")
    env = {key: value for key, value in stack.items() if key != "ETL4ALL_SOURCE_URL"}
    code, output = invoke(env, "run", str(tmp_path / "ftp"), "-q")
    assert code == 0, output
    assert "extract     4 files" in output and "0 dead-lettered" in output
    rows = table(stack)
    assert rows.height > 0 and rows.select("latitude", "longitude").n_unique() == rows.height
    code, output = invoke(env, "run", str(tmp_path / "ftp"), "-q")
    assert "extract     0 files" in output
    assert table(stack).height == rows.height
    code, output = invoke(env, "run", str(tmp_path / "ftp"), "-q", "--force-file", "*0101.txt")
    assert code == 0 and "extract     1 files" in output, output
    assert table(stack).equals(rows)  # the same rows, not even touched


def test_run_through_the_broker_says_each_stage_as_it_starts(stack: dict[str, str]) -> None:
    """Issue 17, item 11: `run --broker` showed nothing on a terminal for about 40 s."""
    invoke(stack, "init-db")
    stages: list[str] = []
    settings = Settings.load(environ=stack).replace(settle_seconds=0)
    report = run_all(settings, threading.Event(), stages.append)
    assert stages == ["extract", "transform", "load"] and report.extract.files == 4
