"""Settings precedence: flags > ETL4ALL_* variables > pipeline TOML > defaults."""

from __future__ import annotations

import ast
import itertools
import logging
import math
from pathlib import Path

import click
import pytest

from etl4all.cli import cli
from etl4all.errors import ConfigError
from etl4all.settings import BOUNDS, CHOICES, FIELDS, SECRET_ENV, Bounds, Settings

REPO = Path(__file__).resolve().parents[1]


def test_defaults_are_the_embedded_ones() -> None:
    settings = Settings.load(environ={})
    assert settings.geocoder == "offline"
    assert settings.warehouse_url.startswith("duckdb:")
    assert settings.state_url.startswith("sqlite:")


def test_local_pipeline_file_holds_the_defaults() -> None:
    from_file = Settings.load(REPO / "pipelines" / "local.toml", environ={})
    defaults = Settings.load(environ={})
    assert from_file == defaults


def test_services_pipeline_file_is_valid() -> None:
    settings = Settings.load(REPO / "pipelines" / "services.toml", environ={})
    assert settings.broker_url and settings.geocoder == "google"


def test_precedence(tmp_path: Path) -> None:
    toml = tmp_path / "p.toml"
    toml.write_text('[etl4all]\ngeocoder = "google"\nqps = 10\nbatch_rows = 5\n')
    environ = {"ETL4ALL_QPS": "20", "ETL4ALL_BATCH_ROWS": "7"}
    settings = Settings.load(toml, environ=environ, overrides={"batch_rows": 9})
    assert (settings.geocoder, settings.qps, settings.batch_rows) == ("google", 20.0, 9)


