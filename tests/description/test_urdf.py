"""The rig's URDF: one tree with the frames a2w.frames spells, the arm node's joint names and
limits, its forward kinematics equal to ours (kinematics.joint_frames with the base poses and the
TCP offset), and its camera optical frames equal to the MuJoCo scene's cameras."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from a2w import frames
from a2w.arms.flexiv.backend import FlexivRigBackend
from a2w.arms.kinematics import TRI_BASE_POSES, joint_frames
from a2w.arms.sim.backend import SimRigBackend
from a2w.description.tree import KinematicTree, parse_urdf
from a2w.description.urdf import VIEWS, WRIST_ARM, RigSpec, build_urdf, flange_frame, front_link_pose, joint_name
from a2w.geometry import xyz_rpy_to_matrix
from a2w.msgs.cameras import FRONT, LEFT_WRIST, RIGHT_WRIST
from a2w.sim.scene import ARMS, HARD_LIMITS, READY_POSE_DEG, SOFT_LIMITS, TCP_OFFSET, SceneConfig
from a2w.sim.world import VIEW_CAMERAS, SimWorld


def _tree(spec: RigSpec | None = None) -> KinematicTree:
    return parse_urdf(build_urdf(spec))


def _rot_err(a: np.ndarray, b: np.ndarray) -> float:
    """Angle (rad) of the rotation between two rotation matrices."""
    return float(Rotation.from_matrix(a.T @ b).magnitude())


def _positions(q: dict[str, np.ndarray]) -> dict[str, float]:
    return {joint_name(arm, i + 1): float(q[arm][i]) for arm in q for i in range(7)}


def test_one_tree_rooted_at_world_with_the_frames_the_stack_names() -> None:
    tree = _tree()
    assert tree.root == frames.WORLD
    links = set(tree.links)
    for arm in ARMS:
        assert {frames.base_frame(arm), frames.tcp_frame(arm), flange_frame(arm)} <= links
    for view in VIEWS:
        assert {frames.camera_link(view), frames.optical_frame(view)} <= links
    # Every link but the root hangs off exactly one joint (parse_urdf checked there is no cycle).
    assert sorted(j.child for j in tree.joints) == sorted(links - {frames.WORLD})


def test_moving_joints_are_the_joint_states_names_with_the_rizon_limits() -> None:
    tree = _tree()
    names = [j.name for j in tree.moving_joints]
    for backend in (SimRigBackend, FlexivRigBackend):
        assert names == [*backend.joint_names[0], *backend.joint_names[1]]
    for j in tree.moving_joints:
        i = int(j.name[-1]) - 1
        assert j.type == "revolute" and (j.lower, j.upper) == tuple(HARD_LIMITS[i])


def _random_qs(n: int, seed: int) -> Iterator[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {arm: rng.uniform(HARD_LIMITS[:, 0], HARD_LIMITS[:, 1]) for arm in ARMS}


@pytest.mark.parametrize("bases", [TRI_BASE_POSES, {"left": (0.1, 0.8, 0.0, 0.2, -0.1, -2.0),
                                                    "right": (-0.3, -0.6, 0.05, 0.0, 0.3, 1.0)}],
                         ids=["tri_layout", "moved_bases"])
def test_flange_and_tcp_agree_with_our_forward_kinematics(bases: dict[str, tuple[float, ...]]) -> None:
    tree = _tree(RigSpec(bases=bases))
    worst_pos = worst_ang = 0.0
    for q in _random_qs(200, seed=1):
        poses = tree.link_poses(_positions(q))
        for arm in ARMS:
            flange = xyz_rpy_to_matrix(bases[arm][:3], bases[arm][3:]) @ joint_frames(q[arm])[-1]
            tcp = flange @ xyz_rpy_to_matrix((0.0, 0.0, TCP_OFFSET), (0.0, 0.0, 0.0))
            for link, ref in ((flange_frame(arm), flange), (frames.tcp_frame(arm), tcp)):
                worst_pos = max(worst_pos, float(np.abs(poses[link][:3, 3] - ref[:3, 3]).max()))
                worst_ang = max(worst_ang, _rot_err(poses[link][:3, :3], ref[:3, :3]))
            # Each link of the chain, not only the end.
            for i, m in enumerate(joint_frames(q[arm])[:7], start=1):
                ref = xyz_rpy_to_matrix(bases[arm][:3], bases[arm][3:]) @ m
                np.testing.assert_allclose(poses[f"{arm}_link{i}"], ref, atol=1e-9)
    assert worst_pos < 1e-9 and worst_ang < 1e-9, (worst_pos, worst_ang)


@pytest.fixture
def world() -> Iterator[SimWorld]:
    w = SimWorld(SceneConfig(task="none", max_width=64, max_height=48))
    yield w
    w.close()


def _mujoco_camera_optical(world: SimWorld, camera: str) -> np.ndarray:
    """The MuJoCo camera's pose turned into an optical frame: it looks along -z with +y up, the
    optical frame along +z with +y down, so flip y and z."""
    c = world.model.camera(camera).id
    m = np.eye(4)
    m[:3, :3] = world.data.cam_xmat[c].reshape(3, 3) @ np.diag([1.0, -1.0, -1.0])
    m[:3, 3] = world.data.cam_xpos[c]
    return m


def test_camera_optical_frames_agree_with_the_sim_scene(world: SimWorld) -> None:
    tree = _tree()
    configs = [{arm: np.radians(READY_POSE_DEG[arm]) for arm in ARMS}]
    configs += [{arm: np.zeros(7) for arm in ARMS}]
    configs += list(_random_qs(6, seed=2))
    worst_pos = worst_ang = 0.0
    for q in configs:
        for arm in ARMS:
            world.set_arm_q(arm, np.clip(q[arm], SOFT_LIMITS[:, 0], SOFT_LIMITS[:, 1]))
        q_set = {arm: world.data.qpos[world.arms[arm].qpos].copy() for arm in ARMS}
        poses = tree.link_poses(_positions(q_set))
        for view in VIEWS:
            sim = _mujoco_camera_optical(world, VIEW_CAMERAS[view])
            got = poses[frames.optical_frame(view)]
            worst_pos = max(worst_pos, float(np.abs(got[:3, 3] - sim[:3, 3]).max()))
            worst_ang = max(worst_ang, _rot_err(got[:3, :3], sim[:3, :3]))
            # The world's own optical pose (what the sim camera driver stamps) is the same frame.
            pos, rot = world.camera_pose(VIEW_CAMERAS[view])
            np.testing.assert_allclose(got[:3, 3], pos, atol=1e-9)
            np.testing.assert_allclose(got[:3, :3], rot, atol=1e-9)
        for arm in ARMS:  # and the sim's TCP site is the URDF's <arm>_tcp
            tcp = world.data.site_xpos[world.arms[arm].tcp_site]
            np.testing.assert_allclose(poses[frames.tcp_frame(arm)][:3, 3], tcp, atol=1e-9)
    assert worst_pos < 1e-9 and worst_ang < 1e-9, (worst_pos, worst_ang)


def _in_frame(m: np.ndarray, p_world: np.ndarray) -> np.ndarray:
    return np.linalg.inv(m)[:3, :3] @ p_world + np.linalg.inv(m)[:3, 3]


def test_optical_frames_look_along_z_with_y_down_and_links_x_forward_z_up() -> None:
    # Independent of the MuJoCo conversion: the cameras look at the points the scene aims them at.
    cfg = SceneConfig(task="none")
    tree = _tree()
    q = {arm: np.radians((10, -7, 10, 94, -1, 12, 5)) for arm in ARMS}
    poses = tree.link_poses(_positions(q))
    front = poses[frames.optical_frame(FRONT)]
    target = _in_frame(front, np.asarray(cfg.front_target, float))
    assert abs(target[0]) < 1e-9 and abs(target[1]) < 1e-9 and target[2] > 0.5
    assert (front[:3, :3].T @ [0.0, 0.0, 1.0])[1] < -0.5  # world up is image up: -y
    for view in (LEFT_WRIST, RIGHT_WRIST):
        opt = poses[frames.optical_frame(view)]
        aim = poses[flange_frame(WRIST_ARM[view])] @ [0.0, 0.0, cfg.wrist_aim, 1.0]
        p = _in_frame(opt, aim[:3])
        assert abs(p[0]) < 1e-9 and abs(p[1]) < 1e-9 and p[2] > 0.1
        # The finger pads (the TCP, short of the aim point) are in the lower image: +y.
        assert _in_frame(opt, poses[frames.tcp_frame(WRIST_ARM[view])][:3, 3])[1] > 0.01
    for view in VIEWS:
        link, opt = poses[frames.camera_link(view)], poses[frames.optical_frame(view)]
        np.testing.assert_allclose(link[:3, 0], opt[:3, 2], atol=1e-12)  # x forward
        np.testing.assert_allclose(link[:3, 2], -opt[:3, 1], atol=1e-12)  # z up
        np.testing.assert_allclose(link[:3, 3], opt[:3, 3], atol=1e-12)


def test_spec_chooses_arms_cameras_optical_frames_and_a_front_mount() -> None:
    tree = _tree(RigSpec(arms=("right",), views=(RIGHT_WRIST,), optical_frames=False))
    assert frames.base_frame("left") not in tree.links and frames.tcp_frame("right") in tree.links
    assert frames.camera_link(RIGHT_WRIST) in tree.links and frames.optical_frame(RIGHT_WRIST) not in tree.links
    assert frames.camera_link(FRONT) not in tree.links
    pose = [0.5, -0.2, 0.8, 0.1, 0.6, 2.9]
    got = _tree(RigSpec(front_link_pose=pose)).pose(frames.camera_link(FRONT), {})
    np.testing.assert_allclose(got, xyz_rpy_to_matrix(pose[:3], pose[3:]), atol=1e-12)
    # The default mount written as a pose reads back as the scene's mount.
    default = _tree().pose(frames.camera_link(FRONT), {})
    np.testing.assert_allclose(_tree(RigSpec(front_link_pose=front_link_pose())).pose(frames.camera_link(FRONT), {}),
                               default, atol=1e-12)


@pytest.mark.parametrize("kwargs, why", [
    ({"arms": ("left", "left")}, "arms"),
    ({"arms": ("middle",)}, "arms"),
    ({"arms": ("left",), "views": (RIGHT_WRIST,)}, "right arm"),
    ({"views": ("top",)}, "unknown view"),
    ({"views": (FRONT, FRONT)}, "duplicate"),
    ({"bases": {"left": TRI_BASE_POSES["left"]}}, "no base pose"),
    ({"bases": {**TRI_BASE_POSES, "left": (0.0, 0.0, math.nan, 0.0, 0.0, 0.0)}}, "left base pose"),
    ({"bases": {**TRI_BASE_POSES, "left": (0.0, 0.0, 0.0)}}, "left base pose"),
    ({"tcp_offset": -0.1}, "tcp_offset"),
    ({"tcp_offset": math.inf}, "tcp_offset"),
    ({"front_link_pose": (0.0, 0.0, 1.0, 0.0, 0.0)}, "front_link_pose"),
])
def test_spec_refuses_bad_values_naming_the_field(kwargs: dict[str, object], why: str) -> None:
    with pytest.raises(ValueError, match=why):
        RigSpec(**kwargs)  # type: ignore[arg-type]
