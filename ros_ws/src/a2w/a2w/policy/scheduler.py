"""When to ask the policy for the next chunk, and how an arriving chunk joins the committed queue.

Pure logic with time as an argument (DESIGN.md §5, docs/architecture.md §6); the node that runs
inference on a worker and calls this comes later. Four modes, all on the same :class:`ActionQueue`:

* ``sync``: the robot finishes the chunk and waits; the next request goes out when nothing is left,
  and the chunk starts on the tick after its arrival (the arm stood still, so the observed pose
  still holds). The LeRobot / openpi / Cosmos Policy default, kept as the baseline.
* ``naive``: asynchronous; the request goes out when the remaining horizon falls below the p95 of
  the measured inference delays plus a margin; on arrival the new chunk's past actions are dropped
  and the rest replaces the committed actions.
* ``rtc``: asynchronous, training-time real-time chunking: the request carries as action prefix the
  committed actions that will execute during the inference window (up to ``max_prefix``, the length
  the policy was trained with; ``PolicyEngine.predict(action_prefix=...)``); the chunk continues
  them, so the prefix stays committed and the chunk takes over after it. When the chunk arrives later
  than the prefix covers, the uncovered overlap is blended as in ``blend``.
* ``blend``: asynchronous, for a model without prefix support: over the overlap the committed and
  the new targets are mixed with the RTC soft-mask weights ``w = c (e^c - 1) / (e - 1)``, ``c`` a ramp
  from 1 at the switch to 0 at the end of the overlap: weight 1 at the switch continues the committed
  trajectory (no jump), and the exponential hands over to the fresher chunk sooner than a linear ramp
  (the schedule that beat hard and linear masks in Black et al. 2025, reference/anchors_runtime.md §2c).

Chunks are model deltas composed onto the TCP poses measured at observation time
(``a2w.actions.compose_chunk``); a chunk's reference is its observation stamp, its step ``k`` due one
period after step ``k - 1``, snapped (by less than a period) onto the grid of the committed actions so
that the prefix keeps its execution times. A chunk that arrives when nothing committed is left (start,
a stall, ``sync``) resumes at its first action after the last one executed, on the next tick: the arm
stood still, so skipping ahead would be a jump. Bad chunks (non-finite, wrong shape, out-of-order seq,
older than the executing chunk) are refused with a reason and the queue keeps what it had committed.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from a2w.actions import compose_chunk, encode_dual
from a2w.msgs.common import Pose
from a2w.msgs.policy import ACTION_DIM
from a2w.policy.queue import ActionQueue

GRID_TOL = 1e-6  # s: two execution times this close are the same grid point


class Mode(str, Enum):
    SYNC = "sync"
    NAIVE = "naive"
    RTC = "rtc"
    BLEND = "blend"


class DelayWindow:
    """The last ``size`` measured inference delays; the p95 drives the scheduler.

    p95 rather than the maximum: one cold-start inference must not inflate the estimate for the
    whole session (LeRobot's RTC jumps, reference/anchors_runtime.md §0.3).
    """

    def __init__(self, size: int = 50, initial: float = 0.5) -> None:
        if size < 1 or not (math.isfinite(initial) and initial >= 0):
            raise ValueError(f"size must be >= 1 and initial a finite delay >= 0, got {size}, {initial}")
        self._d: deque[float] = deque(maxlen=size)
        self.initial = float(initial)

    def __len__(self) -> int:
        return len(self._d)

    def add(self, delay: float) -> None:
        if not (math.isfinite(delay) and delay >= 0):
            raise ValueError(f"delay must be finite and >= 0, got {delay}")
        self._d.append(float(delay))

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile of the window; ``initial`` until a delay was measured."""
        return float(np.percentile(np.fromiter(self._d, float), q)) if self._d else self.initial

    def p95(self) -> float:
        return self.percentile(95.0)


@dataclass(frozen=True)
class ChunkRequest:
    """What the worker must compute: a chunk for the observation at ``obs_stamp``.

    ``prefix`` (d, 14) float32 holds the committed actions for the inference window as deltas from
    the measured poses (pass it as ``action_prefix``); None outside ``rtc`` mode.
    """

    seq: int
    obs_stamp: float
    issued_at: float
    measured: tuple[Pose, Pose]
    prefix: np.ndarray | None
    prefix_times: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class ChunkResult:
    """What became of an arriving chunk. ``reason`` says why it was refused ('' when accepted)."""

    seq: int
    accepted: bool
    reason: str
    delay: float
    prefix_length: int = 0
    stale: int = 0       # new actions already past on arrival, never queued
    replaced: int = 0    # committed actions the chunk replaced
    blended: int = 0     # steps mixed with the committed ones
    switch_at: float = float("nan")  # execution time of the chunk's first queued action
    first_step: int = 0  # index in the chunk of that action: the delay in executed steps


def soft_mask(n: int) -> np.ndarray:
    """RTC's exponential soft-mask weights for an overlap of ``n`` steps: 1 at the switch, -> 0."""
    c = 1.0 - np.arange(n, dtype=np.float64) / max(n, 1)
    return c * np.expm1(c) / (math.e - 1.0)


def blend_targets(old: np.ndarray, new: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``w * old + (1 - w) * new`` per step for (n, 2, 8) targets; quaternions by slerp."""
    w = w[:, None, None]
    out = w * old + (1.0 - w) * new
    q0, q1 = old[:, :, 3:7], new[:, :, 3:7]
    dot = np.sum(q0 * q1, axis=-1, keepdims=True)
    q1 = np.where(dot < 0, -q1, q1)  # the short way round
    dot = np.clip(np.abs(dot), -1.0, 1.0)
    theta = np.arccos(dot)
    s = np.sin(theta)
    small = s < 1e-9
    a = np.where(small, w, np.sin(w * theta) / np.where(small, 1.0, s))
    b = np.where(small, 1.0 - w, np.sin((1.0 - w) * theta) / np.where(small, 1.0, s))
    q = a * q0 + b * q1
    out[:, :, 3:7] = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return out


def _pose_array(measured: tuple[Pose, Pose]) -> np.ndarray:
    out = np.zeros((2, 8))
    for a in range(2):
        out[a, :3], out[a, 3:7] = measured[a].position, measured[a].quaternion
    return out


class ChunkScheduler:
    """Request timing, prefix, and merging of arriving chunks into ``queue``.

    ``horizon``: steps per chunk (60 = 2 s at 30 Hz); ``margin``: seconds added to the p95 delay;
    ``max_prefix``: the longest prefix the policy accepts (its training ``max_prefix``).
    """

    def __init__(self, queue: ActionQueue, mode: Mode | str = Mode.RTC, horizon: int = 60,
                 margin: float = 0.1, max_prefix: int = 20, delays: DelayWindow | None = None) -> None:
        self.queue = queue
        self.mode = Mode(mode)
        if horizon < 1 or not 0 <= max_prefix < horizon or not margin >= 0:
            raise ValueError(f"need horizon >= 1, 0 <= max_prefix < horizon, margin >= 0; "
                             f"got {horizon}, {max_prefix}, {margin}")
        self.horizon, self.margin, self.max_prefix = int(horizon), float(margin), int(max_prefix)
        self.delays = delays if delays is not None else DelayWindow()
        self.in_flight: ChunkRequest | None = None
        self.executing_stamp: float | None = None  # obs stamp of the last accepted chunk
        self.last_seq = -1                          # seq of the last accepted chunk
        self._next_seq = 0
        self.chunks = 0
        self.refused: dict[str, int] = {}
        self.prefix_lengths: list[int] = []

    @property
    def period(self) -> float:
        return self.queue.period

    def should_request(self, now: float) -> bool:
        """True when a request should go out now (none is in flight)."""
        if self.in_flight is not None:
            return False
        remaining = self.queue.remaining(now)
        if self.mode is Mode.SYNC:
            return remaining <= 0.0
        return remaining < self.delays.p95() + self.margin

    def request(self, now: float, obs_stamp: float, measured: tuple[Pose, Pose]) -> ChunkRequest:
        """Issue the next request for the observation at ``obs_stamp`` with TCP poses ``measured``."""
        if self.in_flight is not None:
            raise RuntimeError(f"request {self.in_flight.seq} is still in flight")
        if not (math.isfinite(obs_stamp) and obs_stamp <= now):
            raise ValueError(f"obs_stamp must be finite and not in the future, got {obs_stamp} at {now}")
        if self.executing_stamp is not None and obs_stamp < self.executing_stamp:
            raise ValueError(f"observation at {obs_stamp} is older than the executing chunk's ({self.executing_stamp})")
        prefix, prefix_times = None, np.empty(0)
        if self.mode is Mode.RTC and self.max_prefix > 0:
            # The inference window: from the observation to the expected arrival.
            window = (now - obs_stamp) + self.delays.p95() + self.margin
            d = min(self.max_prefix, math.ceil(window / self.period - GRID_TOL))
            times, targets = self.queue.committed_after(obs_stamp + GRID_TOL)
            times, targets = times[:d], targets[:d]
            # Only a run of consecutive steps is a prefix (a dropped action leaves a hole).
            holes = np.flatnonzero(np.diff(times) > 1.5 * self.period)
            if len(holes):
                times, targets = times[:holes[0] + 1], targets[:holes[0] + 1]
            if len(times) and times[0] <= obs_stamp + self.period + GRID_TOL:
                # Deltas from the measured pose through the committed targets: composed back onto the
                # same measured pose they give the committed targets exactly (first step absorbs the
                # tracking error), so the chunk continues what the arm will really be told.
                start = _pose_array(measured)[None]
                start[0, :, 7] = targets[0, :, 7]
                prefix = encode_dual(np.concatenate([start, targets])).astype(np.float32)
                prefix_times = times
        req = ChunkRequest(self._next_seq, float(obs_stamp), float(now), measured, prefix, prefix_times)
        self._next_seq += 1
        self.in_flight = req
        return req

    def _refuse(self, seq: int, reason: str, delay: float = float("nan")) -> ChunkResult:
        self.refused[reason.split(":")[0]] = self.refused.get(reason.split(":")[0], 0) + 1
        return ChunkResult(seq, False, reason, delay)

    def on_failure(self, now: float, seq: int, reason: str) -> ChunkResult:
        """The worker failed (exception, timeout): nothing is merged; a new request may follow.

        Its duration is not a measured inference delay (a timeout would inflate the p95)."""
        if self.in_flight is None or seq != self.in_flight.seq:
            return self._refuse(seq, f"out of order: failure reported for seq {seq}, not the one in flight")
        issued = self.in_flight.issued_at
        self.in_flight = None
        return self._refuse(seq, f"inference failed: {reason}", now - issued)

    def _grid_times(self, obs_stamp: float, n: int) -> np.ndarray:
        """Execution times of a chunk observed at ``obs_stamp``: on the committed grid when there is one."""
        times, _ = self.queue.committed_after(obs_stamp + GRID_TOL)
        first = obs_stamp + self.period
        if len(times) and times[0] <= first + GRID_TOL:
            first = float(times[0])
        elif self.queue.last_stamp is not None:
            # Queue ran dry: stay on the grid of the last action sent, at its point in (obs, obs + period].
            k = math.floor((first - self.queue.last_stamp) / self.period + GRID_TOL)
            if k > 0:
                first = self.queue.last_stamp + k * self.period
        return first + self.period * np.arange(n)

    def on_chunk(self, now: float, seq: int, obs_stamp: float, deltas: np.ndarray) -> ChunkResult:
        """Merge the chunk the worker returned for request ``seq`` (``deltas``: (horizon, 14))."""
        req = self.in_flight
        if req is None or seq != req.seq:
            what = "no request is in flight" if req is None else f"the one in flight is {req.seq}"
            if seq <= self.last_seq:
                return self._refuse(seq, f"out of order: seq {seq} <= last accepted {self.last_seq}")
            return self._refuse(seq, f"unexpected seq: {seq}, {what}")
        self.in_flight = None
        delay = float(now - req.issued_at)
        if math.isfinite(delay) and delay >= 0:
            self.delays.add(delay)
        if not math.isfinite(obs_stamp) or abs(obs_stamp - req.obs_stamp) > GRID_TOL:
            return self._refuse(seq, f"stamp mismatch: chunk for {obs_stamp}, request was for {req.obs_stamp}",
                                delay)
        if self.executing_stamp is not None and obs_stamp < self.executing_stamp:
            return self._refuse(seq, f"older than executing: observation {obs_stamp} < {self.executing_stamp}",
                                delay)
        d = np.asarray(deltas)
        if d.shape != (self.horizon, ACTION_DIM):
            return self._refuse(seq, f"wrong shape: {d.shape}, expected ({self.horizon}, {ACTION_DIM})", delay)
        if not np.issubdtype(d.dtype, np.number) or not np.all(np.isfinite(d)):
            return self._refuse(seq, "non-finite: the chunk contains NaN or inf", delay)
        try:
            with np.errstate(over="raise", invalid="raise"):
                chunk = compose_chunk(d, req.measured, obs_stamp, self.period, seq)
        except (ValueError, FloatingPointError) as exc:
            return self._refuse(seq, f"non-finite: composing the targets failed ({exc})", delay)
        targets = chunk.targets
        times = self._grid_times(obs_stamp, len(chunk))
        # In rtc mode the prefix stays committed as it is; the chunk takes over after it.
        prefix_len = len(req.prefix) if self.mode is Mode.RTC and req.prefix is not None else 0
        index = np.arange(len(chunk))
        # Past: its window closed before now, or it fell in (or before) a tick already run.
        past = now - self.queue.window
        if self.queue.last_tick is not None:
            past = max(past, self.queue.last_tick + self.queue.window)
        if np.any(self.queue.times > past):
            keep = (index >= prefix_len) & (times > past)
        else:
            # Nothing committed is left: the arm holds its last target (start, a stall, or sync). It
            # resumes at the chunk's first action after the last one executed, shifted onto the next
            # tick; skipping the actions it missed while standing still would be a jump.
            executed = self.queue.last_stamp if self.queue.last_stamp is not None else -math.inf
            keep = (index >= prefix_len) & (times > executed + GRID_TOL)
            if np.any(keep):
                first = float(times[keep][0])
                if first <= past:
                    times = times + (math.floor((past - first) / self.period + GRID_TOL) + 1) * self.period
        stale = int(np.count_nonzero((index >= prefix_len) & ~keep))
        first_step = int(index[keep][0]) if np.any(keep) else len(chunk)
        new_t, new_x = times[keep], targets[keep].copy()
        blended = 0
        if len(new_t) and self.mode in (Mode.BLEND, Mode.RTC):
            old_t, old_x = self.queue.after(new_t[0] - GRID_TOL)
            # Only where the chunk arrived past its prefix (or had none) is the switch unconditioned.
            if self.mode is Mode.BLEND or first_step > prefix_len or req.prefix is None:
                n = min(len(old_t), len(new_t))
                if n and np.all(np.abs(old_t[:n] - new_t[:n]) < GRID_TOL):
                    new_x[:n] = blend_targets(old_x[:n], new_x[:n], soft_mask(n))
                    blended = n
        if not np.all(np.isfinite(new_x)):
            return self._refuse(seq, "non-finite: merged targets are not finite", delay)
        replaced = self.queue.splice(new_t, new_x) if len(new_t) else 0
        self.executing_stamp = float(obs_stamp)
        self.last_seq = seq
        self.chunks += 1
        self.prefix_lengths.append(prefix_len)
        switch = float(new_t[0]) if len(new_t) else float("nan")
        return ChunkResult(seq, True, "", delay, prefix_len, stale, replaced, blended, switch, first_step)
