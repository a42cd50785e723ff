"""Redis's expiries in virtual time: the TTLs of a test's keys shrink as a virtual clock moves.

Redis expires leases and cache entries by its own clock. A test in virtual time
(:mod:`virtual_clock`) lets them expire by shortening every TTL under its key prefix by each
step of the clock (``PEXPIRE``; a key whose TTL runs out is deleted, as Redis would), so a
lease of 30 s expires after 30 virtual seconds with no wait.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

from virtual_clock import VirtualClock

from etl4all.state.redis import connect

_AGE = """
local ms = tonumber(ARGV[1])
for _, key in ipairs(KEYS) do
    local left = redis.call('pttl', key)
    if left > ms then
        redis.call('pexpire', key, left - ms)
    elseif left > 0 then
        redis.call('del', key)
    end
end
return 0
"""


@contextlib.contextmanager
def following(clock: VirtualClock, url: str) -> Iterator[None]:
    """While open, the keys under ``url``'s prefix age with ``clock``."""
    client, prefix = connect(url)
    age = client.register_script(_AGE)

    def step(seconds: float) -> None:
        match = re.sub(r"([*?\[\]\\])", r"\\\1", prefix) + "*"
        names = list(client.scan_iter(match=match, count=10_000))  # a shared server: few trips
        if names and seconds > 0:
            age(keys=names, args=[round(seconds * 1000)])

    clock.listeners.append(step)
    try:
        yield
    finally:
        clock.listeners.remove(step)
        client.close()
