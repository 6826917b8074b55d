"""The policy's action queue and its 30 Hz executor step, with time as an argument.

The queue holds committed absolute targets, each with its execution time on the node's clock
(DESIGN.md §5). The executor calls :meth:`ActionQueue.due` once per tick:

* an action whose tick window has passed (``time < now - window``) is **stale**: dropped and
  counted, never replayed (replaying it would move the arm to where it should have been, late);
* the action whose window holds ``now`` (``|time - now| <= window``, half a period by default so
  that each action on the executing grid falls in exactly one tick) is sent;
* a tick with nothing to send, once sending has begun, is a **stall**; the tick then says
  ``hold`` and names the last target sent, which the arm node holds.

No threads, no clock: the node (a later session) wires this to its timer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TARGET_SHAPE = (2, 8)  # per arm [x, y, z, qx, qy, qz, qw, gripper_open] (a2w.msgs.policy.ActionChunk)


@dataclass(frozen=True)
class Tick:
    """What one executor tick decided.

    ``target`` is the (2, 8) target to publish with execution stamp ``stamp`` when ``hold`` is
    False; when ``hold`` is True nothing is due and ``target`` is the last target sent (None before
    the first one), which the arm should hold. ``dropped`` counts the stale actions this tick
    discarded.
    """

    now: float
    target: np.ndarray | None
    stamp: float | None
    hold: bool
    dropped: int


def check_targets(times: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate a run of timed targets; returns float64 copies. Raises ValueError with the reason."""
    t = np.array(times, dtype=np.float64, copy=True).reshape(-1)
    x = np.array(targets, dtype=np.float64, copy=True)
    if x.shape != (len(t), *TARGET_SHAPE):
        raise ValueError(f"targets: shape must be ({len(t)}, 2, 8) to match the times, got {x.shape}")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(x))):
        raise ValueError("targets: contain non-finite values (NaN or inf)")
    if len(t) > 1 and np.any(np.diff(t) <= 0):
        raise ValueError("times: must be strictly increasing")
    return t, x


class ActionQueue:
    """Committed timed targets and the executor's per-tick decision."""

    def __init__(self, period: float = 1.0 / 30.0, window: float | None = None, history: int = 90) -> None:
        if not period > 0:
            raise ValueError(f"period must be positive, got {period}")
        self.period = float(period)
        self.window = 0.5 * self.period if window is None else float(window)
        if not 0 < self.window < self.period:
            raise ValueError(f"window must be in (0, period), got {self.window}")
        self._times = np.empty(0)
        self._targets = np.empty((0, *TARGET_SHAPE))
        self._last_tick: float | None = None
        # The last actions sent: an observation is older than the tick that uses it, so the actions
        # committed after it include some the executor has already sent (the RTC prefix needs them).
        self._history = int(history)
        if self._history < 1:
            raise ValueError(f"history must be >= 1, got {history}")
        self._sent_t = np.empty(0)
        self._sent_x = np.empty((0, *TARGET_SHAPE))
        self.last_sent: np.ndarray | None = None
        self.last_stamp: float | None = None
        self.sent = 0
        self.dropped = 0
        self.stalls = 0

    def __len__(self) -> int:
        return len(self._times)

    @property
    def times(self) -> np.ndarray:
        return self._times.copy()

    @property
    def targets(self) -> np.ndarray:
        return self._targets.copy()

    @property
    def last_tick(self) -> float | None:
        """Time of the last executor tick, None before the first."""
        return self._last_tick

    def last_time(self) -> float | None:
        """Execution time of the last committed action, None when the queue is empty."""
        return float(self._times[-1]) if len(self._times) else None

    def remaining(self, now: float) -> float:
        """Seconds of committed actions left after ``now`` (0 when none)."""
        last = self.last_time()
        return max(0.0, last - now) if last is not None else 0.0

    def after(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """The committed (times, targets) strictly after ``t``."""
        sel = self._times > t
        return self._times[sel].copy(), self._targets[sel].copy()

    def committed_after(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """The (times, targets) after ``t`` the arm was or will be told: recently sent, then pending."""
        sent = self._sent_t > t
        pending = self._times > t
        return (np.concatenate([self._sent_t[sent], self._times[pending]]),
                np.concatenate([self._sent_x[sent], self._targets[pending]]))

    def splice(self, times: np.ndarray, targets: np.ndarray) -> int:
        """Replace every committed action at or after ``times[0]`` by the given run.

        Actions before ``times[0]`` stay committed. Validates first, so a refused run leaves the
        queue as it was. Returns how many committed actions were replaced.
        """
        t, x = check_targets(times, targets)
        if len(t) == 0:
            return 0
        keep = self._times < t[0] - 1e-9
        replaced = int(np.count_nonzero(~keep))
        self._times = np.concatenate([self._times[keep], t])
        self._targets = np.concatenate([self._targets[keep], x])
        return replaced

    def clear(self) -> int:
        """Drop every committed action (stop); returns how many were dropped."""
        n = len(self._times)
        self.dropped += n
        self._times = np.empty(0)
        self._targets = np.empty((0, *TARGET_SHAPE))
        return n

    def due(self, now: float) -> Tick:
        """One executor tick at ``now``: drop the stale, send the due action, or hold."""
        now = float(now)
        if not np.isfinite(now):
            raise ValueError(f"now must be finite, got {now}")
        if self._last_tick is not None and now < self._last_tick:
            raise ValueError(f"ticks must not go back in time: {now} after {self._last_tick}")
        self._last_tick = now
        # Everything whose window closed before now is stale; of several due at once (a late tick),
        # only the latest is sent, the earlier ones are stale too.
        n_due = int(np.searchsorted(self._times, now + self.window, side="right"))
        fresh = n_due > 0 and self._times[n_due - 1] >= now - self.window
        n_stale = n_due - 1 if fresh else n_due
        if fresh:
            self.last_sent = self._targets[n_due - 1].copy()
            self.last_stamp = float(self._times[n_due - 1])
            self.sent += 1
            keep = max(0, len(self._sent_t) - self._history + 1)
            self._sent_t = np.append(self._sent_t[keep:], self.last_stamp)
            self._sent_x = np.concatenate([self._sent_x[keep:], self.last_sent[None]])
        elif self.last_sent is not None:
            self.stalls += 1
        self.dropped += n_stale
        self._times = self._times[n_due:]
        self._targets = self._targets[n_due:]
        hold_target = None if self.last_sent is None else self.last_sent.copy()
        return Tick(now, hold_target, self.last_stamp if fresh else None, not fresh, n_stale)
