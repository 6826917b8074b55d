import threading
import time

import pytest

from a2w.clock import PeriodStats, RateMeter, SimClock, WallClock


def test_sim_clock_is_monotonic_and_wakes_waiters():
    clock = SimClock()
    cancel = threading.Event()
    done = []
    th = threading.Thread(target=lambda: done.append(clock.wait_until(1.0, cancel)))
    th.start()
    clock.set(0.5)
    time.sleep(0.05)
    assert not done
    clock.advance(0.5)
    th.join(2)
    assert done == [True] and clock.now() == 1.0
    with pytest.raises(ValueError, match="backwards"):
        clock.set(0.9)


def test_waits_are_cancellable():
    for clock in (SimClock(), WallClock()):
        cancel = threading.Event()
        threading.Timer(0.05, cancel.set).start()
        t0 = time.monotonic()
        assert clock.wait_until(clock.now() + 10.0, cancel) is False
        assert time.monotonic() - t0 < 1.0


def test_wall_clock_wait_reaches_deadline():
    clock = WallClock()
    target = clock.now() + 0.02
    assert clock.wait_until(target, threading.Event())
    assert clock.now() >= target


def test_period_stats():
    s = PeriodStats(0.1)
    for t in (0.0, 0.1, 0.2, 0.35, 0.45):
        s.tick(t)
    s.overrun()
    r = s.report()
    assert r.count == 5 and r.overruns == 1
    assert r.error_max == pytest.approx(0.05)
    assert r.error_p50 == pytest.approx(0.0, abs=1e-9)


def test_rate_meter_window():
    m = RateMeter(window=1.0)
    for i in range(30):
        m.mark(10.0 + i / 30)
    assert m.rate(10.99) == pytest.approx(30.0)
    assert m.rate(20.0) == 0.0
