"""Start-up checks: each backend's verdict, and configuration faults told from outages."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from geocoders.fake_api import FakeApi, coord
from sources.ftp_server import FtpTestServer

from etl4all import sample
from etl4all.errors import (
    BrokerConfigError,
    BrokerError,
    ConfigError,
    GeocodeAuthError,
    GeocodeEndpointError,
    GeocodeQuotaError,
    SourceConfigError,
    StoreConfigError,
    StoreError,
    WarehouseError,
)
from etl4all.operations import check
from etl4all.runners import wiring
from etl4all.settings import Settings
from etl4all.warehouse.mysql import MySqlWarehouse


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    sample.write_sample(tmp_path / "in", files=2, points=10, seed=3)
    return Settings(
        source_url=str(tmp_path / "in"),
        warehouse_url=f"duckdb:///{tmp_path}/w.duckdb",
        state_url=f"sqlite:///{tmp_path}/s.db",
    )


@pytest.fixture
def api() -> Iterator[FakeApi]:
    with FakeApi() as server:
        yield server


def google(settings: Settings, api: FakeApi, **changes: object) -> Settings:
    fields = {"geocoder": "google", "google_key": api.key, "google_url": api.google_url}
    return settings.replace(**{**fields, **changes})


def closed_port() -> int:
    """A loopback port where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def only(results: list[check.Result]) -> check.Result:
    assert len(results) == 1, results
    return results[0]


def test_the_embedded_defaults_pass_and_say_what_they_found(
    settings: Settings, tmp_path: Path
) -> None:
    results = check.run_checks(settings, check.RUN)
    assert [r.role for r in results] == list(check.RUN)
    assert all(r.ok for r in results) and check.exit_code(results) == 0
    lines = [r.line() for r in results]
    assert lines[0] == f"ok   source {settings.source_url} (2 files)"
    assert lines[1] == (
        f"ok   state {settings.state_url} (no file yet: the first run creates {tmp_path}/s.db)"
    )
    assert lines[2].startswith("ok   warehouse duckdb:///") and "(no file yet" in lines[2]
    assert lines[4] == "ok   geocoder offline (no network: nothing to check)"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]  # a check creates no file

    with wiring.open_state(settings), wiring.open_warehouse(settings):
        pass  # what a first run makes
    lines = [r.line() for r in check.run_checks(settings, check.RUN)]
    assert lines[1].startswith("ok   state sqlite:///") and "(0 files done)" in lines[1]
    assert lines[2].startswith("ok   warehouse duckdb:///") and "(tables present)" in lines[2]


def test_a_missing_source_folder_is_a_config_fault(settings: Settings, tmp_path: Path) -> None:
    result = only(check.run_checks(settings, ["source"], sources=[str(tmp_path / "nope")]))
    assert result.config_fault and "no such file or folder" in result.line()
    assert check.exit_code([result]) == 2


def test_a_stage_without_a_source_fails_its_source_check(settings: Settings) -> None:
    result = only(check.run_checks(settings.replace(source_url=None), ["source"]))
    assert result.config_fault and "ETL4ALL_SOURCE_URL" in result.detail


def test_google_answers_one_request(settings: Settings, api: FakeApi) -> None:
    result = only(check.run_checks(google(settings, api), ["geocoder"], paid=True))
    assert result.line() == f"ok   geocoder google {api.google_url} (1 request)"
    assert result.calls == api.calls == 1 and api.answers() == {"OK": 1}


def test_max_calls_zero_makes_no_request(settings: Settings, api: FakeApi) -> None:
    result = only(check.run_checks(google(settings, api, max_calls=0), ["geocoder"], paid=True))
    assert result.ok and api.calls == 0


def test_a_wrong_key_is_a_config_fault_and_the_key_stays_secret(
    settings: Settings, api: FakeApi
) -> None:
    wrong = google(settings, api, google_key="AIzaWRONG-check-key")
    result = only(check.run_checks(wrong, ["geocoder"], paid=True))
    assert isinstance(result.error, GeocodeAuthError) and result.config_fault
    assert "REQUEST_DENIED" in result.line() and "AIzaWRONG" not in result.line()
    assert check.exit_code([result]) == 2 and api.calls == 1


def test_a_missing_key_is_a_config_fault_without_any_request(
    settings: Settings, api: FakeApi
) -> None:
    result = only(check.run_checks(google(settings, api, google_key=None), ["geocoder"], paid=True))
    assert result.config_fault and "GOOGLE_MAPS_API_KEY" in result.detail and api.calls == 0


