"""Arm node motion limits, old against new, in pure math (no sim; about 15 s):

    .venv/bin/python bench/arms_safety.py

1. Workspace box, sideways-target manoeuvre: the TCP runs at full speed towards a face of the
   default box, its target beyond it; some distance before the face the target jumps or slides
   sideways (still beyond the face). Figure: the furthest any streamed command goes past the box.
   Old = the target clamped into the box, then the step limits (what the arm node did); new = the
   box passed to ``limit_step`` as well.
2. Hold entered at full speed in several directions. Old = step towards the pose where hold began
   (the last command); new = ``brake_step``. Figures: commanded travel past the pose where hold
   began, and past the pose where the command finally rests (the held pose).
3. Inter-arm distance, the check the control tick runs twice: 5 x 5 capsules per call. Old = the
   scalar closest-point solution looped over the 25 pairs in Python (kept below as the baseline);
   new = ``min_distance``'s one broadcast call. Figures: µs per call and their ratio, and the
   largest difference between the two over random arm poses.
Default arm node limits (0.4 m/s, 1.5 m/s², 100 Hz).
"""

from __future__ import annotations

import timeit

import numpy as np

from a2w.arms.safety import (
    CartesianCommand,
    MotionLimits,
    WorkspaceBox,
    brake_step,
    chain_capsules,
    limit_step,
    min_distance,
)

DT = 0.01
Q0 = np.array([0.0, 0.0, 0.0, 1.0])
BOX = WorkspaceBox(np.array([-0.375, -0.70, 0.015]), np.array([0.20, 0.70, 0.90]))
LIM = MotionLimits()


def sideways_excursion(new: bool) -> float:
    worst = 0.0
    mid = (BOX.lo + BOX.hi) / 2
    for axis in range(3):
        for side in (0, 1):
            face = (BOX.hi if side else BOX.lo)[axis]
            normal = np.eye(3)[axis] * (1 if side else -1)
            start = mid.copy()
            start[axis] = face - normal[axis] * 0.25
            for tangent in (np.eye(3)[(axis + 1) % 3], np.eye(3)[(axis + 2) % 3]):
                for switch in (0.01, 0.03, 0.05, 0.08, 0.12):
                    for offset, slide in ((0.05, 0.0), (0.2, 0.0), (0.0, 1.0), (0.05, 2.0)):
                        c = CartesianCommand(start, Q0)
                        switched = None
                        for k in range(200):
                            if switched is None and (face - c.position[axis]) * normal[axis] < switch:
                                switched = k
                            t = start + normal
                            if switched is not None:
                                t = t + tangent * (offset + slide * DT * (k - switched))
                            t, _ = BOX.clamp(t)
                            c, _ = limit_step(c, t, Q0, 1.0, DT, LIM, box=BOX if new else None)
                            worst = max(worst, float((BOX.lo - c.position).max()), float((c.position - BOX.hi).max()))
    return worst


def hold_travel(new: bool) -> tuple[float, float]:
    past_entry = past_rest = 0.0
    rng = np.random.default_rng(0)
    for _ in range(50):
        u = rng.normal(size=3)
        u /= np.linalg.norm(u)
        c = CartesianCommand(np.zeros(3), Q0, u * LIM.max_linear_vel)
        entry = c
        path = []
        for _ in range(150):
            c = brake_step(c, DT, LIM)[0] if new else limit_step(c, entry.position, Q0, 1.0, DT, LIM)[0]
            path.append(c.position)
        along = np.array(path) @ u
        past_entry = max(past_entry, float(along.max()))
        past_rest = max(past_rest, float(along.max() - along[-1]))
    return past_entry, past_rest


def _scalar_segment_distance(p1: np.ndarray, q1: np.ndarray, p2: np.ndarray, q2: np.ndarray) -> float:
    """The per-pair solution the arm node used before (the baseline)."""
    d1, d2, r = q1 - p1, q2 - p2, p1 - p2
    a, e, f = float(d1 @ d1), float(d2 @ d2), float(d2 @ r)
    if a <= 1e-12 and e <= 1e-12:
        return float(np.linalg.norm(r))
    if a <= 1e-12:
        s, t = 0.0, min(max(f / e, 0.0), 1.0)
    else:
        c = float(d1 @ r)
        if e <= 1e-12:
            t, s = 0.0, min(max(-c / a, 0.0), 1.0)
        else:
            b = float(d1 @ d2)
            denom = a * e - b * b
            s = min(max((b * f - c * e) / denom, 0.0), 1.0) if denom > 1e-12 else 0.0
            t = (b * s + f) / e
            if t < 0.0:
                t, s = 0.0, min(max(-c / a, 0.0), 1.0)
            elif t > 1.0:
                t, s = 1.0, min(max((b - c) / a, 0.0), 1.0)
    return float(np.linalg.norm((p1 + d1 * s) - (p2 + d2 * t)))


def inter_arm_distance() -> tuple[float, float, float]:
    rng = np.random.default_rng(0)
    radii = [0.08, 0.07, 0.06, 0.05, 0.04]
    chains = [(chain_capsules(rng.normal(size=(6, 3)) * 0.4, radii),
               chain_capsules(rng.normal(size=(6, 3)) * 0.4, radii)) for _ in range(200)]

    def old(left: list, right: list) -> float:
        return min(_scalar_segment_distance(a.a, a.b, b.a, b.b) - a.radius - b.radius for a in left for b in right)

    worst = max(abs(old(left, right) - min_distance(left, right)) for left, right in chains)
    n = 5
    t_old = timeit.timeit(lambda: [old(lt, rt) for lt, rt in chains], number=n) / (n * len(chains))
    t_new = timeit.timeit(lambda: [min_distance(lt, rt) for lt, rt in chains], number=n) / (n * len(chains))
    return t_old, t_new, worst


def main() -> None:
    print("max commanded excursion past the box, sideways-target manoeuvre (mm): "
          f"old {sideways_excursion(False) * 1e3:.2f}, new {sideways_excursion(True) * 1e3:.2f}")
    for name, new in (("old", False), ("new", True)):
        entry, rest = hold_travel(new)
        print(f"hold at {LIM.max_linear_vel} m/s, {name}: commanded travel past the pose where hold began "
              f"{entry * 1e3:.1f} mm, past the held (rest) pose {rest * 1e3:.1f} mm")
    t_old, t_new, worst = inter_arm_distance()
    print(f"inter-arm distance, 5 x 5 capsules: old {t_old * 1e6:.0f} µs, new {t_new * 1e6:.0f} µs per call "
          f"(new/old {t_new / t_old:.2f}); largest difference {worst:.1e} m")


if __name__ == "__main__":
    main()
