"""robot_state_node under real rclpy (tests/ros/scripts/robot_state.py): tf2_msgs on /tf and
/tf_static, latched /tf_static and /robot_description for late subscribers, bad /joint_states
never published and never fatal."""

from __future__ import annotations

from pathlib import Path

from a2w import frames
from tests.ros.support import run_isolated
from tests.tiers import unavailable


def test_tf_static_latched_tf_per_joint_state_and_bad_input_survived(ros_tier: Path) -> None:
    if not (ros_tier / "ws" / "install" / "tf2_msgs").is_dir():
        unavailable("ros", "tf2_msgs is not built into the ROS tier (scripts/setup_ros_tier.sh builds it)")
    rc, out, r = run_isolated("robot_state.py")
    assert rc == 0 and r is not None, out[-3000:]
    assert r["types"] == {"/tf": ["tf2_msgs/msg/TFMessage"], "/tf_static": ["tf2_msgs/msg/TFMessage"],
                          "/robot_description": ["std_msgs/msg/String"],
                          "/joint_states": ["sensor_msgs/msg/JointState"]}
    # Latched: published once at start, received by subscribers created a second later.
    assert r["static_pub_transient_local"] == [True]
    assert r["static_count"] == 1 and r["desc_is_urdf"]
    pairs = {tuple(p) for p in r["static_pairs"]}
    assert {(frames.WORLD, frames.base_frame(a)) for a in ("left", "right")} <= pairs
    assert {(frames.camera_link(v), frames.optical_frame(v)) for v in ("front", "left_wrist", "right_wrist")} <= pairs
    # One /tf per good /joint_states, with its stamp; the composed chain is the URDF's FK.
    assert r["tf_count"] == r["sent"] == 20 and max(r["tf_stamp_errors_ns"]) <= 1000
    assert r["tcp_error"] < 1e-9
    # The NaN message fails to decode (a callback error, counted), the unknown joint is rejected.
    assert r["callback_errors"] == 1
    assert r["diagnostics"]["rejected_unknown_joint"] == 1 and r["diagnostics"]["tf_published"] == 20
