"""Settings: built-in defaults < pipeline TOML < ``ETL4ALL_*`` variables < command-line flags.

This is the only module that reads ``os.environ``. Every field is documented below; the
environment variable of a field is ``ETL4ALL_`` + its name in capitals (``warehouse_url`` →
``ETL4ALL_WAREHOUSE_URL``), except the Google key, read from ``GOOGLE_MAPS_API_KEY``, and
the one-off fields of :data:`FLAGS_ONLY`, which only a command-line flag sets.

:class:`Settings` owns every default and range: a field's default and its :class:`Bounds`
(or choices) are written here once. The click options (:mod:`etl4all.options`) are built
from them, a pipeline file is checked against them, and the library parameters below take
their defaults from :data:`DEFAULTS`.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from etl4all import urls
from etl4all.errors import ConfigError

log = logging.getLogger(__name__)

SECRET_ENV = {"google_key": "GOOGLE_MAPS_API_KEY"}
"""Fields read from a variable that is not ``ETL4ALL_<NAME>``."""

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
"""The log levels ``log_level`` accepts (in any case), most verbose first."""

FLAGS_ONLY = ("force", "force_files", "accept_shrink")
"""Fields no variable or pipeline file sets: forcing a file or accepting its shrink is a
one-off, never a standing setting."""

BOUNDS = "bounds"
"""Key of a field's :class:`Bounds` in its metadata."""
CHOICES = "choices"
"""Key of a field's allowed values in its metadata."""


@dataclasses.dataclass(frozen=True)
class Bounds:
    """The range of a number setting: from ``low`` (excluded when ``low_open``) to ``high``."""

    low: float
    high: float | None = None
    low_open: bool = False

    def admits(self, value: float) -> bool:
        """Whether ``value`` lies in the range (NaN never does)."""
        above = value > self.low if self.low_open else value >= self.low
        return above and (self.high is None or value <= self.high)

    def rule(self) -> str:
        """The range in words, e.g. ``must be at least 1``."""
        if self.high is not None:
            return f"must be {self.low:g}..{self.high:g}"
        if self.low_open:
            return "must be positive" if self.low == 0 else f"must be above {self.low:g}"
        return "must not be negative" if self.low == 0 else f"must be at least {self.low:g}"


POSITIVE = Bounds(0, low_open=True)
NOT_NEGATIVE = Bounds(0)
AT_LEAST_ONE = Bounds(1)
"""The common ranges (``> 0``, ``>= 0``, ``>= 1``)."""


def _within(bounds: Bounds, default: Any = None) -> Any:
    """A field whose value (unless None) must lie within ``bounds``."""
    return dataclasses.field(default=default, metadata={BOUNDS: bounds})


