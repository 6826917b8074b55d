"""monitor_node under real rclpy (tests/ros/scripts/monitor.py): it subscribes with the codec's
ROS types, shows what a fake rig with a policy sends through ROS 2 (the .rrd it writes holds it),
survives an image the codec cannot decode, and serves its web viewer on loopback only."""

from __future__ import annotations

from pathlib import Path

from tests.ros.support import run_isolated


def test_monitor_under_rclpy(ros_tier: Path) -> None:
    rc, out, r = run_isolated("monitor.py", timeout=180)
    assert rc == 0 and r is not None, out[-3000:]
    subs = r["subscriptions"]
    assert subs["/cameras/front/color/image_raw"] == ["sensor_msgs/msg/Image"]
    assert subs["/policy/predicted/front/color/image_raw"] == ["sensor_msgs/msg/Image"]
    assert subs["/policy/chunk"] == ["a2w_interfaces/msg/ActionChunk"]
    assert subs["/diagnostics"] == ["diagnostic_msgs/msg/DiagnosticArray"]
    assert subs["/arms/state"] == ["a2w_interfaces/msg/RigState"]
    assert subs["/arms/status"] == ["a2w_interfaces/msg/ArmsStatus"]
    assert subs["/sim/status"] == ["a2w_interfaces/msg/SimStatus"]
    assert subs["/episode/events"] == ["a2w_interfaces/msg/EpisodeEvent"]
    for e in ("/cameras/front/real", "/cameras/front/predicted", "/cameras/front/diff", "/policy/plan/left/tcp",
              "/arms/left/state/tcp", "/arms/right/target/tcp", "/diagnostics/rig/level"):
        assert e in r["entities"], (e, r["entities"])
    # the undecodable image is a callback error of the node, counted; the node went on
    assert r["callback_errors"] == 3, r
    assert r["errors"] == 0 and r["dropped"] == 0 and not r["skipped"], r
    assert r["web_listening"] == ["127.0.0.1"] and r["grpc_listening"] == ["127.0.0.1"], r
    assert r["page_has_viewer"] and r["viewer_exited"], r
