"""Click options shared by the commands, each mapped to a Settings field.

Every option reads its ``ETL4ALL_*`` variable (shown in ``--help``) and defaults to None, so
``Settings.load`` can apply the order flags > variables > pipeline file > defaults. Its range
or choices and the default its help shows come from the Settings field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from etl4all.geocoders import NAMES as GEOCODERS
from etl4all.settings import BOUNDS, CHOICES, FIELDS, SECRET_ENV, kind_of

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def setting(
    field: str, *flags: str, help: str, type: Any = None, is_flag: bool = False
) -> Decorator:
    """An option that sets the Settings field ``field``; ``{default}`` in ``help`` (with a
    format spec if wanted, ``{default:g}``) shows the field's default, and the field's range
    or choices are the option's type unless ``type`` is given.

    Only a flag gets a ``flag_value``: on an option that takes a value, click reads any
    ``flag_value`` (even None) as "the value is optional", and then parses a negative number
    after it (``--qps -3``) as an unknown option instead of a value out of range.
    """
    envvar = SECRET_ENV.get(field, f"ETL4ALL_{field.upper()}")
    flag: dict[str, Any] = {"is_flag": True, "flag_value": True} if is_flag else {}
    return click.option(
        *flags,
        field,
        envvar=envvar,
        show_envvar=True,
        default=None,
        type=click_type(field) if type is None else type,
        help=help.format(default=FIELDS[field].default),
        **flag,
    )


def click_type(field: str) -> Any:
    """The click type of the Settings field ``field``: its range or choices, else None."""
    bounds = FIELDS[field].metadata.get(BOUNDS)
    choices = FIELDS[field].metadata.get(CHOICES)
    if bounds is not None:
        kind = click.IntRange if kind_of(field) is int else click.FloatRange
        return kind(bounds.low, bounds.high, min_open=bounds.low_open)
    return None if choices is None else click.Choice(choices)


def group(*decorators: Decorator) -> Decorator:
    """Apply several option decorators at once."""

    def apply(func: Callable[..., Any]) -> Callable[..., Any]:
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return apply


PIPELINE = click.option(
    "--pipeline",
    "pipeline",
    type=click.Path(exists=True, dir_okay=False),
    envvar="ETL4ALL_PIPELINE",
    show_envvar=True,
    help="Pipeline TOML file with settings (flags and variables override it), "
    "e.g. pipelines/local.toml.",
)
VERBOSITY = group(
    click.option(
        "-v",
        "--verbose",
        count=True,
        help="More log output: each -v one level more (WARNING → INFO → DEBUG; workers "
        "start at INFO).",
    ),
    click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors; no progress bar."),
)

WAREHOUSE = setting(
    "warehouse_url",
    "--warehouse",
    help="Warehouse URL: duckdb:///path.duckdb (default {default}; four slashes for an "
    "absolute path), mysql://user:pass@host:3306/db or postgresql://user:pass@host:5432/db; "
    "MySQL timeouts as query options, in seconds: connect_timeout (default 10: connecting, "
    "then the handshake), read_timeout and write_timeout (default 300: each wait for the "
    "server during a statement); TLS: ssl_ca=/path/ca.pem (MySQL), "
    "sslmode=verify-full&sslrootcert=/path/ca.pem (PostgreSQL).",
)
STATE = setting(
    "state_url",
    "--state",
    help="State URL (files done, claims, geocode cache): sqlite:///path "
    "(default {default}) or redis://host:6379/0; Redis timeouts as query "
    "options, in seconds: socket_connect_timeout (default 5), socket_timeout (default 30: "
    "each wait for a reply).",
)
LOOKUP = setting(
    "lookup_url",
    "--lookup",
    help="Lookup of loaded keys: mongodb://host:27017/db; the warehouse itself when unset.",
)
BROKER = group(
    setting(
        "broker_url",
        "--broker",
        help="RabbitMQ URL amqp://user:pass@host:5672/; in-process when unset. Timeouts as "
        "query options, in seconds: socket_timeout (default 10: the TCP connection), "
        "stack_timeout (default 15: connection and AMQP handshake), heartbeat (default 30), "
        "blocked_connection_timeout (default 60: a publish while RabbitMQ blocks publishers).",
    ),
    setting(
        "connect_timeout",
        "--connect-timeout",
        help="Seconds to keep trying to reach RabbitMQ at start before giving up (default "
        "{default:g}), each attempt bounded by what is left of them; a connection lost later is "
        "retried with backoff.",
    ),
)
QUEUE_PREFIX = setting(
    "queue_prefix", "--queue-prefix", help="Prefix of the queue names (default {default})."
)
PATTERN = setting(
    "file_pattern", "--pattern", help="Glob of the file names to take (default {default})."
)
BATCH = setting(
    "batch_rows",
    "--batch-size",
    help="Max points per batch; memory is bounded by this (default {default}).",
)
GEOCODING = group(
    setting(
        "geocoder",
        "--geocoder",
        type=click.Choice(list(GEOCODERS)),
        help="Reverse geocoder (default {default}: city/state/country, no network).",
    ),
    setting(
        "geocode_precision",
        "--geocode-precision",
        help="Decimals coordinates are rounded to before geocoding; equal keys are "
        "geocoded once (default {default}, about 11 cm).",
    ),
    setting(
        "google_key",
        "--google-key",
        help="Google Maps API key. Prefer the variable: a flag shows in the process list.",
    ),
    setting(
        "google_url",
        "--google-url",
        help="Google Geocoding endpoint (tests, proxies; default {default}).",
    ),
    setting("nominatim_url", "--nominatim-url", help="Nominatim server URL (default {default})."),
    setting(
        "user_agent",
        "--user-agent",
        help="Identifying User-Agent for Nominatim, e.g. 'acme-etl/1.0 (ops@acme.example)'.",
    ),
    setting("language", "--language", help="Language of the addresses (default {default})."),
    setting("result_type", "--result-type", help="Google result_type filter, e.g. street_address."),
    setting("location_type", "--location-type", help="Google location_type filter, e.g. ROOFTOP."),
    setting(
        "qps",
        "--qps",
        help="Max API requests per second (default 40 Google, 1 public Nominatim). The rate "
        "comes down by itself when the API answers OVER_QUERY_LIMIT/429 and creeps back up "
        "(the summary suggests a --qps). With a redis:// state it is the whole fleet's: every "
        "transformer of the same provider and key shares it; else it is per process.",
    ),
    setting(
        "concurrency",
        "--concurrency",
        help="Max API requests in flight per process (default: enough to reach --qps at a "
        "quarter of a second per answer, from 32 to 256).",
    ),
    setting(
        "max_attempts",
        "--max-attempts",
        help="Attempts per coordinate on retryable API errors (default {default}).",
    ),
    setting(
        "max_calls",
        "--max-calls",
        help="API calls this command may make in all (a run, or a worker's lifetime), counted "
        "after dedup and cache; a batch that needs more than is left is refused before any "
        "of its calls, and the command exits 1. The start-up check's one request is not "
        "counted; with 0 it is not made.",
    ),
    setting(
        "max_calls_per_day",
        "--max-calls-per-day",
        help="API calls per UTC day for every transformer of this provider and key together, "
        "counted in Redis (needs a redis:// state). Once reached, a transformer gives its batch "
        "back to the queue, stops taking new ones and exits 1; the count resets at 00:00 UTC.",
    ),
    setting(
        "request_timeout",
        "--request-timeout",
        help="Seconds an API request waits for the answer's next bytes (default {default:g}): a "
        "server that accepts the connection and never answers is given up after this long and "
        "retried as an outage. A request lasts at most --request-connect-timeout + this.",
    ),
    setting(
        "request_connect_timeout",
        "--request-connect-timeout",
        help="Seconds to open a connection to the geocoding API (default {default:g}).",
    ),
    setting(
        "cache_ttl_days",
        "--cache-ttl-days",
        help="Days a geocode result stays cached (default {default:g}, Google's limit).",
    ),
)

FINAL = setting(
    "final_seconds",
    "--final-seconds",
    help="A file unchanged this long is final (default {default:g}). Before, a file whose last "
    "record is cut off (no Distance line or next record after it yet: an upload that stalled) is "
    "loaded without that record and taken again once it changes or is final; 0 takes every "
    "file whole at once.",
)

FORCE = group(
    click.option(
        "--force",
        "force",
        is_flag=True,
        default=None,
        help="Redo every file of SOURCES even when done: the same rows again (the load is "
        "idempotent), paid answers from the cache. A flag only, no variable.",
    ),
    click.option(
        "--force-file",
        "force_files",
        multiple=True,
        metavar="NAME",
        help="Redo the files whose name (as listed: the source_file column) matches NAME, a "
        "glob such as 'day_*.txt'; repeatable. A NAME matching no file is an error.",
    ),
)
ACCEPT_SHRINK = click.option(
    "--accept-shrink",
    "accept_shrink",
    multiple=True,
    metavar="NAME",
    help="Apply the shrink of the files whose name matches NAME (a glob; repeatable): a file "
    "that became empty or a prefix of the version loaded is held, its rows kept, until it is "
    "uploaded whole or named here. A flag only, no variable.",
)
CLAIM_WAIT = setting(
    "claim_wait",
    "--claim-wait",
    help="Seconds to wait for files another live worker holds (default {default:g}); those "
    "still held then are named, with their holder, and the run exits 1. A claim of a process "
    "that has ended on this machine is taken at once.",
)
SOURCE = setting(
    "source_url",
    "--source",
    help="Where files come from: a folder, file:///dir, ftp://user:pass@host:21/dir, "
    "ftps://user:pass@host/dir, sftp://user@host/dir or s3://bucket/prefix "
    "(?timeout=30: seconds for connecting, each reply and each transfer read).",
)
SERVICES = group(
    BROKER,
    QUEUE_PREFIX,
    setting(
        "once",
        "--once",
        is_flag=True,
        help="Process what is there and exit (cron): the extractor lists twice, --settle "
        "seconds apart; consumers exit when their queue stays empty.",
    ),
    setting(
        "settle_seconds",
        "--settle",
        help="A file is taken only when its size and mtime stay unchanged this long (default "
        "{default:g}; FTP listings have minute precision, so use 60 for uploads that pause).",
    ),
    FINAL,
    setting(
        "poll_interval",
        "--interval",
        help="Seconds between two listings of the source when polling (default {default:g}).",
    ),
    setting(
        "consumers",
        "--consumers",
        help="Consumer threads per transform/load process (default {default}; or run more "
        "replicas).",
    ),
    setting(
        "prefetch",
        "--prefetch",
        help="Unacknowledged batches one consumer may hold (default {default}: a worker that stops "
        "gives back the one it holds; RabbitMQ counts any other held as a failed delivery).",
    ),
    setting(
        "max_deliveries",
        "--max-deliveries",
        help="A batch whose worker died this many times holding it (killed, out of memory) "
        "goes to the dead-letter queue (default {default}); temporary faults never count.",
    ),
    setting(
        "lease_seconds",
        "--lease",
        help="Seconds a claim on a file lasts unless renewed: a crashed extractor's file is "
        "taken over after this long (default {default:g}; renewed every third of it while the "
        "file is worked on).",
    ),
)

LOG_FORMAT = setting(
    "log_format",
    "--log-format",
    help="Log lines as text or json (default {default}): one object per line with time, level, "
    "logger, stage, file, batch, rows, seconds and message (for log shippers); json hides the "
    "progress bar. Secrets are redacted in both.",
)
OPERATIONS = group(
    LOG_FORMAT,
    setting(
        "metrics_port",
        "--metrics-port",
        help="Serve Prometheus metrics on http://HOST:PORT/metrics while the worker runs: "
        "files, points, rejects by reason, API calls, cache hits, retries, rows inserted/"
        "updated/unchanged, batches by outcome, dead letters, errors by type and batch "
        "durations (etl4all_*). Needs the metrics extra. Default: no endpoint.",
    ),
    setting(
        "metrics_host",
        "--metrics-host",
        help="Address the metrics endpoint listens on (default {default}: this machine only, "
        "as the metrics name files and hosts); 0.0.0.0 for a scraper on another machine or "
        "outside a container (docker-compose.yml sets it).",
    ),
    setting(
        "stall_seconds",
        "--stall-seconds",
        help="With --metrics-port: the liveness probe /healthz fails once the worker made no "
        "progress (no poll, no geocoding answer, no piece of a file) for this many seconds "
        "(default {default}; 0: never), so Kubernetes restarts a stuck worker and its batch "
        "goes back to the queue. Every call has a timeout: a healthy worker never waits so long.",
    ),
)

WORKER = group(
    SOURCE,
    PATTERN,
    SERVICES,
    STATE,
    LOOKUP,
    WAREHOUSE,
    BATCH,
    GEOCODING,
    OPERATIONS,
    PIPELINE,
    VERBOSITY,
)
"""Every setting of a ``run-stage`` worker (and of ``check --stage``), verbosity included."""
