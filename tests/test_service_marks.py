"""The service markers: derived from the fixtures, and a connection without one fails the test.

Each case runs pytest on a small test file in a child process with the ``service_marks``
plugin, its Redis pointed at a loopback port where a listener of the test stands in for it
(or nothing listens: the service is down).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

from private_server import free_port

TESTS = Path(__file__).resolve().parent
PLUGIN = ("-p", "service_marks", "-p", "no:cacheprovider", "-o", "markers=redis")

CASES = """
    import socket

    import pytest

    PORT = {port}

    @pytest.fixture
    def redis_url():
        return "redis://127.0.0.1:%d/0" % PORT

    def knock():
        with socket.socket() as sock:
            sock.settimeout(1)
            sock.connect_ex(("127.0.0.1", PORT))

    def test_through_the_fixture(redis_url):
        knock()

    def test_unmarked():
        knock()

    @pytest.mark.redis
    def test_marked():
        knock()

    def test_elsewhere():
        with socket.socket() as sock:
            sock.connect_ex(("127.0.0.1", {other}))
"""


def run_pytest(tmp_path: Path, port: int, *args: str) -> str:
    (tmp_path / "test_cases.py").write_text(
        textwrap.dedent(CASES.format(port=port, other=free_port()))
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *PLUGIN, "-rA", "-q", "test_cases.py", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "PYTHONPATH": str(TESTS),
            "ETL4ALL_TEST_REDIS_URL": f"redis://127.0.0.1:{port}/0",
        },
        timeout=60,
    )
    return done.stdout + done.stderr


def test_a_test_using_a_service_fixture_carries_its_marker(tmp_path: Path) -> None:
    out = run_pytest(tmp_path, free_port(), "-m", "not redis")
    assert "2 deselected" in out, out  # through the fixture, and the marked one
    assert "PASSED test_cases.py::test_elsewhere" in out, out


def test_an_unmarked_connection_to_a_service_fails_the_test(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as redis_stand_in:
        out = run_pytest(tmp_path, redis_stand_in.getsockname()[1])
    assert "ERROR test_cases.py::test_unmarked" in out, out
    assert "without the marker @pytest.mark.redis" in out, out
    for name in ("test_through_the_fixture", "test_marked", "test_elsewhere"):
        assert f"PASSED test_cases.py::{name}" in out, out


def test_an_unmarked_knock_on_a_closed_service_port_passes(tmp_path: Path) -> None:
    out = run_pytest(tmp_path, free_port())  # e.g. a test of a closed port: no dependency
    assert "4 passed" in out, out
