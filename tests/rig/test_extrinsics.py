"""Item 3 of issue 20: the calibrated frames come from one calibration folder. robot_state_node's
/tf_static for calibration/sim equals today's default tree; a changed folder moves the bases, the
front camera and the wrist cameras; pose parameters that disagree with the folder, and folders that
are missing or malformed, stop the node with an error naming what; the arm node takes its base poses
from the same folder (the rclpy tier: tests/ros/test_rig_tf.py)."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from a2w import frames
from a2w.arms.component import ArmNode
from a2w.calib.files import CalibrationError, Transform, load_calibration, write_bases, write_front, write_handeye
from a2w.calib.truth import write_sim_truth
from a2w.description.component import TF_STATIC_TOPIC, RobotStateNode
from a2w.geometry import pose_to_matrix, xyz_rpy_to_matrix
from a2w.host import Component, Host, NodeHandle, Params, QoS
from a2w.msgs.tf import FrameTransforms
from a2w.rig.extrinsics import matrix_pose6
from a2w.sim.component import SimNode
from tests.support import wait_until

ROOT = Path(__file__).resolve().parents[2]
SIM_CALIBRATION = ROOT / "calibration" / "sim"
FLEXIV = {"backend": "flexiv", "flexiv.left_serial": "Rizon4s-1", "flexiv.right_serial": "Rizon4s-2"}


class _Static(Component):
    """A late subscriber of the latched /tf_static."""

    def __init__(self, node: NodeHandle, params: Params) -> None:
        super().__init__(node, params)
        self.lock = threading.Lock()
        self.got: list[FrameTransforms] = []
        node.create_subscription(TF_STATIC_TOPIC, FrameTransforms, self._on, QoS.latched_state())

    def _on(self, m: FrameTransforms) -> None:
        with self.lock:
            self.got.append(m)


def published_static(**params: Any) -> dict[str, tuple[str, np.ndarray]]:
    """robot_state_node's /tf_static with ``params``: child -> (parent, 4x4)."""
    host = Host(diagnostics_period=0)
    try:
        host.add_component(RobotStateNode, "robot_state_node", **params)
        host.start()
        probe = host.add_component(_Static, "probe")
        assert wait_until(lambda: probe.got, 5.0)
        return {t.child: (t.parent, pose_to_matrix(t.pose)) for t in probe.got[0].transforms}
    finally:
        host.shutdown()


def relative(static: dict[str, tuple[str, np.ndarray]], frame: str, to: str) -> np.ndarray:
    """Pose of ``frame`` in ``to`` from fixed transforms only (both below a common ancestor)."""
    def to_root(f: str) -> list[tuple[str, np.ndarray]]:
        path = [(f, np.eye(4))]
        while f in static:
            parent, m = static[f]
            path.append((parent, m @ path[-1][1]))
            f = parent
        return path
    up, down = dict(to_root(frame)), to_root(to)
    for anc, m_to in down:
        if anc in up:
            return np.linalg.inv(m_to) @ up[anc]
    raise AssertionError(f"{frame} and {to} share no ancestor in /tf_static")


def assert_same_tree(a: dict[str, tuple[str, np.ndarray]], b: dict[str, tuple[str, np.ndarray]]) -> None:
    assert {c: p for c, (p, _) in a.items()} == {c: p for c, (p, _) in b.items()}
    for child in a:
        np.testing.assert_allclose(a[child][1], b[child][1], atol=1e-9, err_msg=child)


def moved(folder: Path) -> dict[str, np.ndarray]:
    """Rewrite the bases, front and hand-eye of a sim-truth ``folder`` somewhere else; the new truth."""
    cal = load_calibration(folder)
    shift = xyz_rpy_to_matrix((0.03, -0.02, 0.01), (0.02, -0.05, 0.1))
    new = {"left_base": cal.bases["left"].matrix() @ shift,
           "right_base": shift @ cal.bases["right"].matrix(),
           "front": shift @ cal.front.matrix(),
           "left_he": cal.handeye["left"].matrix() @ shift,
           "right_he": shift @ cal.handeye["right"].matrix()}
    write_bases(folder, "sim", {"left": Transform.from_matrix(new["left_base"]),
                                "right": Transform.from_matrix(new["right_base"])}, "test: moved")
    write_front(folder, "sim", Transform.from_matrix(new["front"]), "test: moved")
    write_handeye(folder, "sim", {"left": Transform.from_matrix(new["left_he"]),
                                  "right": Transform.from_matrix(new["right_he"])}, "test: moved")
    return new


