"""``PerThread``: one connection per thread for drivers whose connections are not thread-safe.

Used by the SQLite state (``sqlite3`` connections) and the FTP source (ftputil hosts). Each
thread opens its own connection on first use; :meth:`PerThread.pop_all` hands every one back
for closing. Given ``close``, the connections of threads that have ended (a lease's heartbeat,
a finished consumer) are closed whenever a thread opens a new one, so short-lived threads
leave no connections behind. A forked child starts afresh: it must never use or close its
parent's sockets.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerThread(Generic[T]):
    """The calling thread's connection, opened by ``connect`` on first use.

    Args:
        connect: opens a connection.
        close: closes one; when given, connections of ended threads are closed as new ones
            are opened.
    """

    def __init__(self, connect: Callable[[], T], close: Callable[[T], None] | None = None) -> None:
        self._connect = connect
        self._close = close
        self._lock = threading.Lock()
        self._local = threading.local()
        self._all: list[tuple[threading.Thread, T]] = []
        self._pid = os.getpid()

    def __len__(self) -> int:
        """Number of open connections (all threads)."""
        self._forget_after_fork()
        with self._lock:
            return len(self._all)

    def get(self) -> T:
        """This thread's connection, opened now if it has none."""
        self._forget_after_fork()
        conn: T | None = getattr(self._local, "conn", None)
        if conn is None:
            self._close_orphans()
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._all.append((threading.current_thread(), conn))
        return conn

    def pop(self) -> T | None:
        """Forget this thread's connection and return it for closing (None if it has none)."""
        self._forget_after_fork()
        conn: T | None = getattr(self._local, "conn", None)
        if conn is None:
            return None
        self._local.conn = None
        with self._lock:
            self._all = [(owner, c) for owner, c in self._all if c is not conn]
        return conn

    def pop_all(self) -> list[T]:
        """Forget the connections of every thread and return them for closing."""
        self._forget_after_fork()
        with self._lock:
            conns, self._all = [c for _, c in self._all], []
        self._local = threading.local()
        return conns

    def _close_orphans(self) -> None:
        """Close the connections of threads that have ended (when ``close`` was given)."""
        if self._close is None:
            return
        with self._lock:
            orphans = [c for owner, c in self._all if not owner.is_alive()]
            self._all = [(owner, c) for owner, c in self._all if owner.is_alive()]
        for conn in orphans:
            self._close(conn)

    def _forget_after_fork(self) -> None:
        """In a forked child, drop (without closing) the connections copied from the parent."""
        if self._pid != os.getpid():
            self._pid, self._local, self._all = os.getpid(), threading.local(), []
            self._lock = threading.Lock()  # it may have been held by another thread at fork