def test_a_wrong_endpoint_path_is_a_config_fault(settings: Settings, api: FakeApi) -> None:
    wrong = google(settings, api, google_url=api.base_url + "/maps/api/geocode/jsonx")
    result = only(check.run_checks(wrong, ["geocoder"], paid=True))
    assert isinstance(result.error, GeocodeEndpointError) and check.exit_code([result]) == 2


def test_a_used_up_quota_fails_with_exit_1(settings: Settings, api: FakeApi) -> None:
    api.daily_quota = 0
    result = only(check.run_checks(google(settings, api), ["geocoder"], paid=True))
    assert isinstance(result.error, GeocodeQuotaError)
    assert not result.config_fault and check.exit_code([result]) == 1


def test_a_geocoder_that_is_down_is_an_outage_not_a_config_fault(settings: Settings) -> None:
    down = settings.replace(
        geocoder="google",
        google_key="k",
        google_url=f"http://127.0.0.1:{closed_port()}/maps/api/geocode/json",
        max_attempts=1,
    )
    result = only(check.run_checks(down, ["geocoder"], paid=True))
    assert not result.ok and not result.config_fault
    assert result.error is not None and result.error.retryable
    assert check.exit_code([result]) == 1


def test_an_unknown_host_is_a_config_fault_found_before_connecting(settings: Settings) -> None:
    unknown = settings.replace(warehouse_url="mysql://root@no-such-host.invalid:3306/etl4all")
    result = only(check.run_checks(unknown, ["warehouse"]))
    assert result.config_fault and "unknown host 'no-such-host.invalid'" in result.detail


def test_a_commands_start_up_check_never_pays(settings: Settings, api: FakeApi) -> None:
    """Issue 18: every run paid for a request for a fixed point; the key is proven by the
    first request of the work instead."""
    broken = google(settings, api, state_url="redis://127.0.0.1:1/0?socket_connect_timeout=1")
    with pytest.raises(StoreError):
        check.require(broken, check.RUN)
    check.require(google(settings, api), check.RUN)
    assert api.calls == 0
    results = check.run_checks(google(settings, api), check.RUN, paid=True)
    assert api.calls == 1 and results[-1].calls == 1  # `etl4all check` asks for it


@pytest.mark.mysql
def test_missing_schema_name_init_db_until_it_ran(settings: Settings, mysql_url: str) -> None:
    configured = settings.replace(warehouse_url=mysql_url)
    result = only(check.run_checks(configured, ["warehouse"]))
    assert result.config_fault
    assert result.line() == (
        f"FAIL warehouse {mysql_url}: tables or columns missing (address, reject, source_file, "
        "address_source); "
        "create or upgrade them with `etl4all init-db`"
    )
    with MySqlWarehouse(url=mysql_url) as wh:
        wh.init()
    assert only(check.run_checks(configured, ["warehouse"])).ok


@pytest.mark.mysql
def test_mysql_refused_password_and_server_down(settings: Settings, mysql_url: str) -> None:
    refused = mysql_url.replace("root@", "root:Wr0ng-pw@")
    result = only(check.run_checks(settings.replace(warehouse_url=refused), ["warehouse"]))
    assert result.config_fault and "Access denied" in result.detail
    assert "Wr0ng-pw" not in result.line() and "(1045," not in result.line()
    down = f"mysql://root@127.0.0.1:{closed_port()}/etl4all?connect_timeout=2"
    result = only(check.run_checks(settings.replace(warehouse_url=down), ["warehouse"]))
    assert isinstance(result.error, WarehouseError) and not result.config_fault
    assert result.line().count(down) == 1  # the URL is named once: "connecting failed: …"
    assert f"FAIL warehouse {down}: connecting failed: " in result.line()


@pytest.mark.redis
def test_redis_refused_password_and_server_down(settings: Settings, redis_url: str) -> None:
    refused = redis_url.replace("redis://", "redis://nobody-etl4all:s3cret@")
    result = only(check.run_checks(settings.replace(state_url=refused), ["state"]))
    assert isinstance(result.error, StoreConfigError) and "s3cret" not in result.line()
    down = f"redis://127.0.0.1:{closed_port()}/0"
    result = only(check.run_checks(settings.replace(state_url=down), ["state"]))
    assert isinstance(result.error, StoreError) and not result.config_fault
    assert only(check.run_checks(settings.replace(state_url=redis_url), ["state"])).ok