@pytest.fixture
def sim_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "rig"
    write_sim_truth(folder)
    return folder


def test_the_repository_sim_calibration_publishes_todays_default_tree() -> None:
    assert (SIM_CALIBRATION / "bases.yaml").is_file(), "calibration/sim/ is the sim rig's calibration"
    assert_same_tree(published_static(calibration=str(SIM_CALIBRATION)), published_static())


def test_a_changed_calibration_moves_bases_front_and_wrist_cameras(sim_copy: Path) -> None:
    before = published_static(calibration=str(sim_copy))
    truth = moved(sim_copy)
    after = published_static(calibration=str(sim_copy))
    assert set(after) == set(before)
    for arm in ("left", "right"):
        base = frames.base_frame(arm)
        np.testing.assert_allclose(relative(after, base, frames.WORLD), truth[f"{arm}_base"], atol=1e-9)
        cam = frames.optical_frame(f"{arm}_wrist")
        np.testing.assert_allclose(relative(after, cam, frames.tcp_frame(arm)), truth[f"{arm}_he"], atol=1e-9)
        assert not np.allclose(relative(before, cam, frames.tcp_frame(arm)), truth[f"{arm}_he"], atol=1e-3)
    np.testing.assert_allclose(relative(after, frames.optical_frame("front"), frames.WORLD), truth["front"],
                               atol=1e-9)
    # What the calibration does not hold stays: the arm chain below each base.
    for child in ("left_flange", "right_tcp", "left_gripper"):
        np.testing.assert_allclose(after[child][1], before[child][1], atol=1e-12)


def test_a_pose_parameter_equal_to_the_calibration_is_accepted_and_a_different_one_refused(sim_copy: Path) -> None:
    truth = moved(sim_copy)
    same = matrix_pose6(truth["left_base"])
    static = published_static(calibration=str(sim_copy), left_base_pose=same)
    np.testing.assert_allclose(static["left_base"][1], truth["left_base"], atol=1e-9)
    front_link = published_static(calibration=str(sim_copy))["cam_front_link"][1]
    published_static(calibration=str(sim_copy), front_camera_pose=matrix_pose6(front_link))
    for name, value in (("left_base_pose", [0.0, 0.5, 0.0, 0.0, 0.0, 0.0]),
                        ("right_base_pose", [*same[:3], 0.0, 0.0, 0.1]),
                        ("front_camera_pose", [*matrix_pose6(front_link)[:2], 2.0, 0.0, 0.0, 0.0])):
        with pytest.raises(ValueError, match=rf"{name} .* conflicts with {sim_copy}/(bases|front).yaml"):
            published_static(calibration=str(sim_copy), **{name: value})


@pytest.mark.parametrize("break_it", ["missing_folder", "missing_file", "malformed"])
def test_a_missing_or_malformed_calibration_stops_both_nodes_naming_the_file(sim_copy: Path, break_it: str) -> None:
    folder = sim_copy
    if break_it == "missing_folder":
        folder = sim_copy.parent / "nowhere"
        match = "nowhere"
    elif break_it == "missing_file":
        (sim_copy / "handeye.yaml").unlink()
        match = "handeye.yaml"
    else:
        text = (sim_copy / "bases.yaml").read_text().replace("translation: [", "translation: [1.0, ", 1)
        (sim_copy / "bases.yaml").write_text(text)
        match = "bases.yaml"
    for cls, params in ((RobotStateNode, {}), (ArmNode, FLEXIV)):
        host = Host(diagnostics_period=0)
        try:
            with pytest.raises(CalibrationError, match=match):
                host.add_component(cls, cls.__name__, calibration=str(folder), **params)
        finally:
            host.shutdown()


