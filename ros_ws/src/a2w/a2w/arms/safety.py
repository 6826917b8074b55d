"""Pure safety math of the arm component: timed-target interpolation, per-step Cartesian clamps,
workspace boxes, inter-arm capsule distance, gripper rate limit, watchdog (the target checks are
the supervisor's, a2w.arms.supervisor).

No I/O, no threads, no clock: every function takes the time it needs. Quaternions are xyzw
(docs/architecture.md §5). Positions here are in whatever frame the caller passes; the component passes
world (table) coordinates for workspace and inter-arm checks.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from a2w.geometry_fast import q_to_rotvec, qconj, qmul, rotvec_to_q, slerp


def _positive(name: str, v: float) -> float:
    v = float(v)
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name}: must be a positive finite number, got {v}")
    return v


@dataclass(frozen=True)
class MotionLimits:
    """Per-step TCP limits. Defaults sit under Flexiv's typical values (1 m/s, 1.5 m/s², 300°/s;
    flexiv_facts.md §6) and near TRI's EE limits (0.4 m/s, 90°/s; rig_facts.md §4.1)."""

    max_linear_vel: float = 0.4  # m/s
    max_angular_vel: float = 1.5  # rad/s
    max_linear_acc: float = 1.5  # m/s^2
    max_angular_acc: float = 6.0  # rad/s^2
    gripper_rate: float = 1.0  # gripper_open units per second (full stroke in 1 s ~ 85 mm/s)

    def __post_init__(self) -> None:
        for f in ("max_linear_vel", "max_angular_vel", "max_linear_acc", "max_angular_acc", "gripper_rate"):
            object.__setattr__(self, f, _positive(f, getattr(self, f)))


class Clamp(str, enum.Enum):
    """What a safety step changed (counted in diagnostics)."""

    LINEAR_VELOCITY = "linear_velocity"
    ANGULAR_VELOCITY = "angular_velocity"
    LINEAR_ACCELERATION = "linear_acceleration"
    ANGULAR_ACCELERATION = "angular_acceleration"
    WORKSPACE = "workspace"
    INTER_ARM = "inter_arm_distance"
    GRIPPER_RATE = "gripper_rate"


@dataclass(frozen=True)
class CartesianCommand:
    """The last commanded TCP pose and twist of one arm (world-frame twist)."""

    position: np.ndarray
    quaternion: np.ndarray  # xyzw
    linear_vel: np.ndarray = field(default_factory=lambda: np.zeros(3))
    angular_vel: np.ndarray = field(default_factory=lambda: np.zeros(3))
    gripper: float = 1.0

    def at_rest(self) -> "CartesianCommand":
        return CartesianCommand(self.position, self.quaternion, np.zeros(3), np.zeros(3), self.gripper)


def _limit_vector(delta: np.ndarray, v_prev: np.ndarray, dt: float, v_max: float, a_max: float,
                  vel_flag: Clamp, acc_flag: Clamp, flags: set[Clamp]) -> np.ndarray:
    """Velocity for this step that heads for ``delta`` within the limits.

    The wanted speed is the smallest of: reaching the goal this step, ``v_max``, and the speed
    from which ``a_max`` can still stop at the goal (so a far target is approached without
    overshoot). The change from ``v_prev`` is then capped at ``a_max * dt``.
    """
    dist = float(np.linalg.norm(delta))
    if dist < 1e-12:
        v_want = np.zeros(3)
    else:
        raw = dist / dt
        # Discrete stopping curve: after moving v*dt this step, decelerating by a_max*dt per step
        # still ends at the goal (v^2/2a + v*dt/2 <= dist).
        half = 0.5 * a_max * dt
        speed = min(raw, v_max, math.sqrt(half * half + 2.0 * a_max * dist) - half)
        if raw > v_max * (1 + 1e-9):
            flags.add(vel_flag)
        v_want = delta / dist * speed
    dv = v_want - v_prev
    dv_norm = float(np.linalg.norm(dv))
    if dv_norm > a_max * dt * (1 + 1e-9):
        dv *= a_max * dt / dv_norm
        # Only a change the raw request needed counts as a clamp; decelerating along the
        # stopping curve is planned motion.
        raw_v = delta / dt if dist > 0 else np.zeros(3)
        if float(np.linalg.norm(raw_v - v_prev)) > a_max * dt * (1 + 1e-9):
            flags.add(acc_flag)
    v = v_prev + dv
    n = float(np.linalg.norm(v))
    if n > v_max:
        v *= v_max / n
    return v


