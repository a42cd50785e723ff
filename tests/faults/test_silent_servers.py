"""Fault scenarios: a server that accepts connections and never answers.

A loopback listener (:mod:`silent_server`) takes the place of each of MySQL, Redis, RabbitMQ,
FTP and the geocoding API in turn. ``etl4all run`` must not hang: it exits 1 (a temporary
fault, :data:`etl4all.exits.TRANSIENT`) with one error line that names the host, the port and
what timed out, and no traceback; ``etl4all check`` prints one such FAIL line per silent
backend. The timeouts are set to a second, and every command runs under
:func:`silent_server.bounded`, so a timeout that does not apply fails the test rather than
hanging it. No service is needed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from silent_server import SilentServer, bounded

from etl4all import exits, sample
from etl4all.cli import cli

pytestmark = pytest.mark.faults

BOUND = 30.0
"""Seconds a command may take at most: the 1 s timeouts, start-up and ample slack."""

Args = Callable[[SilentServer], list[str]]
SCENARIOS: dict[str, tuple[Args, str]] = {
    "mysql": (
        lambda s: ["--warehouse", s.url("mysql", "/etl4all?connect_timeout=1", "root:pw")],
        "accepted the connection but did not complete the handshake within 1 s (connect_timeout)",
    ),
    "redis": (
        lambda s: ["--state", s.url("redis", "/0?socket_timeout=1")],
        "did not answer within 1 s (socket_timeout)",
    ),
    "rabbitmq": (
        lambda s: ["--broker", s.url("amqp", "/", "guest:guest"), "--connect-timeout", "1"],
        "did not complete the connection and the AMQP handshake within 1 s (stack_timeout)",
    ),
    "ftp": (
        lambda s: [s.url("ftp", "/in?timeout=1", "user:pw")],
        "accepted the connection but sent no greeting within 1 s (timeout)",
    ),
    "geocoder": (
        lambda s: [
            *("--geocoder", "google", "--google-key", "AIzaSilentServerTest"),
            *("--google-url", s.url("http", "/maps/api/geocode/json")),
            *("--request-timeout", "1", "--max-attempts", "1"),
        ],
        "did not answer within 1 s (--request-timeout)",
    ),
}


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with a few sample files; the embedded defaults (DuckDB, SQLite) live there."""
    sample.write_sample(tmp_path / "in", files=1, points=5, seed=17)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def invoke(args: list[str]) -> Result:
    return bounded(BOUND, lambda: CliRunner().invoke(cli, args))


@pytest.mark.parametrize("backend", list(SCENARIOS))
def test_run_exits_1_with_one_line(backend: str, workdir: Path) -> None:
    args, what = SCENARIOS[backend]
    with SilentServer() as server:
        extra = args(server)
        sources = [] if backend == "ftp" else ["in"]
        result = invoke(["run", *sources, *extra, "-q"])
    assert result.exit_code == exits.TRANSIENT, result.output
    assert "Traceback" not in result.output and "Exception in thread" not in result.output
    # a silent geocoder sets its batch aside (the run goes on, then exits 1): one line says so
    said = ("error: ", "set aside: ")
    errors = [line for line in result.output.splitlines() if line.startswith(said)]
    assert len(errors) == 1, result.output
    assert f"127.0.0.1:{server.port} {what}" in errors[0]
    assert "reconnect_attempts" not in result.output


def test_check_names_every_silent_server(workdir: Path) -> None:
    # not Redis: with a redis:// state the geocoder's rate limiter waits on it first
    backends = [backend for backend in SCENARIOS if backend != "redis"]
    with contextlib.ExitStack() as stack:
        servers = {backend: stack.enter_context(SilentServer()) for backend in backends}
        args = [arg for name, server in servers.items() for arg in SCENARIOS[name][0](server)]
        result = invoke(["check", *args])
    assert result.exit_code == exits.TRANSIENT, result.output
    assert "Traceback" not in result.output
    failed = [line for line in result.output.splitlines() if line.startswith("FAIL ")]
    assert len(failed) == len(backends), result.output
    assert "reconnect_attempts" not in result.output  # the check's single attempt is not shown
    for backend, server in servers.items():
        what = SCENARIOS[backend][1]
        assert any(f"127.0.0.1:{server.port} {what}" in line for line in failed), backend
