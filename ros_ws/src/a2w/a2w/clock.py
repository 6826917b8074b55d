"""Clocks and period statistics.

One interface for wall time (the rig) and sim time (the simulated rig, ``use_sim_time``): stamps
and deadlines always come from a ``Clock``, never from ``time.sleep`` guesses (docs/architecture.md §5).
A ``SimClock`` only moves when its owner (the simulator) sets it, so everything timed on it is
deterministic and runs faster or slower than real time as the simulator allows.
"""

from __future__ import annotations

import abc
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

import numpy as np

# Largest forward step of a sim clock taken as time passing rather than a jump (s). A simulator
# publishes /clock after every chunk it steps (the sim node: at least once per sim second), so a
# bigger step comes from a second or broken /clock publisher.
MAX_SIM_CLOCK_JUMP = 2.0


class Clock(abc.ABC):
    """Source of stamps and of blocking waits for timers."""

    @abc.abstractmethod
    def now(self) -> float:
        """Current time in seconds."""

    @abc.abstractmethod
    def wait_until(self, t: float, cancel: threading.Event) -> bool:
        """Block until ``now() >= t`` or ``cancel`` is set. Returns False if cancelled."""

    def wake(self) -> None:
        """Wake waiters so they re-evaluate their deadlines (e.g. after a new timer)."""

    def timeline(self) -> "Clock":
        """The clock timers on this clock are scheduled on. It never steps backwards: a clock
        that can (wall time) returns a monotonic one, so a step cannot stall or burst timers."""
        return self


class MonotonicClock(Clock):
    """Seconds from a monotonic source (``time.monotonic``): never steps, only for scheduling."""

    def __init__(self, source: Callable[[], float] = time.monotonic) -> None:
        self._source = source

    def now(self) -> float:
        return self._source()

    def wait_until(self, t: float, cancel: threading.Event) -> bool:
        while not cancel.is_set():
            remaining = t - self._source()
            if remaining <= 0:
                return True
            # Sleep most of the way on the event, then spin the last ~0.3 ms: Event.wait alone
            # overshoots by ~0.1-1 ms on a loaded 2-core machine, and timers promise better.
            if remaining > 0.0015:
                cancel.wait(remaining - 0.001)
            elif remaining > 0.0003:
                time.sleep(remaining - 0.0003)
            else:
                while self._source() < t:
                    pass
        return False


class WallClock(Clock):
    """System time for stamps; timers run on its monotonic ``timeline()``, so a wall-clock step
    (NTP, an operator setting the date) moves stamps but neither stalls nor bursts a timer.

    ``time_source`` is injectable so tests can step the wall clock.
    """

    def __init__(self, time_source: Callable[[], float] = time.time,
                 monotonic: MonotonicClock | None = None) -> None:
        self._time = time_source
        self._monotonic = monotonic or MonotonicClock()

    def now(self) -> float:
        return self._time()

    def timeline(self) -> MonotonicClock:
        return self._monotonic

    def wait_until(self, t: float, cancel: threading.Event) -> bool:
        # Convert the wall deadline to a monotonic one once, so a step during the wait cannot
        # stretch or cut it.
        return self._monotonic.wait_until(self._monotonic.now() + (t - self._time()), cancel)


class SimClock(Clock):
    """Time set by a simulator. Monotonic: setting it backwards is an error."""

    def __init__(self, start: float = 0.0) -> None:
        self._t = float(start)
        self._cond = threading.Condition()

    def now(self) -> float:
        return self._t

    def set(self, t: float) -> None:
        with self._cond:
            if t < self._t:
                raise ValueError(f"sim clock cannot go backwards ({t} < {self._t})")
            self._t = float(t)
            self._cond.notify_all()

    def advance(self, dt: float) -> float:
        self.set(self._t + dt)
        return self._t

    def wait_until(self, t: float, cancel: threading.Event) -> bool:
        with self._cond:
            while self._t < t:
                if cancel.is_set():
                    return False
                # Bounded wait so a cancel without a notify is still seen promptly.
                self._cond.wait(0.05)
        return not cancel.is_set()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()


@dataclass(frozen=True)
class PeriodReport:
    count: int
    period_mean: float
    error_p50: float  # |actual period - nominal|, seconds
    error_p99: float
    error_max: float
    overruns: int  # ticks skipped because the previous one was still running


class PeriodStats:
    """Measures a periodic loop against its nominal period (bounded history)."""

    def __init__(self, period: float, history: int = 4096) -> None:
        self.period = float(period)
        self._periods: deque[float] = deque(maxlen=history)
        self._last: float | None = None
        self.count = 0
        self.overruns = 0

    def tick(self, t: float) -> None:
        if self._last is not None:
            self._periods.append(t - self._last)
        self._last = t
        self.count += 1

    def overrun(self) -> None:
        self.overruns += 1

    def report(self) -> PeriodReport:
        p = np.asarray(self._periods)
        if p.size == 0:
            return PeriodReport(self.count, float("nan"), float("nan"), float("nan"), float("nan"), self.overruns)
        err = np.abs(p - self.period)
        return PeriodReport(
            self.count, float(p.mean()), float(np.percentile(err, 50)), float(np.percentile(err, 99)),
            float(err.max()), self.overruns,
        )


class RateMeter:
    """Events per second over a sliding window (for topic rates and diagnostics)."""

    def __init__(self, window: float = 2.0) -> None:
        self.window = window
        self._stamps: deque[float] = deque()
        self._lock = threading.Lock()

    def mark(self, t: float) -> None:
        with self._lock:
            self._stamps.append(t)
            while self._stamps and self._stamps[0] < t - self.window:
                self._stamps.popleft()

    def rate(self, now: float) -> float:
        with self._lock:
            while self._stamps and self._stamps[0] < now - self.window:
                self._stamps.popleft()
            return len(self._stamps) / self.window