def test_google_key_comes_from_its_own_variable_and_is_not_in_repr() -> None:
    settings = Settings.load(environ={"GOOGLE_MAPS_API_KEY": "AIza-secret"})
    assert settings.google_key == "AIza-secret"
    assert "AIza-secret" not in repr(settings)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"ETL4ALL_BATCH_ROWS": "many"}, "batch_rows expects int"),
        ({"ETL4ALL_BATCH_ROWS": "0"}, "batch_rows must be at least 1"),
        ({"ETL4ALL_GEOCODE_PRECISION": "12"}, "geocode_precision"),
        ({"ETL4ALL_ONCE": "perhaps"}, "once expects bool"),
    ],
)
def test_bad_values_are_config_errors(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.load(environ=environ)


def test_unknown_key_in_pipeline_file(tmp_path: Path) -> None:
    toml = tmp_path / "p.toml"
    toml.write_text("[etl4all]\nwarehouse = 'x'\n")
    with pytest.raises(ConfigError, match="unknown setting 'warehouse'"):
        Settings.load(toml, environ={})


def test_unreadable_pipeline_file(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("[etl4all\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        Settings.load(tmp_path / "bad.toml", environ={})


def test_force_is_a_flag_only(tmp_path: Path) -> None:
    environ = {"ETL4ALL_FORCE": "1", "ETL4ALL_FORCE_FILES": "a.txt"}
    assert Settings.load(environ=environ) == Settings.load(environ={})
    flags = Settings.load(environ={}, overrides={"force": True, "force_files": ("a*", "b.txt")})
    assert flags.force and flags.force_files == ("a*", "b.txt")
    toml = tmp_path / "p.toml"
    toml.write_text("[etl4all]\nforce = true\n")
    with pytest.raises(ConfigError, match="force can only be given as flags"):
        Settings.load(toml, environ={})


# -- issue 17: a wrong log level, the spool folder, the metrics address -------------------


@pytest.mark.parametrize("where", ["environment", "pipeline"])
def test_an_unknown_log_level_is_a_config_error_naming_the_valid_ones(
    where: str, tmp_path: Path
) -> None:
    """Item 8: it was `ValueError: Unknown level` from logging, a traceback, exit 1."""
    toml = tmp_path / "p.toml"
    toml.write_text('log_level = "loud"\n')
    with pytest.raises(ConfigError) as caught:
        if where == "environment":
            Settings.load(environ={"ETL4ALL_LOG_LEVEL": "verbose"})
        else:
            Settings.load(toml, environ={})
    assert "log_level must be one of DEBUG, INFO, WARNING, ERROR" in str(caught.value)


def test_log_levels_are_read_in_any_case() -> None:
    assert Settings.load(environ={"ETL4ALL_LOG_LEVEL": "debug"}).log_level == "debug"


def test_the_spool_folder_is_tmpdir_unless_set(tmp_path: Path) -> None:
    assert Settings.load(environ={}).spool_dir is None
    assert Settings.load(environ={"TMPDIR": "/big"}).spool_dir == "/big"
    both = {"TMPDIR": "/big", "ETL4ALL_SPOOL_DIR": "/bigger"}
    assert Settings.load(environ=both).spool_dir == "/bigger"
    toml = tmp_path / "p.toml"
    toml.write_text('spool_dir = "/spool"\n')
    assert Settings.load(toml, environ={"TMPDIR": "/big"}).spool_dir == "/spool"


def test_metrics_listen_on_this_machine_only_by_default() -> None:
    assert Settings.load(environ={}).metrics_host == "127.0.0.1"
    assert Settings.load(environ={"ETL4ALL_METRICS_HOST": "0.0.0.0"}).metrics_host == "0.0.0.0"


def test_the_log_format_asked_for_is_read_even_from_wrong_settings(tmp_path: Path) -> None:
    from etl4all.settings import requested_log_format

    toml = tmp_path / "p.toml"
    toml.write_text('log_level = "loud"\nlog_format = "json"\n')
    assert requested_log_format(toml, environ={}) == "json"
    assert requested_log_format(toml, "text", environ={}) == "text"
    assert requested_log_format(None, environ={"ETL4ALL_LOG_FORMAT": "JSON"}) == "json"
    (tmp_path / "bad.toml").write_text("[etl4all\n")
    assert requested_log_format(tmp_path / "bad.toml", environ={}) == "text"


# -- issue 19: Settings owns every default and range ---------------------------------------


def setting_options() -> list[tuple[str, click.Option, str]]:
    """(command path, option, Settings field) for every option read from a setting's variable."""
    fields = {SECRET_ENV.get(name, f"ETL4ALL_{name.upper()}"): name for name in FIELDS}
    found = []
    todo: list[tuple[str, click.Command]] = [("etl4all", cli)]
    while todo:
        path, command = todo.pop()
        if isinstance(command, click.Group):
            todo.extend((f"{path} {name}", sub) for name, sub in command.commands.items())
        found.extend(
            (path, param, fields[param.envvar])
            for param in command.params
            if isinstance(param, click.Option) and param.envvar in fields
        )
    return found


def shown(default: object) -> set[str]:
    """The ways a help text may write ``default``."""
    if isinstance(default, float):
        return {f"default {default:g}", f"default {default:.2f}"}
    return {f"default {default}"}


def test_every_option_takes_its_range_and_shown_default_from_its_settings_field() -> None:
    """A default or a bound is written once, on the field: an option restating its own drifts."""
    options = setting_options()
    assert len({field for _, _, field in options}) > 30
    for path, option, name in options:
        field, where = FIELDS[name], f"{path} {option.opts}"
        bounds, choices = field.metadata.get(BOUNDS), field.metadata.get(CHOICES)
        if bounds is not None:
            assert isinstance(option.type, click.IntRange | click.FloatRange), where
            assert (option.type.min, option.type.max) == (bounds.low, bounds.high), where
            assert option.type.min_open == bounds.low_open and not option.type.max_open, where
        if choices is not None:
            assert isinstance(option.type, click.Choice), where
            assert tuple(option.type.choices) == choices, where
        assert option.default in (None, field.default), where
        if field.default not in (None, False, ()) and not option.show_default:
            assert any(text in (option.help or "") for text in shown(field.default)), where


def test_defaults_resolved_elsewhere_are_the_ones_the_help_shows() -> None:
    """qps and concurrency default to None and are resolved by the geocoder: their help
    names the numbers of the provider modules."""
    from etl4all.geocoders import api, google, nominatim

    helps = {name: option.help or "" for _, option, name in setting_options()}
    qps = (google.DEFAULT_QPS, nominatim.PUBLIC_QPS)
    assert "default {:g} Google, {:g} public Nominatim".format(*qps) in helps["qps"]
    assert "default {:g} for Google, {:g} for public Nominatim".format(*qps) in settings_source()
    concurrency = f"from {api.DEFAULT_CONCURRENCY} to {api.MAX_DEFAULT_CONCURRENCY}"
    assert concurrency in helps["concurrency"] and concurrency in settings_source()


def settings_source() -> str:
    return (REPO / "etl4all" / "settings.py").read_text(encoding="utf-8")


def test_every_field_has_its_docstring_right_below_it() -> None:
    """A field without one is how a docstring ends up under the next field."""
    (cls,) = (
        node
        for node in ast.parse(settings_source()).body
        if isinstance(node, ast.ClassDef) and node.name == "Settings"
    )
    missing = [
        node.target.id
        for node, after in itertools.pairwise([*cls.body, None])
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
        if not (isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant))
    ]
    assert missing == []


def test_a_typo_in_a_pipeline_key_names_the_file_the_key_and_the_nearest_setting(
    tmp_path: Path,
) -> None:
    toml = tmp_path / "p.toml"
    toml.write_text("[etl4all]\ngeocoder = 'google'\nqsp = 10\n")
    with pytest.raises(ConfigError) as caught:
        Settings.load(toml, environ={})
    assert str(caught.value) == f"pipeline file {toml}: unknown setting 'qsp'; did you mean 'qps'?"
    toml.write_text("[etl4all]\nbatch-rows = 10\n")
    with pytest.raises(ConfigError, match="did you mean 'batch_rows'"):
        Settings.load(toml, environ={})
    toml.write_text("[etl4all]\nfrobnicate = 1\n")
    with pytest.raises(ConfigError) as caught:
        Settings.load(toml, environ={})
    assert str(caught.value) == f"pipeline file {toml}: unknown setting 'frobnicate'"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("lease_seconds = 0", "lease_seconds must be positive, got 0.0"),
        ("max_deliveries = 0", "max_deliveries must be at least 1, got 0"),
        ("geocode_precision = 9", "geocode_precision must be 0..8, got 9"),
        ("log_format = 'xml'", "log_format must be text or json, got 'xml'"),
        ("batch_rows = 'many'", "setting batch_rows expects int, got 'many'"),
    ],
)
def test_a_bad_value_in_a_pipeline_file_is_one_error_naming_the_file(
    tmp_path: Path, line: str, message: str
) -> None:
    toml = tmp_path / "p.toml"
    toml.write_text(f"[etl4all]\n{line}\n")
    with pytest.raises(ConfigError) as caught:
        Settings.load(toml, environ={})
    assert str(caught.value) == f"pipeline file {toml}: {message}"


