"""Per-camera stream statistics for diagnostics: rate, drops, stamp jitter, silence."""

from __future__ import annotations

import math
import threading
from collections import deque

import numpy as np


class StreamStats:
    """Fed one entry per delivered frame (any thread); read by the diagnostics timer.

    * drops: frames the device numbered but we never saw (gaps in ``frame_number``); a number
      that goes backwards (device restart) starts a new sequence instead of counting;
    * jitter: distance of each stamp interval from the nearest whole number of periods (so a
      dropped frame counts as a drop, not as jitter) over the last ``history`` intervals; a
      camera whose stamps wander shows up even when its average rate is right;
    * rate: frames per second of arrival over the last ``window`` seconds.
    """

    def __init__(self, fps: float, history: int = 300, window: float = 2.0) -> None:
        if not fps > 0:
            raise ValueError(f"fps: must be positive, got {fps!r}")
        self.period = 1.0 / fps
        self.window = window
        self.frames = 0
        self.drops = 0
        self.resets = 0
        self._last_number: int | None = None
        self._last_stamp: float | None = None
        self._errors: deque[float] = deque(maxlen=history)
        self._arrivals: deque[float] = deque()
        self.last_arrival = math.nan
        self.first_arrival = math.nan
        self.max_gap = 0.0
        self._lock = threading.Lock()

    def update(self, frame_number: int, stamp: float, arrival: float) -> None:
        with self._lock:
            self.frames += 1
            if self._last_number is not None:
                if frame_number > self._last_number:
                    self.drops += frame_number - self._last_number - 1
                else:
                    self.resets += 1
            if self._last_stamp is not None and stamp > self._last_stamp:
                dt = stamp - self._last_stamp
                self.max_gap = max(self.max_gap, dt)
                k = max(1, round(dt / self.period))
                self._errors.append(abs(dt - k * self.period))
            self._last_number, self._last_stamp = frame_number, stamp
            self.last_arrival = arrival
            if self.frames == 1:
                self.first_arrival = arrival
            self._arrivals.append(arrival)
            while self._arrivals and self._arrivals[0] < arrival - self.window:
                self._arrivals.popleft()

    def rate(self, now: float) -> float:
        """Arrivals per second over the window (or since the first frame, if more recent)."""
        with self._lock:
            n = sum(1 for t in self._arrivals if t >= now - self.window)
            span = min(self.window, now - self.first_arrival) if self.frames else 0.0
        return n / span if span > 0 else 0.0

    def jitter(self) -> tuple[float, float]:
        """(p50, p99) of the stamp-interval error in seconds; NaN before two frames."""
        with self._lock:
            e = np.asarray(self._errors, dtype=float)
        if e.size == 0:
            return math.nan, math.nan
        return float(np.percentile(e, 50)), float(np.percentile(e, 99))

    def silent_for(self, now: float) -> float:
        return now - self.last_arrival if self.frames else math.inf
