"""docker-compose.yml is valid, has every service of the runbook, and the runbook is true.

The runbook is the section "Runbook: the docker-compose stack" of docs/operations.md.

No docker-compose binary is needed: :mod:`compose_file` interpolates the file as Compose does
and validates it against the Compose Specification's JSON schema (``tests/data``).
"""

from __future__ import annotations

import copy
import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from compose_file import ComposeFileError, interpolate, load, validate

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker-compose.yml"
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
WORKERS = {"extractor": "extract", "transformer": "transform", "loader": "load"}
# the ports these services listen on by default on a developer's machine
STANDARD_PORTS = {21, 3306, 5672, 6379, 8081, 15672, 27017}
GOOGLE_QPS_QUOTA = 50  # 3,000 requests a minute


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    """The compose file as Compose sees it on a fresh machine (no variable set)."""
    return load(COMPOSE, environ={})


def published(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(host address, host port or range, container port) of each published port."""
    ports = []
    for spec in service.get("ports", []):
        assert isinstance(spec, str), spec
        *host, container_port = spec.split(":")  # [ip:][host port:]container port
        host_ip, host_port = ["", "", *host][-2:]
        ports.append((host_ip, host_port, container_port))
    return ports


def runbook() -> str:
    page = (REPO / "docs" / "operations.md").read_text()
    start = page.index("## Runbook: the docker-compose stack")
    return page[start : page.index("\n## ", start + 1)]


@pytest.mark.parametrize(
    ("text", "environ", "expected"),
    [
        ("${A:-13306}:3306", {}, "13306:3306"),
        ("${A:-13306}:3306", {"A": ""}, "13306:3306"),
        ("${A-13306}", {"A": ""}, ""),
        ("${A:-13306}", {"A": "3307"}, "3307"),
        ("$A/${A}/$$A/$${A}", {"A": "x"}, "x/x/$A/${A}"),
        ("-p$$MYSQL_ROOT_PASSWORD", {"MYSQL_ROOT_PASSWORD": "s"}, "-p$MYSQL_ROOT_PASSWORD"),
        ("${A:+on}|${B:+on}|${C+on}", {"A": "1", "B": "", "C": ""}, "on||on"),
        ("${UNSET}", {}, ""),
    ],
)
def test_interpolation_follows_the_compose_specification(
    text: str, environ: dict[str, str], expected: str
) -> None:
    assert interpolate(text, environ) == expected


@pytest.mark.parametrize("text", ["$", "cost: 5 $", "${A", "${A:-${B}}", "${}", "${A:?set A}"])
def test_interpolation_refuses_what_compose_refuses(text: str) -> None:
    with pytest.raises(ComposeFileError):
        interpolate(text, {})


def test_compose_file_is_valid_and_has_every_runbook_service(config: dict[str, Any]) -> None:
    assert set(config["services"]) >= RUNBOOK_SERVICES


@pytest.mark.parametrize(
    ("service", "change", "message"),
    [
        ("loader", {"contianer_name": "x"}, "services/loader: 'contianer_name'"),
        ("loader", {"depends_on": {"mysql": {"condition": "ready"}}}, "loader/depends_on"),
        ("loader", {"depends_on": {"pg": {"condition": "service_healthy"}}}, "undefined pg"),
        ("mysql", {"volumes": ["mysql-dat:/var/lib/mysql"]}, "undeclared volume mysql-dat"),
        ("redis", {"healthcheck": {"test": "redis-cli ping", "retries": "6"}}, "retries"),
    ],
)
def test_validation_refuses_a_broken_file(
    config: dict[str, Any], service: str, change: dict[str, Any], message: str
) -> None:
    broken = copy.deepcopy(config)
    broken["services"][service].update(change)
    with pytest.raises(ComposeFileError, match=re.escape(message)):
        validate(broken)


def test_workers_scale_and_services_match_the_runbook(config: dict[str, Any]) -> None:
    services = config["services"]
    ftp = services["ftp"]["environment"]
    assert (ftp["FTP_USER_NAME"], ftp["FTP_USER_PASS"]) == ("username", "mypass")
    assert "--local-infile=1" in services["mysql"]["command"]
    for worker, stage in WORKERS.items():
        spec = services[worker]
        # a fixed container name or host port would break `--scale`
        assert "container_name" not in spec and "ports" not in spec
        assert spec["command"] == ["run-stage", stage]
        assert spec["environment"]["ETL4ALL_BROKER_URL"].startswith("amqp://")
        assert all(dep.get("condition") for dep in spec["depends_on"].values())
    for name in RUNBOOK_SERVICES - set(WORKERS) - {"mongo-express"}:
        assert "healthcheck" in services[name], name


def test_workers_serve_metrics_to_the_compose_network(config: dict[str, Any]) -> None:
    """The default 127.0.0.1 would be each container's own loopback (issue 17)."""
    for worker in WORKERS:
        environment = config["services"][worker]["environment"]
        assert environment["ETL4ALL_METRICS_HOST"] == "0.0.0.0"
        assert environment["ETL4ALL_METRICS_PORT"] == "9100"


def test_host_ports_are_on_loopback_and_off_the_standard_ones(config: dict[str, Any]) -> None:
    seen = []
    for name, service in config["services"].items():
        for host_ip, host_port, _ in published(service):
            assert host_ip == "127.0.0.1", (name, host_ip)
            first = int(host_port.split("-")[0])
            assert first not in STANDARD_PORTS, (name, host_port)
            seen.append(first)
    assert len(seen) == len(set(seen)) >= 7


def test_a_variable_moves_a_host_port() -> None:
    services = load(COMPOSE, environ={"ETL4ALL_MYSQL_PORT": "23306"})["services"]
    assert published(services["mysql"]) == [("127.0.0.1", "23306", "3306")]


def test_broker_vhost_and_redis_db_are_dedicated_and_match_the_services_pipeline(
    config: dict[str, Any],
) -> None:
    pipeline = tomllib.loads((REPO / "pipelines" / "services.toml").read_text())["etl4all"]
    vhost = unquote(urlsplit(pipeline["broker_url"]).path[1:])
    database = urlsplit(pipeline["state_url"]).path[1:]
    assert vhost not in ("", "/") and database not in ("", "0")

    services = config["services"]
    assert services["rabbitmq"]["environment"]["RABBITMQ_DEFAULT_VHOST"] == vhost
    for worker in WORKERS:
        environment = services[worker]["environment"]
        assert unquote(urlsplit(environment["ETL4ALL_BROKER_URL"]).path[1:]) == vhost
        assert urlsplit(environment["ETL4ALL_STATE_URL"]).path[1:] == database


def test_runbook_commands_reach_the_published_ports(config: dict[str, Any]) -> None:
    host_ports = {
        int(host_port)
        for service in config["services"].values()
        for _, host_port, _ in published(service)
        if "-" not in host_port
    }
    text = runbook()
    used = {int(a or b) for a, b in re.findall(r"localhost:(\d+)|-P (\d+)", text)}
    assert used and used <= host_ports, used - host_ports
    vhost = config["services"]["rabbitmq"]["environment"]["RABBITMQ_DEFAULT_VHOST"]
    for url in re.findall(r"amqp://\S+", text):
        assert unquote(urlsplit(url).path[1:]) == vhost, url


def test_runbook_scale_example_stays_within_the_google_quota(config: dict[str, Any]) -> None:
    # the transformers share one --qps through the Redis state: the fleet's rate is ETL4ALL_QPS
    assert config["services"]["transformer"]["environment"]["ETL4ALL_STATE_URL"].startswith(
        "redis:"
    )
    lines = [line for line in runbook().splitlines() if "--scale transformer=" in line]
    assert lines
    for line in lines:
        qps = re.search(r"ETL4ALL_QPS=(\d+)", line)
        assert qps, f"the scale example must set ETL4ALL_QPS: {line}"
        assert int(qps[1]) <= GOOGLE_QPS_QUOTA, line


def test_redis_keeps_the_paid_cache_and_the_done_marks_on_disk(config: dict[str, Any]) -> None:
    redis = config["services"]["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    (volume,) = redis["volumes"]
    source, target = volume.split(":")[:2]
    assert target == "/data" and source in config["volumes"]
