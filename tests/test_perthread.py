"""PerThread: one connection per thread, handed back for closing, never shared after fork."""

from __future__ import annotations

import itertools
import os
import threading

from etl4all.perthread import PerThread


def test_one_connection_per_thread_until_popped() -> None:
    counter = itertools.count()
    conns = PerThread(lambda: next(counter))
    assert conns.get() == conns.get() == 0
    seen: list[int] = []
    thread = threading.Thread(target=lambda: seen.append(conns.get()))
    thread.start()
    thread.join()
    assert seen == [1] and len(conns) == 2
    assert conns.pop() == 0 and conns.pop() is None
    assert len(conns) == 1
    assert conns.get() == 2
    assert sorted(conns.pop_all()) == [1, 2]
    assert len(conns) == 0 and conns.pop_all() == []


def test_a_forked_child_opens_its_own() -> None:
    counter = itertools.count()
    conns = PerThread(lambda: next(counter))
    assert conns.get() == 0
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the parent's connection is forgotten, not closed
        ok = len(conns) == 0 and conns.get() == 1 and conns.pop_all() == [1]
        os.write(write, b"1" if ok else b"0")
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1"
    assert conns.pop_all() == [0]


def test_connections_of_ended_threads_are_closed_when_another_opens() -> None:
    counter = itertools.count()
    closed: list[int] = []
    conns = PerThread(lambda: next(counter), closed.append)
    for _ in range(3):  # e.g. one heartbeat thread per file
        thread = threading.Thread(target=conns.get)
        thread.start()
        thread.join()
    assert closed == [0, 1] and len(conns) == 1
    assert conns.get() == 3 and closed == [0, 1, 2]
    assert conns.pop_all() == [3]
