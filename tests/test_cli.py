"""The command line through CliRunner: an embedded end-to-end run on generated files."""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Callable
from pathlib import Path

import click
import duckdb
import polars as pl
import pytest
from click.testing import CliRunner
from geocoders.fake_api import FakeApi, coord
from polars.testing import assert_frame_equal

from etl4all import __version__, frames
from etl4all.cli import cli
from etl4all.parsing import parse, reading
from etl4all.warehouse.read import read_warehouse


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run every command from an empty folder (default state and warehouse land there)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def invoke(*args: str) -> click.testing.Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def expected_keys(folder: Path) -> set[tuple[float, float]]:
    """The distinct valid coordinates of the files in ``folder``."""
    points = pl.concat(parse.parse(p.read_bytes(), p.name).points for p in folder.glob("*.txt"))
    return set(points.select("latitude", "longitude").unique().rows())


def warehouse_keys(path: Path) -> list[tuple[float, float]]:
    with duckdb.connect(str(path), read_only=True) as db:
        rows = db.sql("SELECT latitude::DOUBLE, longitude::DOUBLE FROM address").fetchall()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def test_run_loads_every_distinct_coordinate_once_and_is_idempotent(workdir: Path) -> None:
    assert (
        invoke(
            "sample",
            "in",
            "--files",
            "3",
            "--points",
            "400",
            "--dirty-rate",
            "0.1",
            "--duplicate-rate",
            "0.2",
        ).exit_code
        == 0
    )
    first = invoke("run", "in", "-q", "--final-seconds", "0")  # the files are complete
    assert first.exit_code == 0, first.output
    assert "3 processed, 0 skipped" in first.output
    assert "rejects     " in first.output and "missing_l" in first.output
    keys = warehouse_keys(workdir / "etl4all.duckdb")
    assert len(keys) == len(set(keys)) == len(expected_keys(workdir / "in"))
    with duckdb.connect(str(workdir / "etl4all.duckdb"), read_only=True) as db:
        ((stored,),) = db.sql("SELECT count(*) FROM reject").fetchall()
    assert f"rejects     {stored} (" in first.output and stored > 0
    assert set(keys) == expected_keys(workdir / "in")

    second = invoke("run", "in", "-q")
    assert "0 processed, 3 skipped" in second.output
    assert warehouse_keys(workdir / "etl4all.duckdb") == keys


def test_a_changed_file_is_processed_again(workdir: Path) -> None:
    invoke("sample", "in", "--files", "2", "--points", "50")
    invoke("run", "in", "-q")
    changed = workdir / "in" / "data_points_20180101.txt"
    record = b"\r\nLatitude: -29.5\r\nLongitude: -50.5\r\n"
    changed.write_bytes(changed.read_bytes() + record + b"Distance: 1 km  Bearing: 2\xc2\xb0")
    result = invoke("run", "in", "-q")
    assert "1 processed, 1 skipped" in result.output
    assert "1 inserted" in result.output
    assert (-29.5, -50.5) in warehouse_keys(workdir / "etl4all.duckdb")


def test_a_cut_off_last_record_waits_until_the_file_is_final(workdir: Path) -> None:
    invoke("sample", "in", "--files", "1", "--points", "5")
    path = workdir / "in" / "data_points_20180101.txt"
    path.write_bytes(path.read_bytes() + b"\r\nLatitude: -29.5\r\nLongitude: -50.5")
    first = invoke("run", "in", "-q")
    assert "1 processed, 0 skipped (already done), 1 without a cut-off last record" in first.output
    assert "5 inserted" in first.output
    assert invoke("run", "in", "-q").output.startswith("files       0 processed, 1 skipped")
    final = invoke("run", "in", "-q", "--final-seconds", "0")  # unchanged long enough
    assert "1 processed" in final.output and "1 inserted" in final.output
    assert (-29.5, -50.5) in warehouse_keys(workdir / "etl4all.duckdb")