def test_mongomock_lookup_pings(settings: Settings) -> None:
    configured = settings.replace(lookup_url="mongomock://localhost/etl4all_check")
    assert only(check.run_checks(configured, ["lookup"])).detail == "ping answered"


def test_ftp_refused_login_is_a_config_fault(settings: Settings, tmp_path: Path) -> None:
    with FtpTestServer(tmp_path / "ftp") as ftp:
        assert only(check.run_checks(settings, ["source"], sources=[ftp.url])).ok
        refused = ftp.url.replace(ftp.password, "Wr0ngPa55")
        result = only(check.run_checks(settings, ["source"], sources=[refused]))
    assert isinstance(result.error, SourceConfigError) and "Wr0ngPa55" not in result.line()


@pytest.mark.rabbitmq
def test_broker_declares_its_queues_refuses_a_bad_login_and_fails_fast_when_down(
    settings: Settings, amqp_url: str, unique: str
) -> None:
    configured = settings.replace(broker_url=amqp_url, queue_prefix=f"etl4all-test-{unique}")
    result = only(check.run_checks(configured, ["broker"], quick=True))
    assert result.ok and f"etl4all-test-{unique}.points" in result.detail
    assert "reconnect_attempts" not in result.line()  # the quick option is not shown
    with wiring.open_broker(configured) as bus:
        assert bus.depth(bus.topology.dead) == 0  # the check declared every queue
        bus.delete()
    refused = configured.replace(broker_url=amqp_url.replace("guest:guest", "guest:Wr0ng"))
    result = only(check.run_checks(refused, ["broker"], quick=True))
    assert isinstance(result.error, BrokerConfigError) and "Wr0ng" not in result.line()
    down = configured.replace(broker_url=f"amqp://guest:guest@127.0.0.1:{closed_port()}/")
    result = only(check.run_checks(down, ["broker"], quick=True))
    assert isinstance(result.error, BrokerError) and not result.config_fault


def test_config_faults_outrank_outages_in_the_exit_code() -> None:
    outage = check.Result("state", "redis://h/0", "down", StoreError("down"))
    fault = check.Result("warehouse", "mysql://h/db", "bad", ConfigError("bad"))
    fine = check.Result("lookup", "warehouse", "fine")
    assert check.exit_code([fine]) == 0
    assert check.exit_code([fine, outage]) == 1
    assert check.exit_code([outage, fault, fine]) == 2


def test_hosts_that_cannot_be_resolved_alone_are_left_to_their_backend(
    settings: Settings,
) -> None:
    replica_set = settings.replace(lookup_url="mongomock://localhost,other-host.invalid/etl4all")
    assert "unknown host" not in only(check.run_checks(replica_set, ["lookup"])).detail
    broken = settings.replace(warehouse_url="mysql://root@[::1/etl4all")
    result = only(check.run_checks(broken, ["warehouse"]))
    assert result.config_fault and "unknown host" not in result.detail


def test_a_refused_check_coordinate_is_a_config_fault(settings: Settings, api: FakeApi) -> None:
    api.invalid = {coord(*check.CHECK_POINT)}
    result = only(check.run_checks(google(settings, api), ["geocoder"], paid=True))
    assert result.config_fault and "invalid_request" in result.detail


@pytest.mark.parametrize(
    ("role", "change"),
    [
        ("warehouse", {"warehouse_url": "mysql://root:pa/ss@127.0.0.1:1/etl4all"}),
        ("state", {"state_url": "redis://u:pa?ss@127.0.0.1:1/0"}),
        ("broker", {"broker_url": "amqp://guest:pa#ss@127.0.0.1:1/"}),
        ("lookup", {"lookup_url": "mongodb://u:pa/ss@127.0.0.1:1/etl4all"}),
    ],
)
def test_a_password_that_splits_the_url_is_named_before_any_lookup(
    settings: Settings, role: str, change: dict[str, str]
) -> None:
    """Issue 17, item 9: the user name was looked up as the host ("unknown host 'root'")."""
    result = only(check.run_checks(settings.replace(**change), [role], quick=True))
    assert result.config_fault and "percent-encode" in result.detail, result.line()
    assert "unknown host" not in result.line() and "pa" not in result.line().split("@")[0]


def test_an_ftp_source_whose_password_splits_the_url_is_named_before_any_lookup(
    settings: Settings,
) -> None:
    url = "ftp://user:pa/ss@127.0.0.1:1/in"
    result = only(check.run_checks(settings, ["source"], sources=[url]))
    assert result.config_fault and "percent-encode" in result.detail
