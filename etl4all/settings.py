"""Settings: built-in defaults < pipeline TOML < ``ETL4ALL_*`` variables < command-line flags.

This is the only module that reads ``os.environ``. Every field is documented below; the
environment variable of a field is ``ETL4ALL_`` + its name in capitals (``warehouse_url`` →
``ETL4ALL_WAREHOUSE_URL``), except the Google key, read from ``GOOGLE_MAPS_API_KEY``, and
the one-off fields of :data:`FLAGS_ONLY`, which only a command-line flag sets.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from etl4all import urls
from etl4all.errors import ConfigError

SECRET_ENV = {"google_key": "GOOGLE_MAPS_API_KEY"}
"""Fields read from a variable that is not ``ETL4ALL_<NAME>``."""

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
"""The log levels ``log_level`` accepts (in any case), most verbose first."""

FLAGS_ONLY = ("force", "force_files", "accept_shrink")
"""Fields no variable or pipeline file sets: forcing a file or accepting its shrink is a
one-off, never a standing setting."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything a run or a worker needs to know, resolved once at start-up."""

    source_url: str | None = None
    """Where coordinate files come from: a folder, ``file:///dir`` or ``ftp://user:pass@host/dir``."""
    file_pattern: str = "*.txt"
    """Glob of the file names to take from the source."""
    settle_seconds: float = 2.0
    """An FTP file is taken only when its size and mtime stay the same this long."""
    poll_interval: float = 10.0
    """Seconds between two listings of the source when polling."""
    final_seconds: float = 300.0
    """A file unchanged this long is final; before, a cut-off last record is left out."""
    once: bool = False
    """Process what is there and exit instead of polling (for cron)."""
    force: bool = False
    """Redo every file of the sources even when done (``run --force``; a flag only)."""
    force_files: tuple[str, ...] = ()
    """Globs of file names to redo even when done (``run --force-file``; a flag only)."""
    accept_shrink: tuple[str, ...] = ()
    """Globs of file names whose shrink to a prefix of the version loaded is applied, not
    held (``--accept-shrink``; a flag only)."""
    claim_wait: float = 60.0
    """Seconds ``etl4all run`` waits for files another live worker holds, before it reports
    them and exits 1."""
    broker_url: str | None = None
    """``amqp://`` URL of RabbitMQ; in-process when absent."""
    queue_prefix: str = "etl4all"
    """Prefix of every queue name (``etl4all.points``, ``etl4all.addresses``, ``etl4all.dead``)."""
    state_url: str = "sqlite:///.etl4all/state.db"
    """Files done, claims and the geocode cache: ``redis://`` or ``sqlite:///path``."""
    lookup_url: str | None = None
    """``mongodb://host/db`` lookup of loaded keys; the warehouse itself when absent."""
    warehouse_url: str = "duckdb:///etl4all.duckdb"
    """``duckdb:///path`` or ``mysql://user:pass@host:3306/db``."""
    geocoder: str = "offline"
    """Reverse geocoder: ``offline``, ``google`` or ``nominatim``."""
    geocode_precision: int = 6
    """Coordinates are rounded to this many decimals before geocoding (6 ≈ 11 cm)."""
    google_key: str | None = dataclasses.field(default=None, repr=False)
    """Google Maps API key (``GOOGLE_MAPS_API_KEY``); never logged."""
    google_url: str = "https://maps.googleapis.com/maps/api/geocode/json"
    """Google Geocoding endpoint; override for proxies, tests and compatible servers."""
    language: str = "pt-BR"
    """Language of the addresses returned by the API geocoders."""
    result_type: str | None = None
    """Google ``result_type`` filter, e.g. ``street_address|route``."""
    location_type: str | None = None
    """Google ``location_type`` filter, e.g. ``ROOFTOP``."""
    nominatim_url: str = "https://nominatim.openstreetmap.org"
    """Nominatim server (the public one allows 1 request/s and needs a real User-Agent)."""
    user_agent: str | None = None
    """Identifying User-Agent for Nominatim, e.g. ``acme-etl/1.0 (ops@acme.example)``."""
    qps: float | None = None
    """Max API requests per second (default 40 for Google, 1 for public Nominatim): for the
    whole fleet of transformers when the state is ``redis://``, else per process. The rate
    actually used comes down below it when the API answers over its limit."""
    concurrency: int | None = None
    """Max API requests in flight per process; None: enough to reach ``qps`` at a quarter of
    a second per answer, from 32 to 256 (:func:`etl4all.geocoders.api.concurrency_for`)."""
    max_attempts: int = 5
    """Attempts per coordinate on retryable API errors before giving up."""
    max_calls: int | None = None
    """API calls one command may make (a run, or a worker's lifetime), after dedup and cache."""
    max_calls_per_day: int | None = None
    """API calls per UTC day for the whole fleet of this provider and key, counted in Redis."""
    request_timeout: float = 10.0
    """Seconds an API request waits for each read of the answer (a silent server is given up
    after this long); a request lasts at most ``request_connect_timeout`` + this."""
    request_connect_timeout: float = 5.0
    """Seconds to open a connection to the geocoding API."""
    cache_ttl_days: float | None = None
    """Days a geocode result stays in the cache (default 30 for Google and Nominatim)."""
    price_per_1000: float = 5.0
    """USD per 1,000 API calls, for ``etl4all estimate``."""
    batch_rows: int = 100_000
    """Max points per batch (memory is bounded by this, not by file size)."""
    consumers: int = 1
    """Consumers per ``run-stage`` process."""
    prefetch: int = 1
    """Unacknowledged messages a consumer may hold. One: a worker that stops (a refused key,
    a used-up quota) gives back the batch it holds; RabbitMQ would count any other it held
    as a failed delivery, towards the dead-letter limit."""
    connect_timeout: float = 30.0
    """Seconds a command keeps trying to reach RabbitMQ at start."""
    max_deliveries: int = 3
    """A message that fails this many times goes to the dead-letter queue."""
    lease_seconds: float = 30.0
    """A claim on a file expires after this long unless renewed (a heartbeat renews it every
    third of that while the file is worked on), so another replica takes a crashed one's file."""
    log_level: str | None = None
    """DEBUG, INFO, WARNING or ERROR (any case); None: the command's own (WARNING, INFO for
    workers)."""
    log_format: str = "text"
    """``text`` (one readable line per record) or ``json`` (one JSON object per line)."""
    metrics_port: int | None = None
    """Port of a worker's Prometheus ``/metrics`` endpoint; none when absent."""
    metrics_host: str = "127.0.0.1"
    """Address the ``/metrics`` endpoint listens on: this machine only by default (the
    metrics name files and hosts); ``0.0.0.0`` in a container, for a scraper outside it."""
    spool_dir: str | None = None
    """Folder of the MySQL loader's ``LOAD DATA`` files (in its ``etl4all-<uid>`` subfolder);
    default ``$TMPDIR``, else the system's temporary folder. One that cannot be written to is
    a configuration error: it is never silently replaced by another folder."""

    @classmethod
    def load(
        cls,
        pipeline_file: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> Settings:
        """Resolve settings: defaults < pipeline TOML < environment < ``overrides``.

        Raises:
            ConfigError: unreadable pipeline file, unknown key or a value of the wrong type.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        if pipeline_file is not None:
            values.update(_read_pipeline(Path(pipeline_file)))
        for field in dataclasses.fields(cls):
            if field.name in FLAGS_ONLY:
                continue
            name = SECRET_ENV.get(field.name, f"ETL4ALL_{field.name.upper()}")
            if environ.get(name, "") != "":
                values[field.name] = _convert(field.name, environ[name], _hint(field.name))
        if "spool_dir" not in values and environ.get("TMPDIR", "") != "":
            values["spool_dir"] = environ["TMPDIR"]  # what the spool's docs promise
        for name, value in (overrides or {}).items():
            if value is not None:
                values[name] = _convert(name, value, _hint(name))
        return cls(**values).validated()

    def validated(self) -> Settings:
        """Check value ranges; return self.

        Raises:
            ConfigError: a value out of range.
        """
        positive = ("batch_rows", "concurrency", "max_attempts", "consumers", "prefetch")
        for name in positive:
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.log_level is not None and self.log_level.upper() not in LOG_LEVELS:
            raise ConfigError(
                f"log_level must be one of {', '.join(LOG_LEVELS)} (in any case), "
                f"got {self.log_level!r}; set ETL4ALL_LOG_LEVEL or log_level in the pipeline "
                "file to one of them, or leave it unset"
            )
        if self.log_format not in ("text", "json"):
            raise ConfigError(f"log_format must be text or json, got {self.log_format!r}")
        if self.metrics_port is not None and not 0 < self.metrics_port < 65536:
            raise ConfigError(f"metrics_port must be 1..65535, got {self.metrics_port}")
        if not 0 <= self.geocode_precision <= 8:
            raise ConfigError(f"geocode_precision must be 0..8, got {self.geocode_precision}")
        if self.qps is not None and self.qps <= 0:
            raise ConfigError(f"qps must be positive, got {self.qps}")
        if self.max_calls is not None and self.max_calls < 0:
            raise ConfigError(f"max_calls must not be negative, got {self.max_calls}")
        if self.max_calls_per_day is not None and self.max_calls_per_day < 1:
            raise ConfigError(f"max_calls_per_day must be at least 1, got {self.max_calls_per_day}")
        for name in ("final_seconds", "claim_wait"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"{name} must not be negative, got {getattr(self, name)}")
        if self.max_deliveries < 1:
            raise ConfigError(f"max_deliveries must be at least 1, got {self.max_deliveries}")
        return self

    def __repr__(self) -> str:
        """The fields, URL passwords and ``key=`` values hidden, secret fields left out."""
        shown = (
            f"{f.name}={_redacted(getattr(self, f.name))!r}"
            for f in dataclasses.fields(self)
            if f.repr
        )
        return f"Settings({', '.join(shown)})"

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied and validated."""
        return dataclasses.replace(self, **changes).validated()


_HINTS = typing.get_type_hints(Settings)


def requested_log_format(
    pipeline_file: str | os.PathLike[str] | None = None,
    flag: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> str:
    """The log format asked for (flag > ``ETL4ALL_LOG_FORMAT`` > pipeline file > ``text``),
    read without validating anything else: the format of the error line when the settings
    themselves are wrong. Never raises."""
    environ = os.environ if environ is None else environ
    asked = flag or environ.get("ETL4ALL_LOG_FORMAT")
    if not asked and pipeline_file is not None:
        try:
            data = tomllib.loads(Path(pipeline_file).read_text(encoding="utf-8"))
            asked = data.get("etl4all", data).get("log_format")
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, AttributeError):
            asked = None
    return "json" if str(asked).strip().lower() == "json" else "text"


def _redacted(value: Any) -> Any:
    return urls.redact(value) if isinstance(value, str) else value


def _hint(name: str) -> Any:
    if name not in _HINTS:
        raise ConfigError(f"unknown setting {name!r}")
    return _HINTS[name]


def _read_pipeline(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read pipeline file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"pipeline file {path} is not valid TOML: {exc}") from exc
    table = data.get("etl4all", data)
    if one_off := sorted(set(table) & set(FLAGS_ONLY)):
        raise ConfigError(f"pipeline file {path}: {', '.join(one_off)} can only be given as flags")
    return {name: _convert(name, value, _hint(name)) for name, value in table.items()}


def _convert(name: str, value: Any, hint: Any) -> Any:
    """Convert a TOML, environment or flag value to the field's type."""
    kinds = [t for t in typing.get_args(hint) if t is not type(None)] or [hint]
    if isinstance(hint, types.UnionType) and value in ("", None):
        return None
    kind = kinds[0]
    if typing.get_origin(hint) is tuple:  # a repeatable flag's values
        return tuple(str(item) for item in value)
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        return kind(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name} expects {kind.__name__}, got {value!r}") from exc
