"""The tests' virtual clock: time moves only with the driver, and threads wake in order."""

from __future__ import annotations

import threading

from virtual_clock import VirtualClock

from etl4all.clock import REAL, Clock


def test_the_real_clock_and_the_virtual_one_are_clocks() -> None:
    assert isinstance(REAL.wall(), float) and REAL.wait(threading.Event(), 0) is False
    clock: Clock = VirtualClock(100.0)
    assert clock.monotonic() == clock.wall() == 100.0


def test_the_driver_moves_time_and_wakes_each_thread_at_its_deadlines_in_order() -> None:
    clock, done = VirtualClock(0.0), threading.Event()
    seen: list[tuple[str, float]] = []

    def beat(name: str, every: float) -> None:
        while not clock.wait(done, every):
            seen.append((name, clock.monotonic()))

    threads = [threading.Thread(target=beat, args=(n, e)) for n, e in (("a", 1.0), ("b", 1.5))]
    for thread in threads:
        thread.start()
    clock.until_waiting(2)
    assert seen == [] and clock.monotonic() == 0.0  # nothing moves by itself
    clock.sleep(3.0)
    times = [t for _, t in seen]
    assert times == sorted(times)  # what happened at 1.5 s was done before time went on
    assert sorted(seen, key=lambda e: (e[1], e[0])) == [
        ("a", 1.0),
        ("b", 1.5),
        ("a", 2.0),
        ("a", 3.0),
        ("b", 3.0),
    ]
    done.set()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads) and clock.slept == [3.0]


def test_a_wait_of_the_driver_ends_when_its_event_is_set() -> None:
    clock, stop = VirtualClock(0.0), threading.Event()

    def stopper() -> None:
        clock.sleep(2.0)
        stop.set()

    threading.Thread(target=stopper).start()
    clock.until_waiting(1)
    assert clock.wait(stop, 60.0) is True and clock.monotonic() == 2.0