def limit_step(prev: CartesianCommand, position: np.ndarray, quaternion: np.ndarray,
               gripper: float, dt: float, limits: MotionLimits,
               box: WorkspaceBox | None = None) -> tuple[CartesianCommand, set[Clamp]]:
    """One command step from ``prev`` towards the desired pose, within ``limits``.

    With a ``box``, the commanded position never leaves it (nor moves further out, for a command
    that starts outside): see ``WorkspaceBox.keep_in``.
    """
    dt = _positive("dt", dt)
    flags: set[Clamp] = set()
    v = _limit_vector(np.asarray(position, float) - prev.position, prev.linear_vel, dt,
                      limits.max_linear_vel, limits.max_linear_acc,
                      Clamp.LINEAR_VELOCITY, Clamp.LINEAR_ACCELERATION, flags)
    if box is None:
        new_p = prev.position + v * dt
    else:
        new_p, v = box.keep_in(prev.position, _brake(prev.linear_vel, limits.max_linear_acc * dt), v,
                               dt, limits.max_linear_acc, flags)
    q_prev = np.asarray(prev.quaternion, dtype=float)
    rotvec = q_to_rotvec(qmul(np.asarray(quaternion, dtype=float), qconj(q_prev)))  # world frame
    w = _limit_vector(rotvec, prev.angular_vel, dt, limits.max_angular_vel, limits.max_angular_acc,
                      Clamp.ANGULAR_VELOCITY, Clamp.ANGULAR_ACCELERATION, flags)
    new_q = qmul(rotvec_to_q(w * dt), q_prev)
    new_q /= np.linalg.norm(new_q)
    if new_q[3] < 0:
        new_q = -new_q
    g = limit_gripper(prev.gripper, gripper, dt, limits.gripper_rate)
    if g != gripper:
        flags.add(Clamp.GRIPPER_RATE)
    return CartesianCommand(new_p, new_q, v, w, g), flags


def _brake(v: np.ndarray, dv_max: float) -> np.ndarray:
    """``v`` slowed by ``dv_max`` along its own direction (zero once slower than that)."""
    n = float(np.linalg.norm(v))
    if n <= dv_max:
        return np.zeros(3)
    return v * ((n - dv_max) / n)


def braking_travel(speed: float, dt: float, a_max: float) -> float:
    """Distance covered by one step at ``speed`` followed by braking by ``a_max * dt`` per step to
    rest, in steps of ``dt``: the discrete stopping distance (sum of the remaining step speeds)."""
    n = math.floor(speed / (a_max * dt))
    return dt * ((n + 1) * speed - a_max * dt * n * (n + 1) / 2)


def brake_step(prev: CartesianCommand, dt: float, limits: MotionLimits,
               box: WorkspaceBox | None = None) -> tuple[CartesianCommand, set[Clamp]]:
    """One step of hold: linear and angular velocity each reduced by at most their acceleration
    limit times ``dt`` along their current direction, until zero; at rest the pose stays exactly.

    Never reverses: every step moves along the entry direction, and the pose where the command
    comes to rest is the held pose. ``box`` is the same hard guarantee as in ``limit_step`` (a
    command that came from ``limit_step`` with the box already brakes inside it).
    """
    dt = _positive("dt", dt)
    flags: set[Clamp] = set()
    v = _brake(prev.linear_vel, limits.max_linear_acc * dt)
    if box is None:
        new_p = prev.position + v * dt
    else:
        new_p, v = box.keep_in(prev.position, v, v, dt, limits.max_linear_acc, flags)
    w = _brake(prev.angular_vel, limits.max_angular_acc * dt)
    new_q = np.asarray(prev.quaternion, dtype=float)
    if w.any():
        new_q = qmul(rotvec_to_q(w * dt), new_q)
        new_q /= np.linalg.norm(new_q)
        if new_q[3] < 0:
            new_q = -new_q
    return CartesianCommand(new_p, new_q, v, w, prev.gripper), flags


def limit_gripper(prev: float, want: float, dt: float, rate: float) -> float:
    """Gripper opening moved from ``prev`` towards ``want`` by at most ``rate * dt``."""
    step = rate * dt
    return float(min(max(want, prev - step), prev + step))


