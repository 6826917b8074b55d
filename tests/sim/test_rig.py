"""SimRigBackend: the backend contract, Cartesian tracking, gripper, limits and faults."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from a2w.arms.backend import ArmFaultError, FaultKind, RecoveryRefused
from a2w.arms.sim.backend import SimRigBackend
from a2w.arms.sim.params import SimRigParams
from a2w.geometry import rotation_angle
from a2w.sim.scene import GRIPPER_STROKE, SceneConfig
from a2w.sim.world import SimWorld
from tests.contracts import check_rig_backend
from tests.sim.support import stream, target

TRACK_TOL = 0.002  # m, stated tolerance for a reached Cartesian target
ROT_TOL = 0.01  # rad


def test_contract() -> None:
    world = SimWorld(SceneConfig(task="none"))
    check_rig_backend(lambda: SimRigBackend(world), lambda b, dt: b.world.step_for(dt))


def test_cartesian_targets_are_reached_within_tolerance(rig: SimRigBackend) -> None:
    left, right = rig.read()
    turn = Rotation.from_euler("xyz", [0.15, -0.1, 0.35])
    targets = (
        target(left.tcp_pose.position + [0.08, -0.05, -0.10],
               (Rotation.from_quat(left.tcp_pose.quaternion) * turn).as_quat()),
        target(right.tcp_pose.position + [-0.05, 0.06, 0.05], right.tcp_pose.quaternion),
    )
    stream(rig, targets, 1.5)
    for st, tgt in zip(rig.read(), targets):
        assert np.linalg.norm(st.tcp_pose.position - tgt.tcp_pose.position) < TRACK_TOL
        assert rotation_angle(st.tcp_pose.quaternion, tgt.tcp_pose.quaternion) < ROT_TOL
        assert not st.faulted and st.enabled


def test_tracking_speed_is_capped(world: SimWorld) -> None:
    rig = SimRigBackend(world, SimRigParams(max_linear_speed=0.2))
    rig.connect()
    left, right = rig.read()
    far = (target(left.tcp_pose.position + [0.0, 0.0, -0.15], left.tcp_pose.quaternion),
           target(right.tcp_pose.position, right.tcp_pose.quaternion))
    stream(rig, far, 0.3)
    moved = np.linalg.norm(rig.read()[0].tcp_pose.position - left.tcp_pose.position)
    assert 0.02 < moved < 0.2 * 0.3 + 0.005


def test_gripper_closes_at_a_realistic_speed(rig: SimRigBackend) -> None:
    left, right = rig.read()
    assert left.gripper_open == pytest.approx(1.0, abs=0.01)
    close = (target(left.tcp_pose.position, left.tcp_pose.quaternion, 0.0),
             target(right.tcp_pose.position, right.tcp_pose.quaternion, 1.0))
    stream(rig, close, 0.2)
    mid = rig.read()[0].gripper_open
    # 0.15 m/s over an 85 mm stroke: at most ~35% of the stroke in 0.2 s.
    assert 1.0 - (0.15 * 0.2 + 0.003) / GRIPPER_STROKE < mid < 0.95
    stream(rig, close, 0.6)
    a, b = rig.read()
    assert a.gripper_open < 0.02 and b.gripper_open > 0.98


def test_stop_and_streaming_the_measured_pose_keep_the_pose(rig: SimRigBackend) -> None:
    left, right = rig.read()
    stream(rig, (target(left.tcp_pose.position + [0, 0, -0.05], left.tcp_pose.quaternion),
                 target(right.tcp_pose.position, right.tcp_pose.quaternion)), 0.1)
    rig.stop()
    before = rig.read()[0].tcp_pose.position
    rig.world.step_for(0.5)
    # Stopped mid-motion: the arm settles within a few mm of where it was, and stays there.
    settled = rig.read()[0].tcp_pose.position
    assert np.linalg.norm(settled - before) < 0.01
    stream(rig, tuple(target(st.tcp_pose.position, st.tcp_pose.quaternion, st.gripper_open) for st in rig.read()),
           0.5)
    assert np.linalg.norm(rig.read()[0].tcp_pose.position - settled) < 0.001


def test_joint_limit_faults_and_clears(rig: SimRigBackend) -> None:
    left, right = rig.read()
    hold_r = target(right.tcp_pose.position, right.tcp_pose.quaternion)
    rot = Rotation.from_quat(left.tcp_pose.quaternion)
    with pytest.raises(ArmFaultError) as info:
        # Keep turning the tool about its own axis: A7 runs into its ±170° soft limit.
        for k in range(1, 400):
            q = (rot * Rotation.from_euler("z", 0.02 * k)).as_quat()
            stream(rig, (target(left.tcp_pose.position, q), hold_r), 0.02)
    assert info.value.fault.kind is FaultKind.JOINT_LIMIT and info.value.fault.arm == 0
    st = rig.read()[0]
    assert "A7" in st.fault and not st.enabled
    assert abs(st.joint_positions[6]) > math.radians(160)
    assert rig.fault(0).kind is FaultKind.JOINT_LIMIT and rig.fault(1) is None
    # Faulted: commands refused, the arm stays where it stopped.
    with pytest.raises(ArmFaultError):
        rig.command((target(left.tcp_pose.position, left.tcp_pose.quaternion), hold_r))
    rig.clear_fault()
    assert rig.fault(0) is None and rig.read()[0].enabled
    stream(rig, (target(left.tcp_pose.position, left.tcp_pose.quaternion), hold_r), 3.0)
    assert np.linalg.norm(rig.read()[0].tcp_pose.position - left.tcp_pose.position) < TRACK_TOL


def test_pushing_into_the_table_is_excessive_force(rig: SimRigBackend) -> None:
    left, right = rig.read()
    hold_l = target(left.tcp_pose.position, left.tcp_pose.quaternion)
    down = right.tcp_pose.position.copy()
    with pytest.raises(ArmFaultError) as info:
        for _ in range(300):
            down[2] -= 0.003
            stream(rig, (hold_l, target(down, right.tcp_pose.quaternion)), 0.01)
    assert info.value.fault.kind is FaultKind.EXCESSIVE_FORCE and info.value.fault.arm == 1
    assert "force" in rig.read()[1].fault
    # The fingertips are at the table top (z = 0 in the table frame; base at z = -0.15).
    assert rig.read()[1].tcp_pose.position[2] - 0.15 < 0.03


def test_wrench_reports_the_table_pushing_back(world: SimWorld) -> None:
    rig = SimRigBackend(world, SimRigParams(force_limit=1000.0))
    rig.connect()
    left, right = rig.read()
    pressed = right.tcp_pose.position.copy()
    pressed[2] = 0.15 + 0.0125 - 0.003  # fingertips 3 mm below the table top (base frame)
    stream(rig, (target(left.tcp_pose.position, left.tcp_pose.quaternion),
                 target(pressed, right.tcp_pose.quaternion)), 2.0)
    l_state, r_state = rig.read()
    assert r_state.wrench[2] > 10.0  # the table pushes the gripper up
    assert np.allclose(l_state.wrench, 0.0)


def test_arms_touching_is_self_collision(rig: SimRigBackend) -> None:
    world = rig.world
    left, right = rig.read()
    r_world = world.arms["right"].base_T @ np.r_[right.tcp_pose.position, 1.0]
    goal = (np.linalg.inv(world.arms["left"].base_T) @ r_world)[:3]
    hold_r = target(right.tcp_pose.position, right.tcp_pose.quaternion)
    with pytest.raises(ArmFaultError):
        for k in range(1, 200):
            p = left.tcp_pose.position + min(1.0, k / 100) * (goal - left.tcp_pose.position)
            stream(rig, (target(p, left.tcp_pose.quaternion), hold_r), 0.02)
    assert rig.fault(0).kind is FaultKind.SELF_COLLISION
    assert rig.fault(1).kind is FaultKind.SELF_COLLISION
    assert "Collision" in rig.read()[1].fault


def test_estop_refuses_recovery_until_released(rig: SimRigBackend) -> None:
    rig.press_estop()
    assert rig.fault(0).kind is FaultKind.ESTOP and not rig.fault(0).recoverable
    left, right = rig.read()
    with pytest.raises(ArmFaultError):
        rig.command((target(left.tcp_pose.position, left.tcp_pose.quaternion),
                     target(right.tcp_pose.position, right.tcp_pose.quaternion)))
    with pytest.raises(RecoveryRefused):
        rig.clear_fault()
    rig.release_estop()
    rig.clear_fault()
    assert rig.fault(0) is None and rig.fault(1) is None


@pytest.mark.parametrize("kind", [FaultKind.ESTOP, FaultKind.OPERATOR])
def test_operator_fault_holds_until_released_then_latches(rig: SimRigBackend, kind: FaultKind) -> None:
    rig.inject_fault(1, kind, "operator condition")
    rig.inject_fault(1, FaultKind.EXCESSIVE_FORCE, "bump")  # does not mask the operator's fault
    assert rig.fault(1).kind is kind and rig.fault(0) is None
    with pytest.raises(RecoveryRefused, match="right arm: operator condition"):
        rig.clear_fault()
    rig.release_operator_fault(1)
    assert rig.fault(1).recoverable and "released" in rig.fault(1).text  # latched until cleared
    rig.clear_fault()
    assert rig.fault(1) is None


def test_bad_parameters_name_the_field(world: SimWorld) -> None:
    with pytest.raises(ValueError, match="grip_force"):
        SimRigParams(grip_force=500.0)
    with pytest.raises(ValueError, match="command_rate"):
        SimRigParams(command_rate=0.0)
    rig = SimRigBackend(world)
    rig.connect()
    with pytest.raises(ValueError, match="targets"):
        rig.command((None, None))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="arm"):
        rig.fault(2)