def _one_of(default: str, *choices: str) -> Any:
    """A field whose value must be ``default`` or one of ``choices``."""
    return dataclasses.field(default=default, metadata={CHOICES: (default, *choices)})


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything a run or a worker needs to know, resolved once at start-up."""

    source_url: str | None = None
    """Where coordinate files come from: a folder or a ``file``, ``ftp``, ``ftps``, ``sftp`` or
    ``s3`` URL (:data:`etl4all.sources.SCHEMES`)."""
    file_pattern: str = "*.txt"
    """Glob of the file names to take from the source."""
    settle_seconds: float = _within(NOT_NEGATIVE, 2.0)
    """A file is taken only when its size and mtime stay the same this long (FTP listings
    have minute precision)."""
    poll_interval: float = _within(POSITIVE, 10.0)
    """Seconds between two listings of the source when polling."""
    final_seconds: float = _within(NOT_NEGATIVE, 300.0)
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
    claim_wait: float = _within(NOT_NEGATIVE, 60.0)
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
    """``duckdb:///path``, ``mysql://user:pass@host:3306/db`` or
    ``postgresql://user:pass@host:5432/db``."""
    geocoder: str = "offline"
    """Reverse geocoder: ``offline``, ``google`` or ``nominatim``."""
    geocode_precision: int = _within(Bounds(0, 8), 6)
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
    qps: float | None = _within(POSITIVE)
    """Max API requests per second (default 40 for Google, 1 for public Nominatim): for the
    whole fleet of transformers when the state is ``redis://``, else per process. The rate
    actually used comes down below it when the API answers over its limit."""
    concurrency: int | None = _within(AT_LEAST_ONE)
    """Max API requests in flight per process; None: enough to reach ``qps`` at a quarter of
    a second per answer, from 32 to 256 (:func:`etl4all.geocoders.api.concurrency_for`)."""
    max_attempts: int = _within(AT_LEAST_ONE, 5)
    """Attempts per coordinate on retryable API errors before giving up."""
    max_calls: int | None = _within(NOT_NEGATIVE)
    """API calls one command may make (a run, or a worker's lifetime), after dedup and cache."""
    max_calls_per_day: int | None = _within(AT_LEAST_ONE)
    """API calls per UTC day for the whole fleet of this provider and key, counted in Redis."""
    request_timeout: float = _within(POSITIVE, 10.0)
    """Seconds an API request waits for each read of the answer (a silent server is given up
    after this long); a request lasts at most ``request_connect_timeout`` + this."""
    request_connect_timeout: float = _within(POSITIVE, 5.0)
    """Seconds to open a connection to the geocoding API."""
    cache_ttl_days: float = _within(POSITIVE, 30.0)
    """Days a geocode result stays in the cache (Google's terms allow caching results
    derived from its answers for at most 30 days)."""
    price_per_1000: float = _within(NOT_NEGATIVE, 5.0)
    """USD per 1,000 API calls, for ``etl4all estimate``."""
    batch_rows: int = _within(AT_LEAST_ONE, 100_000)
    """Max points per batch (memory is bounded by this, not by file size)."""
    consumers: int = _within(AT_LEAST_ONE, 1)
    """Consumers per ``run-stage`` process."""
    prefetch: int = _within(AT_LEAST_ONE, 1)
    """Unacknowledged messages a consumer may hold. One: a worker that stops (a refused key,
    a used-up quota) gives back the batch it holds; RabbitMQ would count any other it held
    as a failed delivery, towards the dead-letter limit."""
    connect_timeout: float = _within(POSITIVE, 30.0)
    """Seconds a command keeps trying to reach RabbitMQ at start."""
    max_deliveries: int = _within(AT_LEAST_ONE, 3)
    """A message that fails this many times goes to the dead-letter queue."""
    lease_seconds: float = _within(POSITIVE, 30.0)
    """A claim on a file expires after this long unless renewed (a heartbeat renews it every
    third of that while the file is worked on), so another replica takes a crashed one's file."""
    log_level: str | None = None
    """DEBUG, INFO, WARNING or ERROR (any case); None: the command's own (WARNING, INFO for
    workers)."""
    log_format: str = _one_of("text", "json")
    """``text`` (one readable line per record) or ``json`` (one JSON object per line)."""
    metrics_port: int | None = _within(Bounds(1, 65535))
    """Port of a worker's Prometheus ``/metrics`` endpoint; none when absent."""
    metrics_host: str = "127.0.0.1"
    """Address the ``/metrics`` endpoint listens on: this machine only by default (the
    metrics name files and hosts); ``0.0.0.0`` in a container, for a scraper outside it."""
    stall_seconds: float = _within(NOT_NEGATIVE, 900.0)
    """Seconds without progress after which the ``/healthz`` probe fails (0: never); see
    :mod:`etl4all.liveness`."""
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
            ConfigError: unreadable pipeline file, unknown key, or a value of the wrong type
                or out of range; the message names the file or variable it came from.
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
                values[field.name] = _value(field.name, environ[name], where=name)
        _warn_of_misspelt(environ)
        if "spool_dir" not in values and environ.get("TMPDIR", "") != "":
            values["spool_dir"] = environ["TMPDIR"]  # what the spool's docs promise
        for name, value in (overrides or {}).items():
            if value is not None:
                values[name] = _value(name, value)
        return cls(**values).validated()

    def validated(self) -> Settings:
        """Check every value against its field's range or choices; return self.

        Raises:
            ConfigError: a value out of range.
        """
        for field in dataclasses.fields(self):
            _check(field, getattr(self, field.name))
        if self.log_level is not None and self.log_level.upper() not in LOG_LEVELS:
            raise ConfigError(
                f"log_level must be one of {', '.join(LOG_LEVELS)} (in any case), "
                f"got {self.log_level!r}; set ETL4ALL_LOG_LEVEL or log_level in the pipeline "
                "file to one of them, or leave it unset"
            )
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
FIELDS = {field.name: field for field in dataclasses.fields(Settings)}
"""The fields of :class:`Settings` by name: their defaults, types and ranges."""
DEFAULTS = Settings()
"""Every setting at its default: the library parameters below ``Settings`` default to these."""


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


