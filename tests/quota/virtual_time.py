"""An asyncio event loop on a virtual clock: sleeping advances the clock, not the wall time.

``run(coroutine)`` runs ``coroutine`` on a :class:`VirtualLoop`; inside it ``asyncio.sleep``,
``loop.call_later`` and :func:`now` use the virtual clock, so many coroutines can wait on a
rate limiter for minutes of virtual time in a few milliseconds. Only for coroutines that wait
on timers, never on sockets.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

START = 1000.0
"""The virtual clock at the start of a run."""


class VirtualLoop(asyncio.SelectorEventLoop):
    """An event loop whose :meth:`time` only moves when every coroutine waits."""

    def __init__(self) -> None:
        self.now = START
        super().__init__(selector=_Selector(self))

    def time(self) -> float:
        """The virtual clock."""
        return self.now


class _Selector(selectors.SelectSelector):
    """Polls (never blocks) and moves the loop's clock to the next timer instead."""

    def __init__(self, loop: VirtualLoop) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None:
            raise RuntimeError("virtual time: every coroutine waits and no timer is set")
        self._loop.now += timeout
        return super().select(0)


def now() -> float:
    """The running loop's clock (the virtual one inside :func:`run`)."""
    return asyncio.get_running_loop().time()


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to its end in virtual time."""
    loop = VirtualLoop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()