def test_touched_file_with_same_content_is_skipped(workdir: Path) -> None:
    invoke("sample", "in", "--files", "1", "--points", "20")
    invoke("run", "in", "-q")
    path = workdir / "in" / "data_points_20180101.txt"
    path.touch()
    result = invoke("run", "in", "-q")
    assert "0 processed, 1 skipped" in result.output


def test_a_truncated_file_is_held_with_exit_3_until_its_shrink_is_accepted(
    workdir: Path,
) -> None:
    invoke("sample", "in", "--files", "2", "--points", "30")
    assert invoke("run", "in", "-q", "--final-seconds", "0").exit_code == 0
    (workdir / "in" / "data_points_20180101.txt").write_bytes(b"")  # a failed transfer
    for _ in range(2):  # every run says so until someone acts
        held = CliRunner().invoke(cli, ["run", "in", "-q"])
        assert held.exit_code == 3
        assert "1 held (shrank to a prefix)" in held.output
        assert "held: data_points_20180101.txt: now empty" in held.output
        assert "--accept-shrink 'data_points_20180101.txt'" in held.output
        assert read_warehouse("duckdb:///etl4all.duckdb").height == 60
    accepted = invoke("run", "in", "-q", "--accept-shrink", "data_points_20180101.txt")
    assert accepted.exit_code == 0 and "30 pruned" in accepted.output
    assert read_warehouse("duckdb:///etl4all.duckdb").height == 30


def test_a_run_stopped_by_an_outage_still_prints_its_summary(workdir: Path) -> None:
    invoke("sample", "in", "--files", "3", "--points", "20")
    with FakeApi() as api:
        for path in (workdir / "in").glob("*.txt"):  # every data point fails, for good
            for lat, lon in (
                parse.parse(path.read_bytes(), path.name)
                .points.select("latitude", "longitude")
                .rows()
            ):
                api.script[coord(lat, lon)] = [503] * 100
        result = CliRunner().invoke(
            cli,
            [
                "run",
                "in",
                "-q",
                "--geocoder",
                "google",
                "--google-url",
                api.google_url,
                "--max-attempts",
                "1",
                "--final-seconds",
                "0",
            ],
            env={"GOOGLE_MAPS_API_KEY": api.key or ""},
        )
    assert result.exit_code == 1
    assert re.search(r"^files .* 2 batches set aside$", result.output, re.M)
    assert "2 batches set aside" in result.output and "set aside: data_points_" in result.output
    assert result.output.strip().splitlines()[-1].startswith("error: ")


