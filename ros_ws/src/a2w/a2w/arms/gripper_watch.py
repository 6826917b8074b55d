"""Gripper tracking check: a jammed gripper is one that does not move toward its command.

Commanded and measured ``gripper_open`` differ while the fingers travel (the gripper may be slower
than the command's rate limit, and it lags) and during a grasp: closing on an object, the fingers
stop on it, more open than commanded, for as long as it is held. Neither is a jam. So a jam is a
tracking error beyond ``tolerance`` during which the measured opening has not moved toward the
command (by ``tolerance / 4``) for ``window`` seconds, and

* opening (measured below the command): any such stall is a jam, since nothing held stops fingers
  from opening;
* closing (measured above the command): the stall is a jam only if the fingers' last movement
  (of ``tolerance / 4`` or more) was not a close: fingers that closed and stopped are holding
  something.

Limits, by design: a gripper that jams after closing part-way reads as a grasp, and closing on an
object the fingers already touch (they cannot close at all) reads as a jam. Telling those apart
needs the gripper's own object detection, which not every backend reports. A backend without
gripper feedback reports the commanded opening as measured, so it never shows a jam.
"""

from __future__ import annotations

import math


class GripperWatch:
    """Tracking check of one gripper; feed it every control tick while commands stream. After a
    gap in the updates longer than ``window`` (nothing commanded meanwhile) the timing restarts."""

    def __init__(self, tolerance: float, window: float) -> None:
        if not (math.isfinite(tolerance) and 0.0 < tolerance <= 1.0):
            raise ValueError(f"tolerance: must be in (0, 1], got {tolerance!r}")
        if not (math.isfinite(window) and window > 0.0):
            raise ValueError(f"window: must be a positive number of seconds, got {window!r}")
        self.tolerance = tolerance
        self.window = window
        self._progress = tolerance / 4
        self._last = -math.inf  # time of the last update
        self._closing = False  # the fingers' last movement was a close
        self._extreme = math.nan  # most closed since then if closing, most open otherwise
        self._direction = 0  # of the current error: +1 opening, -1 closing, 0 within tolerance
        self._best = math.nan  # measured opening furthest toward the command in this error
        self._since = -math.inf  # last time the fingers moved toward the command

    def update(self, now: float, commanded: float, measured: float) -> str:
        """'' while tracking (or grasping); a description of the jam otherwise."""
        gap, self._last = now - self._last, now
        if gap > self.window:
            self._direction = 0
        self._track_movement(measured)
        error = commanded - measured
        if abs(error) <= self.tolerance:
            self._direction = 0
            return ""
        direction = 1 if error > 0 else -1
        if direction != self._direction:
            self._direction, self._best, self._since = direction, measured, now
        elif (measured - self._best) * direction >= self._progress:
            self._best, self._since = measured, now
        if now - self._since <= self.window or (direction < 0 and self._closing):
            return ""
        verb = "open" if direction > 0 else "close"
        return (f"jammed: commanded to {verb} to {commanded:.2f}, measured {measured:.2f} "
                f"(tolerance {self.tolerance:g}), no movement toward the command for "
                f"{now - self._since:.1f} s")

    def _track_movement(self, measured: float) -> None:
        # Direction of the last movement, with hysteresis: it flips once the fingers have moved
        # back from their extreme by _progress, so noise and a settling grasp do not flip it.
        if math.isnan(self._extreme):
            self._extreme = measured
        elif self._closing:
            if measured < self._extreme:
                self._extreme = measured
            elif measured - self._extreme >= self._progress:
                self._closing, self._extreme = False, measured
        elif measured > self._extreme:
            self._extreme = measured
        elif self._extreme - measured >= self._progress:
            self._closing, self._extreme = True, measured
