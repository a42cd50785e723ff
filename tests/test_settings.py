"""Settings precedence: flags > ETL4ALL_* variables > pipeline TOML > defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from etl4all.errors import ConfigError
from etl4all.settings import Settings

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
