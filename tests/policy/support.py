"""A synthetic policy and a simulated-time loop for the scheduler tests and ``bench/policy_node.py``.

The "task" is a smooth dual-arm path followed at constant speed; progress advances one period per
executed tick and stands still while the arm holds. The "model" maps an observation (progress,
measured TCP poses) to a chunk of A2World deltas along the path plus a per-chunk offset: the chunk
distribution's mode, different for each sample, which is what makes a naive switch jump. A
prefix-aware model (training-time RTC) returns the prefix unchanged and then relaxes from the
prefix's last target onto its own mode with time constant ``tau`` steps, so it continues what is
committed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from a2w.actions import decode_dual, encode_dual
from a2w.msgs.common import Pose
from a2w.policy import ActionQueue, ChunkRequest, ChunkScheduler, DelayWindow, Mode

PERIOD = 1.0 / 30.0
HORIZON = 60
BASES = (np.array([0.45, 0.25, 0.30]), np.array([0.45, -0.25, 0.30]))
QUAT = np.array([0.0, 0.0, 0.0, 1.0])


def path(s: np.ndarray) -> np.ndarray:
    """Targets (n, 2, 8) at progress ``s`` (seconds of nominal motion): about 0.1 m/s per arm."""
    s = np.atleast_1d(np.asarray(s, dtype=np.float64))
    out = np.zeros((len(s), 2, 8))
    w = 2 * np.pi / 4.0
    for a, sign in ((0, 1.0), (1, -1.0)):
        out[:, a, 0] = BASES[a][0] + 0.06 * np.sin(w * s)
        out[:, a, 1] = BASES[a][1] + sign * 0.06 * (1 - np.cos(w * s))
        out[:, a, 2] = BASES[a][2] + 0.02 * s
        out[:, a, 3:7] = QUAT
        out[:, a, 7] = 1.0
    return out


def poses(target: np.ndarray) -> tuple[Pose, Pose]:
    return Pose(target[0, :3], target[0, 3:7]), Pose(target[1, :3], target[1, 3:7])


@dataclass
class SyntheticPolicy:
    """Chunk = path ahead of the observed progress + a per-chunk offset of ``offset`` m (a mode)."""

    offset: float = 0.01
    tau: float = 8.0
    seed: int = 0
    calls: list[int] = field(default_factory=list)

    def mode_offset(self, seq: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, seq])
        v = rng.normal(size=(2, 3))
        return self.offset * v / np.linalg.norm(v, axis=1, keepdims=True)

    def __call__(self, progress: float, measured: tuple[Pose, Pose], seq: int,
                 prefix: np.ndarray | None = None) -> np.ndarray:
        """(HORIZON, 14) deltas composed onto ``measured``; ``prefix`` (d, 14) is continued if given."""
        self.calls.append(seq)
        k = np.arange(1, HORIZON + 1)
        want = path(progress + k * PERIOD)
        want[:, :, :3] += self.mode_offset(seq)
        if prefix is not None and len(prefix):
            d = len(prefix)
            committed = decode_dual(measured, prefix)
            err = committed[-1, :, :3] - want[d - 1, :, :3]
            relax = np.exp(-(k[d:] - d) / self.tau)[:, None, None]
            want[d:, :, :3] += relax * err
            want[:d] = committed
        start = np.zeros((1, 2, 8))
        for a in range(2):
            start[0, a, :3], start[0, a, 3:7] = measured[a].position, measured[a].quaternion
        start[0, :, 7] = want[0, :, 7]
        return encode_dual(np.concatenate([start, want]))


@dataclass
class Trace:
    """What a simulated run executed: one row per tick."""

    times: np.ndarray
    positions: np.ndarray       # (n, 2, 3) the target held or sent at each tick
    fresh: np.ndarray           # (n,) bool: a target was sent (not a hold)
    switches: list[float]       # execution times of the first action of each accepted chunk
    stalls: int
    dropped: int
    task_time: float            # when progress reached the end (inf if never)
    prefix_lengths: list[int]


def _key(t: float) -> int:
    return round(t * 1e6)


def simulate(mode: Mode | str, delay: float, duration: float = 6.0, jitter: float = 0.05,
             policy: SyntheticPolicy | None = None, margin: float = 0.1, max_prefix: int = 20,
             seed: int = 0, limit: float | None = None) -> Trace:
    """Run the executor, the scheduler and the policy in simulated time until the task is done.

    The policy is called at request time; its chunk arrives ``delay * (1 ± jitter)`` later. The arm
    tracks its targets perfectly, so the measured pose is the last target.
    """
    mode = Mode(mode)
    policy = policy or SyntheticPolicy(seed=seed)
    rng = np.random.default_rng(seed)
    queue = ActionQueue(PERIOD)
    sched = ChunkScheduler(queue, mode, HORIZON, margin, max_prefix, DelayWindow(initial=delay))
    held = path(0.0)[0]
    progress = 0.0
    pending: tuple[float, ChunkRequest, np.ndarray] | None = None
    times, pos, fresh, switches = [], [], [], []
    limit = limit if limit is not None else 4 * duration + 20 * max(delay, PERIOD)
    task_time = float("inf")
    params: dict[int, float] = {}  # path progress of each queued target, by execution time
    obs_progress: dict[int, float] = {}

    def accept(arrival: float, req: ChunkRequest, deltas: np.ndarray) -> None:
        res = sched.on_chunk(arrival, req.seq, req.obs_stamp, deltas)
        assert res.accepted, res.reason
        switches.append(res.switch_at)
        # Chunk step i (0-based) is the path at the observed progress + (i + 1) periods; the queued
        # actions from switch_at on are consecutive steps from first_step.
        for tq in queue.times[queue.times >= res.switch_at - 1e-9]:
            i = res.first_step + round((tq - res.switch_at) / PERIOD)
            params[_key(tq)] = obs_progress[req.seq] + (i + 1) * PERIOD

    n = 0
    while True:
        t = n * PERIOD
        if t > limit:
            break
        if pending is not None and pending[0] <= t + 1e-12:
            arrival, req, deltas = pending
            pending = None
            accept(arrival, req, deltas)
        tick = sched.queue.due(t)
        if not tick.hold:
            held = tick.target
            progress = params[_key(tick.stamp)]
        times.append(t)
        pos.append(held[:, :3].copy())
        fresh.append(not tick.hold)
        if progress >= duration - 1e-9:
            task_time = t
            break
        if sched.should_request(t):
            req = sched.request(t, t, poses(held))
            obs_progress[req.seq] = progress
            deltas = policy(progress, req.measured, req.seq, req.prefix)
            d = delay * (1 + jitter * rng.uniform(-1, 1)) if delay > 0 else 0.0
            pending = (t + d, req, deltas)
            if d == 0:
                # Instant inference lands within this tick, before the next one.
                arrival, req, deltas = pending
                pending = None
                accept(arrival, req, deltas)
        n += 1
    return Trace(np.array(times), np.array(pos), np.array(fresh), switches, queue.stalls, queue.dropped,
                 task_time, list(sched.prefix_lengths))


def boundary_metrics(trace: Trace, skip_first: bool = True) -> tuple[float, float]:
    """Largest jump (m) and jerk (m/s^3) where a new chunk takes over.

    The jump is the change of the executed step at the switch, ``|x_i - 2 x_(i-1) + x_(i-2)|``: the
    path's own motion (a few mm per tick) cancels, a discontinuity does not. The jerk is the third
    difference over the ticks spanning the switch. The first chunk (from rest) is skipped: there is
    no previous chunk to continue.
    """
    x = trace.positions
    idx = np.searchsorted(trace.times, np.asarray(trace.switches) - 1e-9)
    jump, jerk = 0.0, 0.0
    for i in idx[1:] if skip_first else idx:
        if i < 3 or i >= len(x) - 1:
            continue
        j2 = np.linalg.norm(x[i] - 2 * x[i - 1] + x[i - 2], axis=-1).max()
        j3 = max(np.linalg.norm(x[k] - 3 * x[k - 1] + 3 * x[k - 2] - x[k - 3], axis=-1).max()
                 for k in range(i, min(i + 3, len(x))))
        jump = max(jump, float(j2))
        jerk = max(jerk, float(j3) / PERIOD**3)
    return jump, jerk