def test_missing_source_exits_2_with_one_line_reason(workdir: Path) -> None:
    result = CliRunner().invoke(cli, ["run", "nowhere", "-q"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1].startswith("error: no such file or folder")


def test_run_without_source_is_a_usage_error(workdir: Path) -> None:
    result = CliRunner().invoke(cli, ["run", "-q"])
    assert result.exit_code == 2 and "SOURCE" in result.output


def test_parse_reports_and_writes_points_and_rejects(workdir: Path) -> None:
    invoke("sample", "in", "--files", "1", "--points", "100", "--dirty-rate", "0.3", "--seed", "4")
    result = invoke("parse", "in/data_points_20180101.txt", "-o", "out.parquet")
    assert result.exit_code == 0
    points, rejects = pl.read_parquet("out.parquet"), pl.read_parquet("out.rejects.parquet")
    assert f"points   {points.height}" in result.output
    assert f"rejects  {rejects.height}" in result.output and rejects.height > 0
    assert "missing_longitude" in result.output or "missing_latitude" in result.output


def test_parse_names_the_likely_cause_of_unrecognized_lines(workdir: Path) -> None:
    lines = ["latitude: -30,25", "Longitude: -51.5", "LATITUDE: -30.5", "longitude: -51,5"]
    lines += ["Latitude: -30.5", "Longitude: -51.5"]  # two bad records, one good
    Path("commas.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = invoke("parse", "commas.txt")
    assert result.exit_code == 0
    assert "points   1" in result.output and "unrecognized       2" in result.output
    assert "2 × decimal comma: write -30.04982864, not -30,04982864; first at commas.txt:1" in (
        result.output
    )


@pytest.mark.parametrize(
    ("suffix", "read"),
    [(".csv", pl.read_csv), (".ndjson", pl.read_ndjson), (".PARQUET", pl.read_parquet)],
)
def test_parse_writes_the_format_its_suffix_names(
    workdir: Path, suffix: str, read: Callable[[Path], pl.DataFrame]
) -> None:
    invoke("sample", "in", "--files", "1", "--points", "50", "--dirty-rate", "0.2", "--seed", "4")
    result = invoke("parse", "in/data_points_20180101.txt", "-o", f"out{suffix}")
    assert result.exit_code == 0, result.output
    points = read(workdir / f"out{suffix}")
    rejects = read(workdir / f"out.rejects{suffix}")
    assert f"points   {points.height}" in result.output and points.height > 0
    assert f"rejects  {rejects.height}" in result.output and rejects.height > 0


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_parse_reads_in_pieces_of_batch_size_and_writes_them_all(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    monkeypatch.setattr(reading, "MIN_PIECE_BYTES", 0)
    invoke("sample", "in", "--files", "2", "--points", "300", "--dirty-rate", "0.2", "--seed", "5")
    files = sorted(str(path) for path in (workdir / "in").glob("*.txt"))
    result = invoke("parse", *files, "--batch-size", "20", "-o", f"out{suffix}")
    whole = [parse.parse(Path(name).read_bytes(), Path(name).name) for name in files]
    read = pl.read_csv if suffix == ".csv" else pl.read_parquet
    points, rejects = read(workdir / f"out{suffix}"), read(workdir / f"out.rejects{suffix}")
    assert result.exit_code == 0, result.output
    assert points.get_column("line").to_list() == [
        line for part in whole for line in part.points.get_column("line").to_list()
    ]
    assert rejects.select("source", "line", "reason").rows() == [
        row for part in whole for row in part.rejects.select("source", "line", "reason").rows()
    ]
    assert f"rejects  {rejects.height}" in result.output and rejects.height > 20


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".ndjson"])
def test_parse_writes_exactly_the_frames_parsed(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    monkeypatch.setattr(reading, "MIN_PIECE_BYTES", 0)
    invoke("sample", "in", "--files", "2", "--points", "300", "--dirty-rate", "0.2", "--seed", "6")
    files = sorted((workdir / "in").glob("*.txt"))
    result = invoke("parse", *map(str, files), "--batch-size", "20", "-o", f"out{suffix}")
    assert result.exit_code == 0, result.output
    whole = [parse.parse(path.read_bytes(), path.name) for path in files]
    read = {".parquet": pl.read_parquet, ".csv": pl.read_csv, ".ndjson": pl.read_ndjson}[suffix]
    for name, schema, part in (
        ("out", frames.POINTS_SCHEMA, 0),
        ("out.rejects", frames.REJECTS_SCHEMA, 1),
    ):
        written = frames.cast_frame(read(workdir / f"{name}{suffix}"), schema)
        assert_frame_equal(written, pl.concat([parsed[part] for parsed in whole]))


def test_parse_raises_what_the_writer_met_without_hanging(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*_: object, **__: object) -> None:
        raise pl.exceptions.ComputeError("no space left on device")

    monkeypatch.setattr(reading, "MIN_PIECE_BYTES", 0)
    monkeypatch.setattr(pl.LazyFrame, "sink_parquet", full)
    invoke("sample", "in", "--files", "1", "--points", "300")
    args = ["parse", "in/data_points_20180101.txt", "--batch-size", "10", "-o", "out.parquet"]
    result = CliRunner().invoke(cli, args)  # 30 pieces: more than the writer's queue holds
    assert result.exit_code == 1
    assert isinstance(result.exception, pl.exceptions.ComputeError)


def test_parse_of_an_empty_file_writes_empty_outputs(workdir: Path) -> None:
    (workdir / "empty.txt").write_bytes(b"")
    result = invoke("parse", "empty.txt", "-o", "out.csv")
    assert result.exit_code == 0, result.output
    assert "points   0" in result.output
    assert pl.read_csv(workdir / "out.rejects.csv").columns == list(frames.REJECTS_SCHEMA)


@pytest.mark.parametrize(
    ("output", "says"),
    [("p.txt", "name a .parquet, .csv or .ndjson file"), ("missing/p.csv", "does not exist")],
)
def test_parse_refuses_an_output_it_cannot_write_in_one_line(
    workdir: Path, output: str, says: str
) -> None:
    invoke("sample", "in", "--files", "1", "--points", "5")
    result = CliRunner().invoke(cli, ["parse", "in/data_points_20180101.txt", "-o", output])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and says in result.output
    assert "Traceback" not in result.output and not (workdir / "missing").exists()


def test_estimate_offline_needs_no_calls(workdir: Path) -> None:
    invoke("sample", "in", "--files", "2", "--points", "30", "--duplicate-rate", "0.5")
    result = invoke("estimate", "in")
    assert result.exit_code == 0
    assert "calls needed   0 (offline)" in result.output
    assert "points         60" in result.output


def test_version() -> None:
    assert __version__ in invoke("--version").output


def test_bad_center_is_a_usage_error(workdir: Path) -> None:
    result = CliRunner().invoke(cli, ["sample", "x", "--center", "100,1"])
    assert result.exit_code == 2 and "latitude" in result.output


def test_every_option_of_every_command_has_help() -> None:
    def commands(group: click.Group, path: list[str]) -> list[tuple[list[str], click.Command]]:
        found: list[tuple[list[str], click.Command]] = []
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                assert command.help, name
                found += commands(command, [*path, name])
            else:
                found.append(([*path, name], command))
        return found

    for path, command in commands(cli, []):
        assert command.help, path
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"{path} {param.opts}"
        assert CliRunner().invoke(cli, [*path, "--help"]).exit_code == 0, path


def test_files_done_for_one_warehouse_are_new_work_for_another(workdir: Path) -> None:
    invoke("sample", "in", "--files", "2", "--points", "30")
    assert "2 processed" in invoke("run", "in", "-q").output
    other = invoke("run", "in", "-q", "--warehouse", "duckdb:///other.duckdb")
    assert "2 processed, 0 skipped" in other.output
    assert len(warehouse_keys(workdir / "other.duckdb")) == 60


def test_dead_letters_need_a_broker(workdir: Path) -> None:
    for args in (["list"], ["replay"], ["purge", "--yes"]):
        result = CliRunner().invoke(cli, ["dead-letters", *args])
        assert result.exit_code == 2, result.output
        assert "needs a broker" in result.output


def test_status_without_a_broker_shows_no_dead_letters_and_exits_0(workdir: Path) -> None:
    result = invoke("status")
    assert result.exit_code == 0
    assert re.search(r"files done +│ +0", result.output), result.output
    assert "queues" not in result.output and "dead letters" not in result.output


def test_check_prints_one_line_per_backend_and_exits_0(workdir: Path) -> None:
    invoke("sample", "in", "--files", "2", "--points", "10")
    result = invoke("check", "in")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["ok", "source"],
        ["ok", "state"],
        ["ok", "warehouse"],
        ["ok", "lookup"],
        ["ok", "geocoder"],
    ]
    assert lines[0] == "ok   source in (2 files)"


def test_check_with_a_wrong_key_exits_2_without_showing_it(workdir: Path) -> None:
    with FakeApi() as api:
        result = CliRunner().invoke(
            cli,
            ["check", "--geocoder", "google", "--google-url", api.google_url],
            env={"GOOGLE_MAPS_API_KEY": "AIzaWRONG-cli-key"},
        )
        assert api.calls == 1
    assert result.exit_code == 2, result.output
    assert f"FAIL geocoder google {api.google_url}: Google refused" in result.output
    assert "ok   state" in result.output  # the other backends are still reported
    assert "AIzaWRONG" not in result.output


def test_check_of_a_stage_needs_a_broker(workdir: Path) -> None:
    result = CliRunner().invoke(cli, ["check", "--stage", "load"])
    assert result.exit_code == 2 and "needs a broker" in result.output


def test_run_with_a_wrong_key_stops_at_its_first_request_and_loads_nothing(
    workdir: Path,
) -> None:
    invoke("sample", "in", "--files", "2", "--points", "10")
    with FakeApi() as api:
        args = ["run", "in", "-q", "--geocoder", "google", "--google-url", api.google_url]
        result = CliRunner().invoke(cli, args, env={"GOOGLE_MAPS_API_KEY": "AIzaWRONG-cli-key"})
        assert api.calls == 1  # no start-up request: the first of the work, alone
        assert result.exit_code == 2, result.output
        assert "REQUEST_DENIED" in result.output and "AIzaWRONG" not in result.output
        assert "files" not in result.output  # a configuration fault: no summary
        assert read_warehouse("duckdb:///etl4all.duckdb").is_empty()
        right = CliRunner().invoke(cli, args, env={"GOOGLE_MAPS_API_KEY": api.key or ""})
    assert right.exit_code == 0 and "2 processed" in right.output  # nothing was marked done


@pytest.mark.parametrize("flag", ["--warehouse", "--state", "--broker"])
def test_a_one_slash_url_is_refused_not_taken_as_localhost(workdir: Path, flag: str) -> None:
    invoke("sample", "in", "--files", "1", "--points", "5")
    value = {"--warehouse": "mysql:/x", "--state": "redis:/x", "--broker": "amqp:/x"}[flag]
    result = CliRunner().invoke(cli, ["run", "in", "-q", flag, value])
    assert result.exit_code == 2
    assert "is not a valid URL" in result.output and "://host/" in result.output


def test_force_redoes_done_files_and_a_typo_is_an_error(workdir: Path) -> None:
    invoke("sample", "in", "--files", "2", "--points", "30")
    invoke("run", "in", "-q")
    every = invoke("run", "in", "-q", "--force")
    assert "2 processed, 0 skipped" in every.output and "0 inserted, 0 updated" in every.output
    one = invoke("run", "in", "-q", "--force-file", "data_points_20180101.txt")
    assert "1 processed, 1 skipped" in one.output
    typo = CliRunner().invoke(cli, ["run", "in", "-q", "--force-file", "data_point_*"])
    assert typo.exit_code == 2 and "--force-file data_point_* matches no file" in typo.output


def test_a_folder_with_no_matching_file_says_so(workdir: Path) -> None:
    (workdir / "empty").mkdir()
    result = CliRunner().invoke(cli, ["run", "empty", "-q"])
    assert result.exit_code == 0
    assert "warning: no file matches '*.txt' in empty" in result.output


def test_fail_on_rejects_exits_1_above_the_rate_and_loads_the_rest(workdir: Path) -> None:
    invoke("sample", "in", "--files", "1", "--points", "100", "--dirty-rate", "0.3", "--seed", "4")
    result = CliRunner().invoke(cli, ["run", "in", "-q", "--fail-on-rejects", "0.01"])
    assert result.exit_code == 1
    assert "of the records read were rejected" in result.output
    assert "above --fail-on-rejects 0.01" in result.output
    assert len(warehouse_keys(workdir / "etl4all.duckdb")) > 0  # the valid ones are loaded
    (workdir / "in2").mkdir()
    (workdir / "in2" / "f.txt").write_bytes(
        (workdir / "in" / "data_points_20180101.txt").read_bytes()
    )
    relaxed = CliRunner().invoke(cli, ["run", "in2", "-q", "--fail-on-rejects", "0.9"])
    assert relaxed.exit_code == 0, relaxed.output


SIX_OF_SEVEN_BAD = [
    "Latitude: 30°02′59″S   -30.04982864",
    "Longitude: 51°12′05″W   -51.20150245",
    "Distance: 2.2959 km  Bearing: 137.352°",
    *("Latitude: -30,04982864", "Longitude: -51.2", "Distance: 1 km  Bearing: 2°"),
    *("Latitude: -30.1", "Longitude 51 12 05 W", "Distance: 1 km  Bearing: 2°"),
    *("Latitud: -30.1", "Longitude: -51.2", "Distance: 1 km  Bearing: 2°"),
    *("Latitude: -30.1", "Distance: 1 km  Bearing: 2°"),
    *("Latitude: -30.1", "~ noise ~", "Longitude: -51.2", "Distance: 1 km  Bearing: 2°"),
    *("Latitude: 95", "Longitude: -51.2", "Distance: 1 km  Bearing: 2°"),
]
"""Seven records, six of them bad in ways that each used to make two or three rejects."""


def test_fail_on_rejects_counts_records_not_lines(workdir: Path) -> None:
    (workdir / "in").mkdir()
    (workdir / "in" / "f.txt").write_text("\r\n".join(SIX_OF_SEVEN_BAD) + "\r\n", "utf-8")
    args = ["run", "in", "-q", "--final-seconds", "0", "--fail-on-rejects"]
    result = CliRunner().invoke(cli, [*args, "0.5"])
    assert result.exit_code == 1, result.output
    assert "records     7 read, 6 rejected (85.7%)" in result.output
    assert "85.7% of the records read were rejected (6 of 7), above --fail-on-rejects 0.5" in (
        result.output
    )
    with duckdb.connect(str(workdir / "etl4all.duckdb"), read_only=True) as db:
        assert db.sql("SELECT count(*) FROM reject").fetchall() == [(6,)]
        assert db.sql("SELECT count(*) FROM address").fetchall() == [(1,)]
    (workdir / "again").mkdir()
    (workdir / "again" / "f.txt").write_bytes((workdir / "in" / "f.txt").read_bytes())
    relaxed = CliRunner().invoke(cli, [*args, "0.9"])
    assert relaxed.exit_code == 0, relaxed.output


def test_parse_counts_records(workdir: Path) -> None:
    Path("f.txt").write_text("\n".join(SIX_OF_SEVEN_BAD), encoding="utf-8")
    result = invoke("parse", "f.txt")
    assert result.exit_code == 0
    assert "records  7\npoints   1\nrejects  6 (85.7% of the records)\n" in result.output
    assert "unrecognized       4" in result.output


def test_a_broker_that_is_down_is_one_line_naming_host_and_cause(workdir: Path) -> None:
    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"amqp://guest:s3cret@127.0.0.1:{port}/"
    result = CliRunner().invoke(cli, ["status", "--broker", url, "--connect-timeout", "0.5"])
    assert result.exit_code == 1
    last = result.output.strip().splitlines()[-1]
    assert last.startswith(f"error: RabbitMQ amqp://guest:***@127.0.0.1:{port}/")
    assert "Connection refused" in last and "run the same command" not in last
    assert "Traceback" not in result.output and "s3cret" not in result.output


def test_a_broker_host_that_does_not_resolve_exits_2(workdir: Path) -> None:
    result = CliRunner().invoke(
        cli, ["status", "--broker", "amqp://guest:guest@nohost.invalid:5672/"]
    )
    assert result.exit_code == 2
    assert "cannot resolve the host" in result.output and "Traceback" not in result.output


# -- issue 17: configuration faults exit 2, and the smaller findings -----------------------


def call(*args: str, env: dict[str, str] | None = None) -> click.testing.Result:
    """A command as cron runs it: exit code and output, exceptions included."""
    return CliRunner().invoke(cli, list(args), env=env)


@pytest.mark.parametrize(
    "args",
    [["--qps=-3"], ["--qps", "-3"], ["--max-calls", "-1"], ["--batch-size", "-5"]],
)
def test_a_negative_number_gets_a_range_error_not_no_such_option(
    workdir: Path, args: list[str]
) -> None:
    result = call("run", "in", *args)
    assert result.exit_code == 2
    assert "is not in the range" in result.output and "No such option" not in result.output


@pytest.mark.parametrize("command", [["run", "in"], ["status"], ["init-db"], ["check"]])
def test_an_invalid_log_level_exits_2_naming_the_valid_ones(
    workdir: Path, command: list[str]
) -> None:
    """Item 8: a traceback and exit 1 on every command (in compose, a crash loop)."""
    result = call(*command, env={"ETL4ALL_LOG_LEVEL": "verbose"})
    assert result.exit_code == 2, result.output
    assert "log_level must be one of DEBUG, INFO, WARNING, ERROR" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    (workdir / "p.toml").write_text('log_level = "loud"\n')
    result = call(*command, "--pipeline", "p.toml")
    assert result.exit_code == 2 and "got 'loud'" in result.output


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("qsp = 10", "unknown setting 'qsp'; did you mean 'qps'?"),
        ("lease_seconds = 0", "lease_seconds must be positive, got 0.0"),
    ],
)
def test_a_wrong_pipeline_key_or_value_is_one_line_naming_the_file(
    workdir: Path, line: str, error: str
) -> None:
    """Issue 19: a typo gave no file name and no "did you mean"; a value out of range in a
    pipeline file passed where the same flag was refused."""
    (workdir / "p.toml").write_text(f"[etl4all]\n{line}\n")
    result = call("run", "in", "--pipeline", "p.toml")
    assert result.exit_code == 2
    assert result.output.splitlines() == [f"error: pipeline file p.toml: {error}"]


