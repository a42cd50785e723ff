"""The fleet's shared quota: several processes, one QPS cap and one pause, through Redis.

Each member is a separate process (``fleet_client.py``) against the fake Google server of this
process, which records the arrival time of every request.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
from fake_api import FakeApi, coord
from fleet_client import coordinates

from etl4all.errors import ConfigError
from etl4all.geocoders.google import GoogleGeocoder

CLIENT = Path(__file__).with_name("fleet_client.py")
MEMBERS = 3
EACH = 50
QPS = 40


def args(member: int) -> list[str]:
    """The rate and the coordinates of one member of the fleet."""
    return [str(QPS), str(member * EACH), str(EACH)]


@pytest.mark.redis
@pytest.mark.slow
def test_processes_share_one_cap_and_one_pause(redis_url: str) -> None:
    told = coordinates(30, 1).row(0)  # the first member is told to slow down on its 31st call
    with FakeApi() as api:
        api.script[coord(*told)] = ["OVER_QUERY_LIMIT"]
        members = [
            subprocess.Popen(
                [sys.executable, str(CLIENT), api.google_url, str(api.key), redis_url, *args(i)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for i in range(MEMBERS)
        ]
        for member in members:  # all built: start them together
            assert member.stdout is not None
            assert "ready\n" in iter(member.stdout.readline, "")
        for member in members:
            assert member.stdin is not None
            member.stdin.write("go\n")
            member.stdin.flush()
        outputs = [member.communicate(timeout=60)[0] for member in members]
        requests = list(api.requests)
    for member, out in zip(members, outputs, strict=True):
        assert member.returncode == 0, out
        assert f"geocoded {EACH}" in out
    assert len(requests) == MEMBERS * EACH + 1  # one retry of the coordinate told to wait
    # never more than the cap in any 1-second window at the server, all members together
    assert api.max_in_window(1.0) <= QPS
    # the pause: after the OVER_QUERY_LIMIT no member starts a request for about a second
    paused = next(r.t for r in requests if r.answer == "OVER_QUERY_LIMIT")
    member = {
        coord(*coordinates(i * EACH, EACH).row(k)): i for i in range(MEMBERS) for k in range(EACH)
    }
    after = [(r.t, member[coord(*map(float, r.params["latlng"].split(",")))]) for r in requests]
    assert not [t for t, _ in after if paused + 0.1 < t < paused + 0.9]
    for i in range(MEMBERS):  # every member was running on both sides of the pause
        assert any(t < paused for t, m in after if m == i)
        assert any(t > paused + 0.9 for t, m in after if m == i)
    # the fleet's keys in Redis never hold the API key in clear
    prefix = parse_qs(urlsplit(redis_url).query)["prefix"][0]
    keys = list(redis.Redis.from_url(redis_url.split("?")[0]).scan_iter(match=f"{prefix}quota:*"))
    assert keys and not [k for k in keys if str(api.key).encode() in k]


def test_a_daily_cap_needs_a_redis_state() -> None:
    with pytest.raises(ConfigError, match="redis://"):
        GoogleGeocoder(key="k", state_url="sqlite:///state.db", max_calls_per_day=10, qps=10.0)
