"""docker-compose.yml is valid and has every service of the runbook.

No Docker engine runs here; Debian's docker-compose validates the file offline
(`.ci/run` installs it).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
RUNBOOK_SERVICES = {
    "rabbitmq",
    "mysql",
    "ftp",
    "mongo",
    "mongo-express",
    "redis",
    "extractor",
    "transformer",
    "loader",
}


def compose(*args: str) -> str:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose is not installed (apt-get install docker-compose)")
    result = subprocess.run(
        [binary, "-f", str(REPO / "docker-compose.yml"), *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_compose_file_is_valid() -> None:
    compose("config", "-q")


def test_every_runbook_service_exists() -> None:
    assert set(compose("config", "--services").split()) >= RUNBOOK_SERVICES


def test_workers_scale_and_services_match_the_runbook() -> None:
    services = yaml.safe_load(compose("config"))["services"]
    ftp = services["ftp"]["environment"]
    assert (ftp["FTP_USER_NAME"], ftp["FTP_USER_PASS"]) == ("username", "mypass")
    assert "--local-infile=1" in services["mysql"]["command"]
    for worker, stage in (
        ("extractor", "extract"),
        ("transformer", "transform"),
        ("loader", "load"),
    ):
        spec = services[worker]
        # a fixed container name or host port would break `--scale`
        assert "container_name" not in spec and "ports" not in spec
        assert spec["command"] == ["run-stage", stage]
        assert spec["environment"]["ETL4ALL_BROKER_URL"].startswith("amqp://")
        assert all(dep.get("condition") for dep in spec["depends_on"].values())
    for name in RUNBOOK_SERVICES - {"extractor", "transformer", "loader", "mongo-express"}:
        assert "healthcheck" in services[name], name