def test_with_json_logs_the_error_line_is_json_too(workdir: Path) -> None:
    (workdir / "t.txt").write_text("not a database\n")
    invoke("sample", "in", "--files", "1", "--points", "5")
    result = call("run", "in", "--warehouse", "duckdb:///t.txt", "--log-format", "json")
    assert result.exit_code == 2
    last = json.loads(result.stderr.strip().splitlines()[-1])
    assert last["level"] == "ERROR" and last["exit_code"] == 2
    assert "not a DuckDB database" in last["message"]
    # even when the settings themselves are wrong
    result = call("status", env={"ETL4ALL_LOG_LEVEL": "loud", "ETL4ALL_LOG_FORMAT": "json"})
    assert result.exit_code == 2
    assert "log_level must be" in json.loads(result.stderr.strip().splitlines()[-1])["message"]


def test_configuration_faults_of_embedded_backends_exit_2_with_the_fix(
    workdir: Path, unwritable_dir: Path
) -> None:
    """Item 6: each was exit 1 with "run again once the service is back"."""
    invoke("sample", "in", "--files", "1", "--points", "5")
    (workdir / "t.txt").write_text("not a database\n")
    (workdir / "bad.db").write_bytes(b"garbage" * 100)
    faults = {
        ("--warehouse", "duckdb:///t.txt"): "not a DuckDB database",
        ("--warehouse", f"duckdb:///{unwritable_dir}/w.duckdb"): "writable for this user",
        ("--warehouse", f"duckdb:///{workdir}"): "is a folder",
        ("--state", "sqlite:///bad.db"): "move it aside",
        ("--state", f"sqlite:///{unwritable_dir}/s.db"): "writable for this user",
    }
    for args, fix in faults.items():
        result = call("run", "in", *args)
        assert result.exit_code == 2, (args, result.output)
        assert fix in result.output and "once the service is back" not in result.output


