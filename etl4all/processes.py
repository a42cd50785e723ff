"""Whether a claim's holder is a dead process of this machine.

A claim token names its holder as ``host:pid/start.random`` (:func:`etl4all.state.base.new_token`),
``start`` being when the process started, as Linux counts it (``/proc/<pid>/stat``). A holder
on this host whose pid runs no process, or runs one that started at another time (the pid was
reused), is dead: its claim can be taken at once instead of waiting for it to expire. A holder
on another host, or on a system without ``/proc``, is never judged dead here.
"""

from __future__ import annotations

import os
import socket


def started(pid: int) -> str:
    """When process ``pid`` started (clock ticks since boot), or ``""`` when unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[-1].split()
    except OSError:
        return ""
    # Field 22 of proc(5), counted after the ")" that ends the command name (fields 1-2).
    return fields[19].decode() if len(fields) > 19 else ""


def dead(token: str) -> bool:
    """Whether the holder named by claim ``token`` is a process of this host that has ended."""
    holder, _, rest = token.rpartition("/")
    host, _, pid_text = holder.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid, start = int(pid_text), rest.partition(".")[0]
    if not _running(pid):
        return True
    return bool(start) and started(pid) not in ("", start)


def _running(pid: int) -> bool:
    """Whether a process with ``pid`` exists (maybe another user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