def test_the_arm_node_takes_its_base_poses_from_the_calibration(sim_copy: Path) -> None:
    truth = moved(sim_copy)
    host = Host(diagnostics_period=0)
    try:
        # Real arms: the calibrated bases (the gripper wiring is unset, so no RDK call is ever made).
        arm = host.add_component(ArmNode, "arm_node", calibration=str(sim_copy), **FLEXIV)
        for T, key in zip(arm.base_T, ("left_base", "right_base")):
            np.testing.assert_allclose(T, truth[key], atol=1e-9)
        with pytest.raises(ValueError, match=rf"right_base_pose .* conflicts with {sim_copy}/bases.yaml right"):
            host.add_component(ArmNode, "arm_node2", calibration=str(sim_copy),
                               right_base_pose=[0.0, -0.5, 0.0, 0.0, 0.0, 0.0], **FLEXIV)
    finally:
        host.shutdown()


def test_the_sim_backend_accepts_the_sim_calibration_and_refuses_another(tmp_path: Path, sim_copy: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(sim_copy, other)
    moved(other)
    host = Host(diagnostics_period=0)
    try:
        sim = {"use_sim_time": True}
        host.add_component(SimNode, "sim_node", task="none", world_name="t_cal", max_width=64, max_height=48, **sim)
        arm = host.add_component(ArmNode, "arm_node", backend="sim", calibration=str(SIM_CALIBRATION),
                                 **{"sim.world_name": "t_cal"}, **sim)
        for T, key in zip(arm.base_T, ("left", "right")):
            np.testing.assert_allclose(T, load_calibration(SIM_CALIBRATION).bases[key].matrix(), atol=1e-9)
        with pytest.raises(ValueError, match=r"calibration .*other: the left base .* is not where the sim backend"):
            host.add_component(ArmNode, "arm_node2", backend="sim", calibration=str(other),
                               **{"sim.world_name": "t_cal"}, **sim)
    finally:
        host.shutdown()


def test_wrist_mount_conversion_round_trips() -> None:
    from a2w.rig.extrinsics import handeye_from_wrist_link, wrist_link_in_flange

    rng = np.random.default_rng(1)
    for _ in range(20):
        m = np.eye(4)
        m[:3, :3] = Rotation.random(random_state=rng).as_matrix()
        m[:3, 3] = rng.uniform(-0.2, 0.2, 3)
        off = float(rng.uniform(0.0, 0.3))
        np.testing.assert_allclose(handeye_from_wrist_link(wrist_link_in_flange(m, off), off), m, atol=1e-12)


def test_describe_urdf_with_a_calibration_is_the_nodes_description(sim_copy: Path, capsys: Any) -> None:
    from a2w.cli import main
    from a2w.description.tree import parse_urdf
    from a2w.description.urdf import build_urdf

    assert main(["describe", "urdf", "--calibration", str(SIM_CALIBRATION)]) == 0
    calibrated, default = parse_urdf(capsys.readouterr().out), parse_urdf(build_urdf())
    assert [j.name for j in calibrated.joints] == [j.name for j in default.joints]
    for a, b in zip(calibrated.joints, default.joints):
        np.testing.assert_allclose(a.origin, b.origin, atol=1e-9, err_msg=a.name)
    moved(sim_copy)  # robot_state_node publishes exactly what robot_state_publisher would be fed
    assert main(["describe", "urdf", "--calibration", str(sim_copy)]) == 0
    host = Host(diagnostics_period=0)
    try:
        node = host.add_component(RobotStateNode, "robot_state_node", calibration=str(sim_copy))
        assert capsys.readouterr().out == node.urdf
    finally:
        host.shutdown()


@pytest.mark.parametrize("argv,why", [(["--left-base", "0", "0.5", "0", "0", "0", "0"], "--left-base: the base poses"),
                                      ([], "nowhere: not a calibration folder")])
def test_describe_urdf_refuses_base_poses_beside_a_calibration_and_a_bad_folder(
        tmp_path: Path, capsys: Any, argv: list[str], why: str) -> None:
    from a2w.cli import main

    folder = SIM_CALIBRATION if argv else tmp_path / "nowhere"
    assert main(["describe", "urdf", "--calibration", str(folder), *argv]) == 2
    captured = capsys.readouterr()
    assert why in captured.err and captured.out == ""
