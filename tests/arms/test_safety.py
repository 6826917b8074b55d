"""Pure safety math: clamps, workspace, capsules, interpolation, target checks, watchdog, ownership."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from a2w.arms import kinematics
from a2w.arms.ownership import Ownership
from a2w.arms.safety import (
    Capsule,
    CartesianCommand,
    Clamp,
    MotionLimits,
    TargetInterpolator,
    Watchdog,
    WatchdogState,
    Waypoint,
    WorkspaceBox,
    capsule_distance,
    inter_arm_stop,
    limit_gripper,
    limit_step,
    min_distance,
    segment_distance,
)
from a2w.arms.supervisor import target_problem
from a2w.msgs.arms import ControlMode

Q0 = np.array([0.0, 0.0, 0.0, 1.0])
LIM = MotionLimits(max_linear_vel=0.4, max_angular_vel=1.0, max_linear_acc=2.0, max_angular_acc=5.0,
                   gripper_rate=1.0)


def _run(target: np.ndarray, steps: int, dt: float = 0.01, quat: np.ndarray = Q0):
    c = CartesianCommand(np.zeros(3), Q0)
    traj, flags = [c], set()
    for _ in range(steps):
        c, f = limit_step(c, target, quat, 1.0, dt, LIM)
        traj.append(c)
        flags |= f
    return traj, flags


def test_far_target_is_approached_within_velocity_and_acceleration_limits() -> None:
    traj, flags = _run(np.array([0.3, 0.0, 0.0]), 300)
    pos = np.array([c.position for c in traj])
    vel = np.diff(pos, axis=0) / 0.01
    acc = np.diff(vel, axis=0) / 0.01
    assert np.linalg.norm(vel, axis=1).max() <= 0.4 + 1e-9
    assert np.linalg.norm(acc, axis=1).max() <= 2.0 + 1e-6
    assert np.linalg.norm(pos[-1] - [0.3, 0, 0]) < 1e-3  # arrives
    assert pos[:, 0].max() <= 0.3 + 1e-3  # without overshoot
    assert {Clamp.LINEAR_VELOCITY, Clamp.LINEAR_ACCELERATION} <= flags


def test_small_smooth_steps_are_not_clamped() -> None:
    c = CartesianCommand(np.zeros(3), Q0)
    flags: set = set()
    for k in range(1, 50):  # 1 mm/s^2 ramp: far inside every limit
        c, f = limit_step(c, np.array([0.5e-3 * (k * 0.01) ** 2, 0, 0]), Q0, 1.0, 0.01, LIM)
        flags |= f
    assert not flags


def test_rotation_is_rate_limited_and_reaches_goal() -> None:
    goal = Rotation.from_euler("z", 1.2).as_quat()
    traj, flags = _run(np.zeros(3), 400, quat=goal)
    angles = [Rotation.from_quat(c.quaternion).magnitude() for c in traj]
    steps = np.abs(np.diff(angles)) / 0.01
    assert steps.max() <= 1.0 + 1e-6
    assert abs(angles[-1] - 1.2) < 1e-3
    assert Clamp.ANGULAR_VELOCITY in flags


def test_gripper_rate_limit() -> None:
    assert limit_gripper(1.0, 0.0, 0.01, 1.0) == pytest.approx(0.99)
    assert limit_gripper(0.5, 0.505, 0.01, 1.0) == pytest.approx(0.505)
    _, flags = limit_step(CartesianCommand(np.zeros(3), Q0, gripper=1.0), np.zeros(3), Q0, 0.0, 0.01, LIM)
    assert flags == {Clamp.GRIPPER_RATE}


def test_limits_and_workspace_reject_bad_values() -> None:
    with pytest.raises(ValueError, match="max_linear_vel"):
        MotionLimits(max_linear_vel=0.0)
    with pytest.raises(ValueError, match="lo must be below hi"):
        WorkspaceBox(np.array([0, 0, 1.0]), np.array([1, 1, 0.5]))
    box = WorkspaceBox(np.array([-0.3, -0.7, 0.015]), np.array([0.2, 0.7, 0.9]))
    p, clamped = box.clamp(np.array([0.5, 0.0, -0.1]))
    assert clamped and np.allclose(p, [0.2, 0.0, 0.015])
    p, clamped = box.clamp(np.array([0.0, 0.1, 0.3]))
    assert not clamped and np.allclose(p, [0.0, 0.1, 0.3])


def test_segment_and_capsule_distance() -> None:
    a = np.array
    # crossing segments at 0.2 apart in z
    assert segment_distance(a([-1, 0, 0.0]), a([1, 0, 0.0]), a([0, -1, 0.2]), a([0, 1, 0.2])) == pytest.approx(0.2)
    # parallel, offset, non-overlapping along the axis: endpoint distance
    assert segment_distance(a([0, 0, 0.0]), a([1, 0, 0.0]), a([2, 1, 0.0]), a([3, 1, 0.0])) == pytest.approx(
        math.sqrt(2))
    # degenerate segments are points
    assert segment_distance(a([0, 0, 0.0]), a([0, 0, 0.0]), a([0, 3, 4.0]), a([0, 3, 4.0])) == pytest.approx(5.0)
    c1 = Capsule(a([0, 0, 0.0]), a([1, 0, 0.0]), 0.1)
    c2 = Capsule(a([0.5, 0.3, 0.0]), a([0.5, 1.0, 0.0]), 0.05)
    assert capsule_distance(c1, c2) == pytest.approx(0.15)
    rng = np.random.default_rng(0)
    for _ in range(20):  # against dense sampling
        p1, q1, p2, q2 = rng.normal(size=(4, 3))
        s = np.linspace(0, 1, 201)
        d = np.linalg.norm((p1 + s[:, None] * (q1 - p1))[:, None] - (p2 + s[:, None] * (q2 - p2))[None], axis=-1)
        assert segment_distance(p1, q1, p2, q2) <= d.min() + 1e-9
        assert segment_distance(p1, q1, p2, q2) >= d.min() - 0.02


def _dense_distance(p1: np.ndarray, q1: np.ndarray, p2: np.ndarray, q2: np.ndarray) -> float:
    s = np.linspace(0, 1, 401)
    return float(np.linalg.norm((p1 + s[:, None] * (q1 - p1))[:, None] - (p2 + s[:, None] * (q2 - p2))[None],
                                axis=-1).min())


def test_batched_distances_match_each_pair_for_every_kind_of_segment() -> None:
    """min_distance takes all pairs in one broadcast call: each pair must come out as alone, for
    proper, point-like, parallel and collinear segments alike (the branches of the solution)."""
    rng = np.random.default_rng(3)
    left, right = [], []
    for kind in range(6):
        p, q = rng.normal(size=(2, 3))
        if kind == 1:
            q = p.copy()  # a point (the TCP-only capsule)
        left.append(Capsule(p, q, float(rng.uniform(0, 0.1))))
        u, v = rng.normal(size=(2, 3))
        if kind == 2:
            u, v = p + [0, 0, 0.3], q + [0, 0, 0.3]  # parallel to its partner
        elif kind == 3:
            u, v = p + 0.5 * (q - p), q + 0.7 * (q - p)  # collinear, overlapping
        elif kind == 4:
            v = u.copy()
        right.append(Capsule(u, v, float(rng.uniform(0, 0.1))))
    pairs = [capsule_distance(a, b) for a in left for b in right]
    assert min_distance(left, right) == pytest.approx(min(pairs), abs=1e-12)
    for a in left:
        for b in right:
            d = float(segment_distance(a.a, a.b, b.a, b.b))
            assert _dense_distance(a.a, a.b, b.a, b.b) - 0.02 <= d <= _dense_distance(a.a, a.b, b.a, b.b) + 1e-9
            batched = segment_distance(np.array([a.a]), np.array([a.b]), np.array([b.a]), np.array([b.b]))
            assert float(batched[0]) == pytest.approx(d, abs=1e-12)
    assert min_distance(left, []) == math.inf


def test_inter_arm_stop_only_blocks_approach_below_threshold() -> None:
    assert inter_arm_stop(current=0.08, predicted=0.04, stop_distance=0.05)
    assert not inter_arm_stop(current=0.04, predicted=0.045, stop_distance=0.05)  # backing off
    assert not inter_arm_stop(current=0.2, predicted=0.1, stop_distance=0.05)


def test_rizon_forward_kinematics_matches_reference_lengths() -> None:
    frames = kinematics.joint_frames(np.zeros(7))
    # A2 to A6 with the arm straight = 0.780 m (rig_facts.md §1.2 "780 mm reach")
    assert np.linalg.norm(frames[1][:3, 3] - frames[5][:3, 3]) == pytest.approx(0.78, abs=2e-3)
    home = kinematics.key_points(np.radians([0, -40, 0, 90, 0, 40, 0]))
    assert home[-1][1] == pytest.approx(-0.113, abs=1e-3)  # the wrist's lateral offset (§1.2)
    assert home[-1][0] > 0.5  # negative A2 leans forward (+x)
    with pytest.raises(ValueError, match="q"):
        kinematics.joint_frames(np.zeros(6))


def test_interpolator_reaches_each_target_at_its_stamp_and_holds_after() -> None:
    it = TargetInterpolator()
    it.reset(Waypoint(0.0, np.zeros(3), Q0, 1.0))
    it.push(Waypoint(0.1, np.array([0.1, 0, 0]), Q0, 0.0), now=0.0)
    it.push(Waypoint(0.2, np.array([0.1, 0.1, 0]), Rotation.from_euler("z", 0.4).as_quat(), 0.0), now=0.0)
    assert np.allclose(it.sample(0.05).position, [0.05, 0, 0])
    assert it.sample(0.05).gripper == pytest.approx(0.5)
    assert np.allclose(it.sample(0.1).position, [0.1, 0, 0])
    mid = it.sample(0.15)
    assert np.allclose(mid.position, [0.1, 0.05, 0])
    assert Rotation.from_quat(mid.quaternion).magnitude() == pytest.approx(0.2)
    assert np.allclose(it.sample(1.0).position, [0.1, 0.1, 0])  # holds, no extrapolation


def test_interpolator_due_target_replaces_queue_and_earlier_supersedes_later() -> None:
    it = TargetInterpolator()
    it.reset(Waypoint(0.0, np.zeros(3), Q0, 1.0))
    it.push(Waypoint(1.0, np.array([1.0, 0, 0]), Q0, 1.0), now=0.0)
    it.push(Waypoint(0.5, np.array([0.0, 1.0, 0]), Q0, 1.0), now=0.0)  # newer info, earlier time
    assert np.allclose(it.sample(0.5).position, [0, 1, 0])
    assert np.allclose(it.sample(2.0).position, [0, 1, 0])  # the superseded 1.0 s target is gone
    it.push(Waypoint(0.6, np.array([0.3, 0, 0]), Q0, 1.0), now=0.7)  # already due
    assert np.allclose(it.sample(0.7).position, [0.3, 0, 0])


def test_target_problem_reasons() -> None:
    ok = dict(position=np.zeros(3), quaternion=Q0, gripper=0.5, stamp=10.0, now=10.0,
              stale_after=0.2, max_lead=1.0)

    def problem(**kw) -> str:
        return str(target_problem(**{**ok, **kw}))

    assert target_problem(**ok) is None
    assert "non-finite" in problem(position=np.array([np.nan, 0, 0]))
    assert "non-finite" in problem(gripper=float("inf"))
    assert "quaternion norm" in problem(quaternion=np.array([0, 0, 0, 2.0]))
    assert "shapes" in problem(position=np.zeros(2))
    assert "gripper_open" in problem(gripper=1.5)
    assert problem(stamp=9.7).startswith("stale")
    assert problem(stamp=11.5).startswith("too far ahead")
    assert problem(position="abc").startswith("malformed")


def test_watchdog_hold_then_stop() -> None:
    with pytest.raises(ValueError, match="stop_after"):
        Watchdog(0.5, 0.2)
    wd = Watchdog(0.2, 1.0)
    assert wd.check(5.0) == WatchdogState.OK  # not armed yet
    wd.feed(0.0)
    assert wd.check(0.1) == WatchdogState.OK
    assert wd.check(0.25) == WatchdogState.HOLD
    assert wd.check(1.0) == WatchdogState.STOP
    wd.feed(1.0)
    assert wd.check(1.05) == WatchdogState.OK


def test_ownership_always_passes_through_hold_and_logs_reasons() -> None:
    own = Ownership()
    made = own.request(ControlMode.TELEOP, "operator", 1.0)
    assert [(t.old, t.new) for t in made] == [(ControlMode.IDLE, ControlMode.HOLD),
                                              (ControlMode.HOLD, ControlMode.TELEOP)]
    assert own.accepts(ControlMode.TELEOP) and not own.accepts(ControlMode.POLICY)
    made = own.request("policy", "start policy", 2.0)
    assert [t.new for t in made] == [ControlMode.HOLD, ControlMode.POLICY]
    assert all(t.reason == "start policy" for t in made)
    assert own.request(ControlMode.POLICY, "again", 3.0) == []
    assert [t.new for t in own.request(ControlMode.HOLD, "pause", 4.0)] == [ControlMode.HOLD]
    assert not own.accepts(ControlMode.HOLD)
    with pytest.raises(ValueError, match="reason"):
        own.request(ControlMode.IDLE, "  ", 5.0)
    with pytest.raises(ValueError, match="mode"):
        own.request("dance", "why not", 5.0)
    assert len(own.history) == 5
