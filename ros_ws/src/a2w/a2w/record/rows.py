"""The 30 Hz grid: rows from stamp-paired camera sets, stalled cameras duplicated and flagged.

Row k has the nominal time ``t0 + k / fps``. It is assembled ``delay`` after that time, when every
camera's frame for it has had time to arrive:

* each view's candidates are its frames not used yet whose capture stamp lies within half a
  period of the row's time (a frame belongs to the row it is nearest to, never to a neighbour);
* among the candidates, the set of one frame per view that ``cameras.pairing.best_set`` picks
  (spread within ``max_spread``, median nearest the row's time) is used;
* a view with no candidate (a stalled or dropped camera) repeats its last frame, with its old
  capture stamp, and the row flags that view as stalled. Rows are never shifted: a late frame
  that belongs to a later row waits for that row.

The grid is laid on the cameras' own cadence: its first time is the median stamp of the first
frame of each view captured after ``start``, so on a 30 fps rig every row sits on its frames
(sub-millisecond offsets) instead of up to half a period away. The arm state nearest the
row's time and the commanded target due one step after it complete the row. No clock, no
threads: the caller passes the time (docs/architecture.md §3, behaviour as a library).
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from a2w.cameras.pairing import DEFAULT_MAX_SPREAD, best_set
from a2w.msgs.arms import RigState, RigTarget
from a2w.msgs.cameras import CameraFrame
from a2w.msgs.policy import ActionChunk
from a2w.record.writer import NO_POLICY, Row


def state_vector(state: RigState) -> np.ndarray:
    """(16,) per arm ``[x, y, z, qx, qy, qz, qw, gripper_open]`` of the measured TCP."""
    return np.concatenate([np.concatenate([a.tcp_pose.as_array(), [a.gripper_open]])
                           for a in (state.left, state.right)])


def target_vector(target: RigTarget) -> np.ndarray:
    return np.concatenate([np.concatenate([a.tcp_pose.as_array(), [a.gripper_open]])
                           for a in (target.left, target.right)])


@dataclass
class GridStats:
    rows: int = 0
    waiting_rows: int = 0  # grid times skipped before every view had a first frame
    stalled: dict[str, int] = field(default_factory=dict)
    wide_sets: int = 0  # rows whose fresh frames spread beyond max_spread (kept, each nearest its row)
    no_state: int = 0  # grid times skipped because no arm state had arrived yet
    # frames that arrived after their row was assembled (the row then repeated the view's last
    # frame): more than a few mean ``delay`` is too short for this machine, as opposed to frames
    # the camera never delivered
    late: dict[str, int] = field(default_factory=dict)


class RowGrid:
    """Assembles rows (see the module docstring). Feed it with ``add_*``; ``due(now)`` returns
    the rows whose time has come, in order."""

    def __init__(self, views: Sequence[str], start: float, fps: int = 30, delay: float = 0.2,
                 max_spread: float = DEFAULT_MAX_SPREAD, buffer: int = 16) -> None:
        self.views = tuple(views)
        self.fps = fps
        self.period = 1.0 / fps
        self.start = float(start)
        self.t0: float | None = None  # the first row's time, once every view has a frame
        self.delay = delay
        self.max_spread = max_spread
        self.k = 0
        self.frames: dict[str, deque[CameraFrame]] = {v: deque(maxlen=buffer) for v in self.views}
        self.last: dict[str, CameraFrame] = {}
        self.states: deque[RigState] = deque(maxlen=64)
        self.targets: deque[RigTarget] = deque(maxlen=64)
        self.chunks: deque[tuple[ActionChunk, float]] = deque(maxlen=8)
        self.stats = GridStats(stalled={v: 0 for v in self.views}, late={v: 0 for v in self.views})

    def add_frame(self, frame: CameraFrame) -> None:
        buf = self.frames.get(frame.view)
        if buf is None or frame.stamp < self.start:
            return
        if buf and frame.stamp <= buf[-1].stamp:
            return  # duplicate delivery or a restarted camera's older timeline
        if self.t0 is not None and self.k > 0 and frame.stamp < self.time_of(self.k - 1) + self.period / 2:
            self.stats.late[frame.view] += 1  # its row is already written
        buf.append(frame)

    def add_state(self, state: RigState) -> None:
        if not self.states or state.stamp > self.states[-1].stamp:
            self.states.append(state)

    def add_target(self, target: RigTarget) -> None:
        if not self.targets or target.stamp > self.targets[-1].stamp:
            self.targets.append(target)

    def add_chunk(self, chunk: ActionChunk, received: float) -> None:
        self.chunks.append((chunk, received))

    def time_of(self, k: int) -> float:
        assert self.t0 is not None
        return self.t0 + k * self.period

    def due(self, now: float) -> list[Row]:
        rows: list[Row] = []
        if self.t0 is None:
            if not all(self.frames[v] for v in self.views):
                return rows
            self.t0 = float(np.median([self.frames[v][0].stamp for v in self.views]))
        while self.time_of(self.k) + self.delay <= now:
            row = self._assemble(self.time_of(self.k))
            self.k += 1
            if row is not None:
                rows.append(row)
                self.stats.rows += 1
        return rows

    def flush(self, now: float) -> list[Row]:
        """At the end of an episode: the rows up to ``now`` whose frames have all arrived (rows
        still waiting for a frame are left out rather than recorded as stalled)."""
        rows = self.due(now - self.delay) if self.t0 is not None else []
        while self.t0 is not None and self.time_of(self.k) <= now:
            t = self.time_of(self.k)
            after = {v: (self.last[v].stamp if v in self.last else -np.inf) for v in self.views}
            if not all(any(f.stamp > after[v] and abs(f.stamp - t) <= self.period / 2 for f in self.frames[v])
                       for v in self.views):
                break
            rows += self.due(t + self.delay)
        return rows

    def _nearest(self, items: Sequence, t: float):
        stamps = [x.stamp for x in items]
        i = bisect.bisect_left(stamps, t)
        best = [j for j in (i - 1, i) if 0 <= j < len(items)]
        return min((items[j] for j in best), key=lambda x: abs(x.stamp - t)) if best else None

    def _assemble(self, t: float) -> Row | None:
        half = self.period / 2
        cands: dict[str, list[CameraFrame]] = {}
        for v in self.views:
            after = self.last[v].stamp if v in self.last else -np.inf
            cands[v] = [f for f in self.frames[v] if f.stamp > after and abs(f.stamp - t) <= half]
        if any(v not in self.last and not cands[v] for v in self.views):
            self.stats.waiting_rows += 1
            return None
        state = self._nearest(list(self.states), t)
        if state is None:
            self.stats.no_state += 1
            return None
        fresh = {v: c for v, c in cands.items() if c}
        chosen: dict[str, CameraFrame] = {}
        if fresh:
            frames, _spread, within = best_set(fresh, t, self.max_spread)
            if not within:
                self.stats.wide_sets += 1
                frames = {v: min(c, key=lambda f: abs(f.stamp - t)) for v, c in fresh.items()}
            chosen.update(frames)
        stalled = np.array([v not in chosen for v in self.views])
        for v in self.views:
            if v in chosen:
                self.last[v] = chosen[v]
            else:
                self.stats.stalled[v] += 1
        use = {v: self.last[v] for v in self.views}
        target = self._nearest(list(self.targets), t + self.period)
        chunk_id, latency = NO_POLICY, float(NO_POLICY)
        for chunk, received in reversed(self.chunks):
            if chunk.times[0] - self.period <= t + self.period <= chunk.times[-1] + self.period:
                chunk_id, latency = int(chunk.seq), float(received - chunk.obs_stamp)
                break
        sv = state_vector(state)
        return Row(
            images={v: f.image for v, f in use.items()},
            state=sv,
            joints=np.concatenate([state.left.joint_positions, state.right.joint_positions]),
            target=target_vector(target) if target is not None else sv.copy(),
            camera_stamps=np.array([use[v].stamp for v in self.views]),
            camera_stalled=stalled,
            state_stamp=state.stamp,
            stamp=t,
            chunk_id=chunk_id,
            latency=latency,
        )