def kind_of(name: str) -> type:
    """The type of the field ``name`` without its None (``float`` for ``qps``)."""
    hint = _hint(name)
    if isinstance(hint, types.UnionType):
        (hint,) = (t for t in typing.get_args(hint) if t is not type(None))
    return typing.get_origin(hint) or hint


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
    where = f"pipeline file {path}"
    for name in table:
        if name not in FIELDS:
            raise ConfigError(f"{where}: unknown setting {name!r}{_nearest(name)}")
    return {name: _value(name, value, where=where) for name, value in table.items()}


def _warn_of_misspelt(environ: Mapping[str, str]) -> None:
    """Warn of each ``ETL4ALL_*`` variable that is no setting but nearly one (``ETL4ALL_QSP``):
    a typo would leave the default in force. Only near ones: the docker-compose file's ports
    and the tests' URLs share the prefix."""
    known = {f"ETL4ALL_{name.upper()}" for name in FIELDS if name not in FLAGS_ONLY}
    for variable in environ:
        if not variable.startswith("ETL4ALL_") or variable in known:
            continue
        near = difflib.get_close_matches(variable, known, n=1, cutoff=0.85)
        if near:
            log.warning("%s is not a setting, and is ignored; did you mean %s?", variable, near[0])


def _nearest(name: str) -> str:
    """``; did you mean 'qps'?`` for the setting nearest to ``name``, if one is near."""
    names = [field for field in FIELDS if field not in FLAGS_ONLY]
    near = difflib.get_close_matches(name.lower().replace("-", "_"), names, n=1)
    return f"; did you mean {near[0]!r}?" if near else ""


def _value(name: str, value: Any, where: str | None = None) -> Any:
    """``value`` converted to the type of the field ``name`` and checked against its range.

    Raises:
        ConfigError: it is not of that type or out of range; the message starts with
            ``where`` (the pipeline file or the variable it came from).
    """
    try:
        converted = _convert(name, value)
        _check(FIELDS[name], converted)
    except ConfigError as exc:
        if where is None:
            raise
        raise ConfigError(f"{where}: {exc}") from exc
    return converted


def _check(field: dataclasses.Field[Any], value: Any) -> None:
    """Raise ConfigError when ``value`` (unless None) is outside ``field``'s range or choices."""
    bounds: Bounds | None = field.metadata.get(BOUNDS)
    choices: tuple[str, ...] | None = field.metadata.get(CHOICES)
    if value is None:
        return
    if bounds is not None and not bounds.admits(value):
        raise ConfigError(f"{field.name} {bounds.rule()}, got {value}")
    if choices is not None and value not in choices:
        allowed = ", ".join(choices[:-1]) + f" or {choices[-1]}"
        raise ConfigError(f"{field.name} must be {allowed}, got {value!r}")


def _convert(name: str, value: Any) -> Any:
    """Convert a TOML, environment or flag value to the field's type."""
    if isinstance(_hint(name), types.UnionType) and value in ("", None):
        return None
    kind = kind_of(name)
    if kind is tuple:  # a repeatable flag's values
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
