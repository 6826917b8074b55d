"""The calibrated frames under real rclpy (tests/ros/scripts/rig_tf.py; issue 20 item 3): for
calibration/sim the /tf_static a late tf2_msgs subscriber receives is today's default tree; a
changed folder moves the bases, the front camera and the wrist cameras there and in the arm node;
a pose parameter that disagrees with the folder is refused under rclpy too."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from a2w import frames
from a2w.calib.truth import write_sim_truth
from a2w.description.component import RobotStateNode
from a2w.host import Host
from tests.rig.test_extrinsics import assert_same_tree, moved, published_static, relative
from tests.ros.support import ROOT, run_isolated
from tests.tiers import unavailable


def _static(folder: Path, ros_tier: Path) -> dict:
    if not (ros_tier / "ws" / "install" / "tf2_msgs").is_dir():
        unavailable("ros", "tf2_msgs is not built into the ROS tier (scripts/setup_ros_tier.sh builds it)")
    rc, out, r = run_isolated("rig_tf.py", str(folder))
    assert rc == 0 and r is not None, out[-3000:]
    assert r["static_messages"] == 1, out[-3000:]
    return r


def _tree(r: dict) -> dict[str, tuple[str, np.ndarray]]:
    return {child: (parent, np.array(m)) for child, (parent, m) in r["static"].items()}


def test_sim_calibration_is_todays_tree_under_rclpy(ros_tier: Path) -> None:
    r = _static(ROOT / "calibration" / "sim", ros_tier)
    assert_same_tree(_tree(r), published_static())  # the in-process node with its defaults
    host = Host(diagnostics_period=0)
    try:
        default = host.add_component(RobotStateNode, "robot_state_node")
        assert {c for c, _ in _tree(r).items()} == {t.child for t in default.static.transforms}
    finally:
        host.shutdown()


def test_a_changed_calibration_moves_the_frames_under_rclpy(ros_tier: Path, tmp_path: Path) -> None:
    folder = tmp_path / "rig"
    write_sim_truth(folder)
    truth = moved(folder)
    r = _static(folder, ros_tier)
    tree = _tree(r)
    for arm, i in (("left", 0), ("right", 1)):
        np.testing.assert_allclose(relative(tree, frames.base_frame(arm), frames.WORLD), truth[f"{arm}_base"],
                                   atol=1e-9)
        np.testing.assert_allclose(np.array(r["arm_bases"][i]), truth[f"{arm}_base"], atol=1e-9)
        np.testing.assert_allclose(relative(tree, frames.optical_frame(f"{arm}_wrist"), frames.tcp_frame(arm)),
                                   truth[f"{arm}_he"], atol=1e-9)
    np.testing.assert_allclose(relative(tree, frames.optical_frame("front"), frames.WORLD), truth["front"], atol=1e-9)
    assert f"left_base_pose [0.0, 0.5, 0.0, 0.0, 0.0, 0.0] conflicts with {folder}/bases.yaml left" in r["conflict"]