@pytest.mark.parametrize(
    ("flag", "url"),
    [
        ("--warehouse", "mysql://root:pa/ss@db.invalid:3306/etl4all"),
        ("--broker", "amqp://guest:gu?est@rabbit.invalid:5672/"),
        ("", "ftp://user:p#ss@ftp.invalid/in"),
    ],
)
def test_an_unencoded_password_gets_the_percent_encoding_hint_before_any_lookup(
    workdir: Path, flag: str, url: str
) -> None:
    """Item 9: it was "unknown host 'root'", after a DNS lookup of the user name."""
    invoke("sample", "in", "--files", "1", "--points", "5")
    options = [flag, url, "in"] if flag else [url]  # an FTP URL is a source
    for command in ("run", "check"):
        result = call(command, *options)
        assert result.exit_code == 2, result.output
        assert "percent-encode" in result.output and "unknown host" not in result.output
        assert not any(secret in result.output for secret in ("pa/ss", "gu?est", "p#ss"))


def test_check_in_an_empty_folder_creates_no_file(workdir: Path) -> None:
    result = invoke("check")
    assert result.exit_code == 0, result.output
    assert "no file yet" in result.output and "tables present" not in result.output
    assert list(workdir.iterdir()) == []


def test_regeocode_refuses_an_unknown_status(workdir: Path) -> None:
    result = call("regeocode", "--status", "BOGUS", "--dry-run")
    assert result.exit_code == 2 and "'BOGUS' is not one of 'OK', 'ZERO_RESULTS'" in result.output