@dataclass(frozen=True)
class WorkspaceBox:
    """Axis-aligned box (world frame) the TCP of one arm must stay in."""

    lo: np.ndarray
    hi: np.ndarray

    def __post_init__(self) -> None:
        lo = np.asarray(self.lo, dtype=float)
        hi = np.asarray(self.hi, dtype=float)
        if lo.shape != (3,) or hi.shape != (3,):
            raise ValueError(f"workspace: lo and hi must have 3 values, got {lo.shape} and {hi.shape}")
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
            raise ValueError("workspace: bounds must be finite")
        if np.any(lo >= hi):
            raise ValueError(f"workspace: lo must be below hi on every axis, got lo={lo} hi={hi}")
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "hi", hi)

    def contains(self, p: np.ndarray) -> bool:
        return bool(np.all(p >= self.lo) and np.all(p <= self.hi))

    def clamp(self, p: np.ndarray) -> tuple[np.ndarray, bool]:
        q = np.clip(p, self.lo, self.hi)
        return q, bool(np.any(q != p))

    def keep_in(self, p: np.ndarray, v_brake: np.ndarray, v: np.ndarray, dt: float, a_max: float,
                flags: set[Clamp]) -> tuple[np.ndarray, np.ndarray]:
        """Position and velocity of the step from ``p`` that keeps the command in the box.

        Clamping the target is not enough: while the TCP brakes towards a face, a target sliding
        sideways takes part of the acceleration budget and the path crosses the face. So a step
        velocity is taken only if straight-line braking after it (``brake_step``) still stops
        inside the box. ``v_brake`` (the previous velocity braked by one step) always does when the
        previous step did, so the wanted ``v`` is blended towards it until it does; a blend of two
        velocities within the velocity and acceleration limits is within them too (convex sets).
        A position outside the box (an arm seeded there) widens the box to itself: it may move
        inwards, never further out. Last, the new position is clipped into that box and the
        velocity made to match; with exact arithmetic that changes nothing, it absorbs rounding.
        """
        lo = np.minimum(self.lo, p)
        hi = np.maximum(self.hi, p)
        # Plain floats: this runs up to ~25 times per arm and control tick.
        pf, lof, hif = p.tolist(), lo.tolist(), hi.tolist()

        def stops_inside(u: np.ndarray) -> bool:
            uf = u.tolist()
            s = math.sqrt(uf[0] * uf[0] + uf[1] * uf[1] + uf[2] * uf[2])
            if s == 0.0:
                return True
            r = braking_travel(s, dt, a_max) / s
            return all(lof[k] <= pf[k] + uf[k] * r <= hif[k] for k in range(3))

        if not stops_inside(v):
            flags.add(Clamp.WORKSPACE)
            if stops_inside(v_brake):
                ok, bad = 0.0, 1.0
                for _ in range(24):  # bisection on the blend factor; ``ok`` stays feasible
                    mid = 0.5 * (ok + bad)
                    if stops_inside(v_brake + mid * (v - v_brake)):
                        ok = mid
                    else:
                        bad = mid
                v = v_brake + ok * (v - v_brake)
            else:
                v = v_brake  # only after a state no braking can save (rounding, a foreign seed)
        planned = p + v * dt
        new_p = np.clip(planned, lo, hi)
        if np.any(new_p != planned):
            flags.add(Clamp.WORKSPACE)
            v = (new_p - p) / dt
        return new_p, v


# -- inter-arm distance ----------------------------------------------------------------------

@dataclass(frozen=True)
class Capsule:
    """Segment a-b swept by a sphere of ``radius`` (world frame)."""

    a: np.ndarray
    b: np.ndarray
    radius: float


def segment_distance(p1: np.ndarray, q1: np.ndarray, p2: np.ndarray, q2: np.ndarray) -> np.ndarray:
    """Shortest distance between segments p1-q1 and p2-q2 (clamped closest-point solution).

    Points are (..., 3) and broadcast, so all pairs of two capsule chains are one call: the
    control tick runs it twice, and a Python loop over the 25 pairs was a quarter of its CPU.
    """
    p1, q1, p2, q2 = (np.asarray(v, dtype=float) for v in (p1, q1, p2, q2))
    d1, d2, r = q1 - p1, q2 - p2, p1 - p2
    a, e = np.einsum("...i,...i", d1, d1), np.einsum("...i,...i", d2, d2)
    b, c, f = np.einsum("...i,...i", d1, d2), np.einsum("...i,...i", d1, r), np.einsum("...i,...i", d2, r)
    eps = 1e-12
    a_point, e_point = a <= eps, e <= eps
    a_safe, e_safe = np.where(a_point, 1.0, a), np.where(e_point, 1.0, e)
    denom = a * e - b * b
    # Both segments proper: closest points of the lines, s clamped, then t, re-clamping s if t was.
    s = np.where(denom > eps, np.clip((b * f - c * e) / np.where(denom > eps, denom, 1.0), 0.0, 1.0), 0.0)
    t = (b * s + f) / e_safe
    s = np.where(t < 0.0, np.clip(-c / a_safe, 0.0, 1.0), np.where(t > 1.0, np.clip((b - c) / a_safe, 0.0, 1.0), s))
    t = np.clip(t, 0.0, 1.0)
    # Degenerate segments (points): the closest point of the other segment to it.
    s, t = np.where(e_point, np.clip(-c / a_safe, 0.0, 1.0), s), np.where(e_point, 0.0, t)
    s, t = np.where(a_point, 0.0, s), np.where(a_point, np.where(e_point, 0.0, np.clip(f / e_safe, 0.0, 1.0)), t)
    return np.linalg.norm((p1 + d1 * s[..., None]) - (p2 + d2 * t[..., None]), axis=-1)