def test_a_bad_value_in_a_variable_names_the_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.load(environ={"ETL4ALL_QPS": "0"})
    assert str(caught.value) == "ETL4ALL_QPS: qps must be positive, got 0.0"


def out_of_range(bounds: Bounds) -> list[float]:
    """Values just outside ``bounds``."""
    below = bounds.low if bounds.low_open else bounds.low - 1
    return [below, math.nan] + ([] if bounds.high is None else [bounds.high + 1])


@pytest.mark.parametrize(
    "name", [name for name, field in FIELDS.items() if BOUNDS in field.metadata]
)
def test_every_bounded_field_refuses_a_value_out_of_its_range(name: str) -> None:
    """The one range check: the geocoders, brokers and stages below trust these values."""
    for value in out_of_range(FIELDS[name].metadata[BOUNDS]):
        with pytest.raises(ConfigError, match=f"^{name} must "):
            Settings().replace(**{name: value})
    assert Settings().replace(**{name: FIELDS[name].default}) == Settings()


def test_a_misspelt_variable_is_warned_of_and_other_etl4all_variables_are_not(
    caplog: pytest.LogCaptureFixture,
) -> None:
    environ = {
        "ETL4ALL_QSP": "40",  # a typo: the default qps would stay in force
        "ETL4ALL_WAREHOUSE": "mysql://db/w",
        "ETL4ALL_QPS": "20",
        "ETL4ALL_MYSQL_PORT": "3307",  # docker-compose's, and the tests' own
        "ETL4ALL_TEST_REDIS_URL": "redis://127.0.0.1:6379/0",
        "ETL4ALL_PIPELINE": "pipelines/local.toml",
    }
    with caplog.at_level(logging.WARNING, logger="etl4all.settings"):
        assert Settings.load(environ=environ).qps == 20
    assert sorted(record.getMessage() for record in caplog.records) == [
        "ETL4ALL_QSP is not a setting, and is ignored; did you mean ETL4ALL_QPS?",
        "ETL4ALL_WAREHOUSE is not a setting, and is ignored; did you mean ETL4ALL_WAREHOUSE_URL?",
    ]
