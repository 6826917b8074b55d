"""The modelled arm's forward kinematics against the tabulated Flexiv chain (rig_facts.md §1.1)."""

from __future__ import annotations

import math

import mujoco
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from a2w.sim.scene import SOFT_LIMITS
from a2w.sim.world import SimWorld

# Restated from rig_facts.md §1.1 on purpose (not imported from scene.py): xyz, rpy, axis.
TABLE = [
    ((0, 0, 0.155), (0, 0, -math.pi), (0, 0, 1)),
    ((0, 0.030, 0.210), (0, 0, 0), (0, 1, 0)),
    ((0, 0.035, 0.205), (0, 0, 0), (0, 0, 1)),
    ((-0.020, -0.030, 0.190), (0, 0, -math.pi), (0, 1, 0)),
    ((-0.020, 0.025, 0.195), (0, 0, -math.pi), (0, 0, 1)),
    ((0, 0.030, 0.190), (0, 0, 0), (0, 1, 0)),
    ((-0.015, 0.073, 0.110), (0, -math.pi / 2, 0), (0, 0, 1)),
]
FLANGE = ((0, 0, 0.124), (0, 0, -math.pi))


def urdf_flange(q: np.ndarray) -> np.ndarray:
    """Flange pose in the base frame by the URDF convention: origin, then rotate about axis."""
    t = np.eye(4)
    for (xyz, rpy, axis), qi in zip(TABLE, q):
        step = np.eye(4)
        step[:3, :3] = Rotation.from_euler("xyz", rpy).as_matrix() @ Rotation.from_rotvec(
            np.array(axis, float) * qi).as_matrix()
        step[:3, 3] = xyz
        t = t @ step
    step = np.eye(4)
    step[:3, :3] = Rotation.from_euler("xyz", FLANGE[1]).as_matrix()
    step[:3, 3] = FLANGE[0]
    return t @ step


def sim_flange(world: SimWorld, arm: str, q: np.ndarray) -> np.ndarray:
    world.set_arm_q(arm, q)
    d, m = world.data, world.model
    b = m.body(f"{arm}/flange").id
    t = np.eye(4)
    t[:3, :3] = d.xmat[b].reshape(3, 3)
    t[:3, 3] = d.xpos[b]
    return np.linalg.inv(world.arms[arm].base_T) @ t


def test_urdf_reference_matches_tabulated_points() -> None:
    # Guards the reference implementation itself with the positions tabulated in §1.2.
    np.testing.assert_allclose(urdf_flange(np.zeros(7))[:3, 3], [0.139, -0.113, 1.255], atol=5e-4)
    home = urdf_flange(np.radians([0, -40, 0, 90, 0, 40, 0]))
    np.testing.assert_allclose(home[:3, 3], [0.687, -0.113, 0.284], atol=1e-3)
    np.testing.assert_allclose(home[:3, 2], [0, 0, -1], atol=1e-6)  # flange z straight down


@pytest.mark.parametrize("arm", ["left", "right"])
def test_flange_matches_chain_at_several_configurations(world: SimWorld, arm: str) -> None:
    rng = np.random.default_rng(3)
    configs = [np.zeros(7), np.radians([0, -40, 0, 90, 0, 40, 0]), np.radians([30, -45, 0, 90, 0, 40, 30])]
    configs += [rng.uniform(SOFT_LIMITS[:, 0], SOFT_LIMITS[:, 1]) for _ in range(5)]
    for q in configs:
        ref, got = urdf_flange(q), sim_flange(world, arm, q)
        np.testing.assert_allclose(got[:3, 3], ref[:3, 3], atol=1e-6, err_msg=f"q={q}")
        np.testing.assert_allclose(got[:3, :3], ref[:3, :3], atol=1e-6)


def test_tcp_is_145mm_past_the_flange_along_the_tool_axis(world: SimWorld) -> None:
    d = world.data
    for arm in ("left", "right"):
        f = world.model.body(f"{arm}/flange").id
        tcp = d.site_xpos[world.arms[arm].tcp_site]
        np.testing.assert_allclose(tcp - d.xpos[f], 0.145 * d.xmat[f].reshape(3, 3)[:, 2], atol=1e-9)


def test_ready_pose_points_the_tool_down_above_the_shared_zone(world: SimWorld) -> None:
    for arm, side in (("left", 1), ("right", -1)):
        x, y, z = world.data.site_xpos[world.arms[arm].tcp_site]
        tool_z = world.data.site_xmat[world.arms[arm].tcp_site].reshape(3, 3)[:, 2]
        assert tool_z[2] < -0.99
        assert -0.12 < x < 0.03 and 0.1 < side * y < 0.22 and 0.2 < z < 0.32


def test_gravity_compensation_holds_the_ready_pose(world: SimWorld) -> None:
    q0 = {a: world.data.qpos[world.arms[a].qpos].copy() for a in ("left", "right")}
    world.step_for(1.0)
    for a in ("left", "right"):
        np.testing.assert_allclose(world.data.qpos[world.arms[a].qpos], q0[a], atol=1e-3)


def test_model_limits_are_the_flexiv_ones(world: SimWorld) -> None:
    m = world.model
    for arm in ("left", "right"):
        idx = world.arms[arm]
        hard = m.jnt_range[idx.joints]
        soft = m.actuator_ctrlrange[idx.actuators]
        assert np.all(soft[:, 0] > hard[:, 0]) and np.all(soft[:, 1] < hard[:, 1])
        np.testing.assert_allclose(np.degrees(hard[3]), [-112, 159], atol=0.01)
        np.testing.assert_allclose(np.degrees(soft[5]), [-80, 260], atol=0.01)
        np.testing.assert_allclose(m.jnt_actfrcrange[idx.joints][:, 1], [123, 123, 64, 64, 39, 39, 39])
    assert mujoco.mj_getTotalmass(m) > 2 * 20.0  # two arms of ~20.7 kg plus grippers