def capsule_distance(c1: Capsule, c2: Capsule) -> float:
    """Surface distance (negative when overlapping)."""
    return float(segment_distance(c1.a, c1.b, c2.a, c2.b)) - c1.radius - c2.radius


def min_distance(left: Sequence[Capsule], right: Sequence[Capsule]) -> float:
    """Smallest surface distance between any capsule of one arm and any of the other."""
    if not left or not right:
        return math.inf
    a1, b1 = np.array([c.a for c in left]), np.array([c.b for c in left])
    a2, b2 = np.array([c.a for c in right]), np.array([c.b for c in right])
    r1, r2 = np.array([c.radius for c in left]), np.array([c.radius for c in right])
    d = segment_distance(a1[:, None], b1[:, None], a2[None], b2[None]) - r1[:, None] - r2[None]
    return float(d.min())


def chain_capsules(points: Iterable[np.ndarray], radii: Sequence[float]) -> list[Capsule]:
    """Capsules between consecutive key points of an arm, one radius per segment."""
    pts = [np.asarray(p, dtype=float) for p in points]
    if len(radii) != len(pts) - 1:
        raise ValueError(f"radii: need {len(pts) - 1} values for {len(pts)} points, got {len(radii)}")
    return [Capsule(pts[i], pts[i + 1], float(radii[i])) for i in range(len(pts) - 1)]


def inter_arm_stop(current: float, predicted: float, stop_distance: float) -> bool:
    """True when the next step must not be taken: it ends closer than ``stop_distance`` and closer
    than now. Steps that separate the arms are always allowed, so the arms can back off."""
    return predicted < stop_distance and predicted < current


# -- timed-target interpolation -------------------------------------------------------------

@dataclass(frozen=True)
class Waypoint:
    t: float
    position: np.ndarray
    quaternion: np.ndarray  # xyzw
    gripper: float


class TargetInterpolator:
    """Turns timed targets (each to be reached at its stamp) into a pose at any time.

    The first waypoint is an anchor: where the command was when the targets started. Between
    waypoints position is linear and orientation slerped; after the last one it holds (never
    extrapolates). A target stamped at or before ``now`` replaces the queue (the step clamp then
    limits the jump). A target earlier than queued ones supersedes them (newest information wins).
    """

    def __init__(self, max_waypoints: int = 256) -> None:
        self.max_waypoints = max_waypoints
        self._wps: list[Waypoint] = []

    def reset(self, wp: Waypoint) -> None:
        self._wps = [wp]

    @property
    def empty(self) -> bool:
        return not self._wps

    def push(self, wp: Waypoint, now: float) -> None:
        if not self._wps:
            raise RuntimeError("interpolator: reset() with an anchor before pushing targets")
        if wp.t <= now:
            self._wps = [Waypoint(now, wp.position, wp.quaternion, wp.gripper)]
            return
        anchor = self.sample(now)
        kept = [w for w in self._wps if now < w.t < wp.t]
        self._wps = [anchor, *kept, wp][-self.max_waypoints:]

    def sample(self, t: float) -> Waypoint:
        wps = self._wps
        if not wps:
            raise RuntimeError("interpolator: no anchor")
        while len(wps) >= 2 and wps[1].t <= t:
            wps.pop(0)
        w0 = wps[0]
        if len(wps) == 1 or t <= w0.t:
            return Waypoint(t, w0.position, w0.quaternion, w0.gripper)
        w1 = wps[1]
        s = (t - w0.t) / (w1.t - w0.t)
        return Waypoint(t, w0.position + s * (w1.position - w0.position),
                        slerp(w0.quaternion, w1.quaternion, s),
                        w0.gripper + s * (w1.gripper - w0.gripper))


# -- watchdog ---------------------------------------------------------------------------------

class WatchdogState(str, enum.Enum):
    OK = "ok"
    HOLD = "hold"
    STOP = "stop"


class Watchdog:
    """No fresh target for ``hold_after`` s -> HOLD; for ``stop_after`` s -> STOP."""

    def __init__(self, hold_after: float, stop_after: float) -> None:
        self.hold_after = _positive("hold_after", hold_after)
        self.stop_after = _positive("stop_after", stop_after)
        if self.stop_after <= self.hold_after:
            raise ValueError(f"stop_after: must exceed hold_after ({self.hold_after}), got {self.stop_after}")
        self._last: float | None = None

    def feed(self, t: float) -> None:
        self._last = t

    def check(self, t: float) -> WatchdogState:
        if self._last is None:
            return WatchdogState.OK
        age = t - self._last
        if age >= self.stop_after:
            return WatchdogState.STOP
        if age >= self.hold_after:
            return WatchdogState.HOLD
        return WatchdogState.OK
