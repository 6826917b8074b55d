"""Motion limiting of the arm node: the streamed path stays in the workspace box for any target
sequence (issue 12, item 1), and hold brakes along the current path without reversing (item 3)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from a2w.arms.safety import CartesianCommand, MotionLimits, WorkspaceBox, brake_step, limit_step

Q0 = np.array([0.0, 0.0, 0.0, 1.0])
DEFAULT_BOX = WorkspaceBox(np.array([-0.375, -0.70, 0.015]), np.array([0.20, 0.70, 0.90]))
TOL = 1e-9

limits_st = st.one_of(
    st.just(MotionLimits()),
    st.builds(MotionLimits,
              max_linear_vel=st.floats(0.05, 2.0), max_angular_vel=st.floats(0.1, 5.0),
              max_linear_acc=st.floats(0.1, 20.0), max_angular_acc=st.floats(0.5, 50.0)))
dt_st = st.sampled_from([0.01, 0.002, 1 / 30])
box_st = st.one_of(
    st.just(DEFAULT_BOX),
    st.tuples(st.lists(st.floats(-0.5, 0.5), min_size=3, max_size=3),
              st.lists(st.floats(0.02, 0.6), min_size=3, max_size=3)).map(
        lambda t: WorkspaceBox(np.array(t[0]), np.array(t[0]) + np.array(t[1]))))


def _unit(rng: np.random.Generator) -> np.ndarray:
    u = rng.normal(size=3)
    return u / np.linalg.norm(u)


def _targets(box: WorkspaceBox, seed: int, n_segments: int) -> list[np.ndarray]:
    """Targets per step: far points beyond the box (the TCP runs at full speed towards a face),
    points inside, and targets beyond a face sliding sideways along it, some fast."""
    rng = np.random.default_rng(seed)
    size = box.hi - box.lo
    out: list[np.ndarray] = []
    for _ in range(n_segments):
        steps = int(rng.integers(1, 80))
        kind = rng.integers(3)
        if kind == 0:  # anywhere, up to a box size outside
            p = box.lo - size + rng.uniform(size=3) * 3 * size
            out += [p] * steps
        elif kind == 1:
            axis, side = int(rng.integers(3)), int(rng.integers(2))
            p = box.lo + rng.uniform(size=3) * size
            p[axis] = (box.hi if side else box.lo)[axis] + (1 if side else -1) * rng.uniform(0, 0.5)
            out += [p] * steps
        else:
            axis, side = int(rng.integers(3)), int(rng.integers(2))
            p = box.lo + rng.uniform(size=3) * size
            p[axis] = (box.hi if side else box.lo)[axis] + (1 if side else -1) * rng.uniform(0, 0.3)
            u = _unit(rng) * rng.uniform(0, 2.0)
            u[axis] = 0.0
            out += [p + u * 0.01 * k for k in range(steps)]
    return out


def _stream(c: CartesianCommand, targets: list[np.ndarray], box: WorkspaceBox, dt: float,
            lim: MotionLimits, clamp_target: bool) -> list[CartesianCommand]:
    traj = [c]
    for t in targets:
        if clamp_target:  # as the arm node does; the guarantee must not depend on it
            t, _ = box.clamp(t)
        c, _ = limit_step(c, t, Q0, 1.0, dt, lim, box=box)
        traj.append(c)
    return traj


def _assert_inside(box: WorkspaceBox, traj: list[CartesianCommand]) -> None:
    pos = np.array([c.position for c in traj])
    below = (box.lo - pos).max()
    above = (pos - box.hi).max()
    assert below <= TOL and above <= TOL, f"left the box by {max(below, above) * 1e3:.3f} mm"


def _assert_dynamics(traj: list[CartesianCommand], dt: float, lim: MotionLimits) -> None:
    pos = np.array([c.position for c in traj])
    vel = np.vstack([traj[0].linear_vel, np.diff(pos, axis=0) / dt])
    acc = np.diff(vel, axis=0) / dt
    assert np.linalg.norm(vel, axis=1).max() <= lim.max_linear_vel * (1 + 1e-9)
    assert np.linalg.norm(acc, axis=1).max() <= lim.max_linear_acc * (1 + 1e-6)
    # the velocity a command carries is the one it moved with (the next step plans from it)
    assert np.allclose(vel[1:], [c.linear_vel for c in traj[1:]], atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(lim=limits_st, dt=dt_st, box=box_st, seed=st.integers(0, 2**32 - 1),
       n_segments=st.integers(1, 8), clamp_target=st.booleans(), start=st.tuples(*[st.floats(0, 1)] * 3))
def test_streamed_path_stays_in_the_box_for_any_targets(lim, dt, box, seed, n_segments, clamp_target,
                                                         start) -> None:
    c = CartesianCommand(box.lo + np.array(start) * (box.hi - box.lo), Q0)
    traj = _stream(c, _targets(box, seed, n_segments), box, dt, lim, clamp_target)
    _assert_inside(box, traj)
    _assert_dynamics(traj, dt, lim)


def test_sideways_target_while_braking_towards_every_face_never_crosses_it() -> None:
    """The reported manoeuvre, on every face: the TCP runs at full speed towards a face (its target
    beyond it), then, at some distance from the face, the target jumps or slides sideways. Default
    limits here; other limits get the same sequences in the property test above."""
    lim = MotionLimits()
    for axis in range(3):
        for side in (0, 1):
            face = (DEFAULT_BOX.hi if side else DEFAULT_BOX.lo)[axis]
            normal = np.eye(3)[axis] * (1 if side else -1)
            mid = (DEFAULT_BOX.lo + DEFAULT_BOX.hi) / 2
            start = mid.copy()
            start[axis] = face - normal[axis] * 0.25
            tangent = np.eye(3)[(axis + 1) % 3]
            for switch in (0.0, 0.02, 0.05, 0.08, 0.12):  # 0: straight in, no sideways target
                for offset, slide in ((0.1, 0.0), (0.4, 0.0), (0.05, 1.0), (0.0, 2.0)):
                    c = CartesianCommand(start, Q0)
                    traj, switched_at = [c], None
                    for k in range(300):
                        gap = (face - c.position[axis]) * normal[axis]
                        if switched_at is None and gap < switch:
                            switched_at = k
                        t = start + normal * 1.0
                        if switched_at is not None:
                            t = t + tangent * (offset + slide * 0.01 * (k - switched_at))
                        t, _ = DEFAULT_BOX.clamp(t)
                        c, _ = limit_step(c, t, Q0, 1.0, 0.01, lim, box=DEFAULT_BOX)
                        traj.append(c)
                    _assert_inside(DEFAULT_BOX, traj)
                    _assert_dynamics(traj, 0.01, lim)
                    # and it does reach the face: the box limits the path, it does not stall it
                    assert abs(traj[-1].position[axis] - face) < 1e-3


@settings(max_examples=40, deadline=None)
@given(box=box_st, lim=limits_st, seed=st.integers(0, 2**32 - 1), moving=st.booleans())
def test_command_starting_outside_the_box_never_moves_further_out(box, lim, seed, moving) -> None:
    rng = np.random.default_rng(seed)
    size = box.hi - box.lo
    start = box.lo + rng.uniform(-0.5, 1.5, size=3) * size  # outside on some axes (a seeded arm)
    # A seeded arm is at rest; a moving one (any velocity, even outwards) must not get further out
    # either, though only braking that is not physically possible could then keep every limit.
    v0 = _unit(rng) * rng.uniform(0, lim.max_linear_vel) if moving else np.zeros(3)
    c = CartesianCommand(start, Q0, v0)
    out0 = np.maximum(box.lo - start, start - box.hi).clip(min=0)
    prev_out = out0
    for t in _targets(box, seed, 4):
        c, _ = limit_step(c, t, Q0, 1.0, 0.01, lim, box=box)
        out = np.maximum(box.lo - c.position, c.position - box.hi).clip(min=0)
        assert np.all(out <= prev_out + TOL), f"moved further out: {prev_out} -> {out}"
        prev_out = out
    if not np.any(out0 > 0):
        return
    # moving inwards is allowed: a target inside brings it in
    for _ in range(2000):
        c, _ = limit_step(c, (box.lo + box.hi) / 2, Q0, 1.0, 0.01, lim, box=box)
        if box.contains(c.position):
            break
    assert box.contains(c.position)


# -- hold ---------------------------------------------------------------------------------

def _rotation_between(q0: np.ndarray, q1: np.ndarray) -> np.ndarray:
    return (Rotation.from_quat(q1) * Rotation.from_quat(q0).inv()).as_rotvec()


@settings(max_examples=80, deadline=None)
@given(lim=limits_st, dt=dt_st, seed=st.integers(0, 2**32 - 1), v_frac=st.floats(0.0, 1.0),
       w_frac=st.floats(0.0, 1.0))
def test_hold_brakes_along_the_entry_direction_and_stays_at_rest(lim, dt, seed, v_frac, w_frac) -> None:
    rng = np.random.default_rng(seed)
    v0 = _unit(rng) * v_frac * lim.max_linear_vel
    w0 = _unit(rng) * w_frac * lim.max_angular_vel
    q_entry = Rotation.random(random_state=seed % 2**32).as_quat()
    entry = CartesianCommand(rng.uniform(-0.3, 0.3, size=3), q_entry, v0, w0, 0.4)
    c = entry
    traj = [c]
    steps_to_rest = math.ceil(np.linalg.norm(v0) / (lim.max_linear_acc * dt) + 1e-9) + \
        math.ceil(np.linalg.norm(w0) / (lim.max_angular_acc * dt) + 1e-9)
    for _ in range(steps_to_rest + 5):
        c, flags = brake_step(c, dt, lim)
        assert not flags
        traj.append(c)
    for a, b in zip(traj, traj[1:]):
        # never a reversal: every step moves along the entry direction, linear and angular
        assert float(b.linear_vel @ v0) >= 0 and float(b.angular_vel @ w0) >= 0
        assert float((b.position - a.position) @ v0) >= -1e-15
        assert float(_rotation_between(a.quaternion, b.quaternion) @ w0) >= -1e-12
        # within the acceleration limits
        assert np.linalg.norm(b.linear_vel - a.linear_vel) <= lim.max_linear_acc * dt * (1 + 1e-9)
        assert np.linalg.norm(b.angular_vel - a.angular_vel) <= lim.max_angular_acc * dt * (1 + 1e-9)
        assert b.gripper == entry.gripper
    v, w = np.linalg.norm(v0), np.linalg.norm(w0)
    travel = np.linalg.norm(traj[-1].position - entry.position)
    turn = np.linalg.norm(_rotation_between(entry.quaternion, traj[-1].quaternion))
    assert travel <= v * v / (2 * lim.max_linear_acc) + v * dt + 1e-12
    assert turn <= w * w / (2 * lim.max_angular_acc) + w * dt + 1e-9
    # at rest it stays exactly where it came to rest
    rest = traj[-1]
    assert not rest.linear_vel.any() and not rest.angular_vel.any()
    for _ in range(20):
        c, _ = brake_step(c, dt, lim)
    assert np.array_equal(c.position, rest.position) and np.array_equal(c.quaternion, rest.quaternion)


@settings(max_examples=40, deadline=None)
@given(lim=limits_st, box=box_st, seed=st.integers(0, 2**32 - 1), n_segments=st.integers(1, 6))
def test_hold_entered_anywhere_while_streaming_stays_in_the_box(lim, box, seed, n_segments) -> None:
    c = CartesianCommand((box.lo + box.hi) / 2, Q0)
    traj = _stream(c, _targets(box, seed, n_segments), box, 0.01, lim, clamp_target=True)
    # hold from the fastest moment next to a face, and from the last step
    near = min(range(len(traj)), key=lambda k: np.minimum(traj[k].position - box.lo,
                                                          box.hi - traj[k].position).min()
               - 0.01 * np.linalg.norm(traj[k].linear_vel))
    for entry in (traj[near], traj[-1]):
        held = [entry]
        for _ in range(400):
            held.append(brake_step(held[-1], 0.01, lim, box=box)[0])
        _assert_inside(box, held)
        _assert_dynamics(held, 0.01, lim)
        assert not held[-1].linear_vel.any()


def test_hold_from_a_state_that_cannot_stop_in_time_still_stays_in_the_box() -> None:
    """The hard guarantee: a command heading into a face faster than braking allows (not one
    limit_step makes; a foreign seed) is stopped at the face, never past it."""
    lim = MotionLimits()
    for speed in (0.05, 0.2, 0.4):
        for gap in (0.0, 1e-4, 0.005, 0.02):
            v = np.array([0.3, 0.0, -1.0])
            v *= speed / np.linalg.norm(v)
            c = CartesianCommand(np.array([0.0, 0.0, DEFAULT_BOX.lo[2] + gap]), Q0, v)
            held = [c]
            for _ in range(100):
                c, _ = brake_step(c, 0.01, lim, box=DEFAULT_BOX)
                held.append(c)
            _assert_inside(DEFAULT_BOX, held)
            assert all(float(h.linear_vel @ v) >= 0 for h in held)  # no reversal either
