"""RedisState against a Redis of its own that restarts and forgets its scripts.

The claims' Lua scripts must survive a ``SCRIPT FLUSH`` and a restart, and a lease the
restarted server forgot is taken again by its holder's next renewal (the file is not given up
for nothing). The server is a private ``redis-server`` (:mod:`private_redis`), never the
shared one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from contracts.state import FILE
from private_redis import PrivateRedis

from etl4all.state.base import FileMark
from etl4all.state.redis import RedisState

pytestmark = pytest.mark.redis


@pytest.fixture
def server(tmp_path: Path) -> Iterator[PrivateRedis]:
    with PrivateRedis(tmp_path) as private:
        yield private


def test_the_claim_scripts_survive_a_script_flush(server: PrivateRedis) -> None:
    with RedisState(url=server.url()) as store, server.client() as admin:
        token = store.claim(FILE, 30)
        assert token
        admin.script_flush()
        assert store.renew(FILE, token, 30)
        admin.script_flush()
        taken = store.claim(FILE, 30, replace=token)
        assert taken and taken != token
        admin.script_flush()
        store.release(FILE, taken)
        assert store.holder(FILE) is None


def test_a_lease_redis_forgot_is_taken_again_by_its_renewal(server: PrivateRedis) -> None:
    with RedisState(url=server.url()) as store, RedisState(url=server.url()) as other:
        token = store.claim(FILE, 30)
        assert token
        store.mark_done({"other.txt": FileMark(1, 1.0, "ab" * 32)})
        server.stop()
        server.start()  # empty: the lease, the done marks and the scripts are gone
        assert store.done(["other.txt"]) == {}  # the first command after it reconnects
        assert store.renew(FILE, token, 30)
        holder = other.holder(FILE)
        assert holder is not None and holder.token == token
        assert other.claim(FILE, 30) is None
        assert not other.renew(FILE, "not-the-token", 30)