def test_replaying_an_unknown_batch_exits_2_naming_it(workdir: Path) -> None:
    result = call("dead-letters", "replay", "--batch", "nosuch", "--broker", "memory://")
    assert result.exit_code == 2
    assert "no dead letter with batch id nosuch in etl4all.dead" in result.output


def test_status_json_counts_dead_letters_and_names_each_queues_kind(workdir: Path) -> None:
    result = call("status", "--json", "--broker", "memory://")
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found["dead_letters"] == 0  # it said `dead_letters: true` for the empty queue
    kinds = [queue["kind"] for queue in found["queues"]["queues"]]
    assert kinds == ["points", "addresses", "dead"]
    assert all("dead_letters" not in queue for queue in found["queues"]["queues"])
    assert json.loads(call("status", "--json").stdout)["dead_letters"] is None  # no broker


def test_a_latin1_file_name_is_stored_readable_and_the_same_every_time(workdir: Path) -> None:
    invoke("sample", "in", "--files", "1", "--points", "5")
    name = os.fsdecode(b"caf\xe9.txt")  # as the file system gives a Latin-1 name
    (workdir / "in" / "data_points_20180101.txt").rename(workdir / "in" / name)
    assert call("run", "in", "-q").exit_code == 0
    with (workdir / "in" / name).open("ab") as more:
        more.write(b"\r\nLatitude: -29.5\r\nLongitude: -50.5\r\nDistance: 1 km  Bearing: 2\xb0\r\n")
    assert call("run", "in", "-q", "--final-seconds", "0").exit_code == 0
    with duckdb.connect(str(workdir / "etl4all.duckdb"), read_only=True) as db:
        names = db.sql("SELECT DISTINCT source_file FROM address").fetchall()
        files = db.sql("SELECT name FROM source_file").fetchall()
    assert names == files == [("caf\\xe9.txt",)]


def test_the_warning_on_qps_above_googles_limit_is_printed_once(workdir: Path) -> None:
    invoke("sample", "in", "--files", "1", "--points", "5")
    with FakeApi() as api:
        result = call(
            *("run", "in", "-q", "--geocoder", "google", "--google-url", api.google_url),
            *("--qps", "100"),
            env={"GOOGLE_MAPS_API_KEY": api.key or ""},
        )
    assert result.exit_code == 0, result.output
    assert result.output.count("is above google's default limit of 50.0 per second") == 1


def test_run_stage_has_a_metrics_host_option() -> None:
    text = call("run-stage", "--help").output
    assert "--metrics-host" in text and "ETL4ALL_METRICS_HOST" in text
