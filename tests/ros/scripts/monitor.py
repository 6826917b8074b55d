"""monitor_node under the rclpy host beside a fake rig with a policy (cameras, predictions, chunks,
arm state and targets, every node's /diagnostics), all through real ROS 2 messages and the codec;
a plain rclpy publisher adds an image the codec cannot decode (a callback error, counted, not
fatal). Reports the monitor's subscriptions as the ROS graph shows them, the entities of the .rrd
it wrote, and where its web viewer listens."""

import json
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy

from a2w.monitor.component import MonitorNode
from a2w.ros.host import RosHost
from a2w.ros.rclpy_kit import message_class

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from tests.monitor.support import PolicyRig, listening, read_rrd  # noqa: E402

out = Path(tempfile.mkdtemp(prefix="a2w-monitor-tier-"))
rclpy.init()
host = RosHost(diagnostics_period=0.5)
host.add(PolicyRig, "rig")
mon = host.add(MonitorNode, "monitor_node", params={"rrd": str(out / "session.rrd")})
spinner = threading.Thread(target=host.spin, kwargs={"install_signal_handlers": False}, daemon=True)
spinner.start()

probe = rclpy.create_node("monitor_probe")
Image = message_class("sensor_msgs/msg/Image")
bad_pub = probe.create_publisher(Image, "/cameras/front/color/image_raw",
                                 QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT))
executor = SingleThreadedExecutor()
executor.add_node(probe)
spin_probe = threading.Thread(target=executor.spin, daemon=True)
spin_probe.start()


def wait_for(cond, timeout: float) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return False


def subscriptions() -> dict:
    try:
        return {n: list(t) for n, t in probe.get_subscriber_names_and_types_by_node("monitor_node", "/")}
    except Exception:  # noqa: BLE001 - not discovered yet
        return {}


wait_for(lambda: len(subscriptions()) >= 10, 20)
wait_for(lambda: bad_pub.get_subscription_count() >= 1, 20)
for i in range(3):  # 2x2 image claiming 4 bytes of data for 12: the codec refuses it
    m = Image()
    m.header.frame_id = "cam_front_color_optical_frame"
    m.height, m.width, m.encoding, m.step = 2, 2, "rgb8", 6
    m.data = bytes(4)
    bad_pub.publish(m)
    time.sleep(0.1)
wait_for(lambda: mon.lib.logged["cameras"] > 30 and mon.lib.logged["policy"] > 8, 30)
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{mon.params.web_port}/", timeout=10) as resp:
        page = resp.read().decode(errors="replace")
except OSError as exc:
    page = f"error: {exc}"
result = {
    "subscriptions": subscriptions(),
    "web_listening": listening(mon.params.web_port),
    "grpc_listening": listening(mon.params.grpc_port),
    "page_has_viewer": "<html" in page.lower() and "wasm" in page.lower(),
    "callback_errors": host.nodes[1].callback_errors,
    "logged": dict(mon.lib.logged),
    "skipped": dict(mon.lib.skipped),
    "dropped": mon.dropped,
    "errors": mon.errors,
}
executor.shutdown()
spin_probe.join(10)  # a daemon thread left inside rclpy aborts the exit (ros2/rclpy#1484)
probe.destroy_node()
host.stop()
spinner.join(15)
rclpy.try_shutdown()
result["viewer_exited"] = mon.server.poll() is not None
result["entities"] = sorted(read_rrd(out / "session.rrd"))
shutil.rmtree(out)
print("RESULT " + json.dumps(result))
