"""The ROS tier: every registered node runs under the rclpy host (sim drivers, one process), and
the ROS graph shows each node's topics and services with the types ``a2w.ros.codec`` gives them;
one camera_info per image; images reliable by default (tests/ros/scripts/every_node.py)."""

from __future__ import annotations

from pathlib import Path

from a2w.nodes import NODES
from tests.ros.support import run_isolated


def test_every_node_under_rclpy_shows_its_mapped_graph(ros_tier: Path) -> None:
    rc, out, r = run_isolated("every_node.py", timeout=240)
    assert rc == 0 and r is not None, out[-4000:]
    assert set(f"/{n}" for n in NODES) <= set(r["nodes"]), r["nodes"]
    # every endpoint the components created is in the graph under its node, with its codec type
    assert r["expected"] > 20 and r["graph_missing"] == [], r["graph_missing"]
    assert r["topic_types"]["/joint_states"] == ["sensor_msgs/msg/JointState"]
    assert r["topic_types"]["/cameras/front/color/camera_info"] == ["sensor_msgs/msg/CameraInfo"]
    # one camera_info per image, same stamp and frame id
    assert r["images"] >= 20 and r["paired_stamps"] >= 10, r
    assert r["one_info_per_image"], r
    assert r["image_frame_ids"] == r["info_frame_ids"] == ["cam_front_color_optical_frame"]
    # images and camera_info reliable by default (as realsense-ros, what RViz subscribes), best
    # effort where the camera node's image_qos says so
    assert r["qos"] == {
        "/cameras/front/color/image_raw": ["reliable"],
        "/cameras/front/color/camera_info": ["reliable"],
        "/cameras_best_effort/front/color/image_raw": ["best_effort"],
        "/cameras_best_effort/front/color/camera_info": ["best_effort"],
    }
    # and it shut down cleanly
    assert r["spinner_done"] and r["exit_code"] == 0, r["stop_reason"]
    assert r["callback_errors"] == {} and r["worker_errors"] == {}, (r["last_errors"], out[-3000:])
