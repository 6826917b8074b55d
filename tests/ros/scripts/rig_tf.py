"""robot_state_node and the arm node under the rclpy host with a calibration folder (issue 20
item 3): a late transient-local subscriber's /tf_static, the arm node's base poses, and the error a
pose parameter that disagrees with the folder raises.

    rig_tf.py FOLDER

Prints ``RESULT {"static": {child: [parent, 4x4]}, "arm_bases": [4x4, 4x4], "conflict": "..."}``.
The arm node runs the flexiv backend with the gripper wiring unset, so its connect is refused
before any RDK call (no robot is searched for)."""

import json
import sys
import threading
import time
from typing import Any

import numpy as np
import rclpy
import rclpy.executors
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from scipy.spatial.transform import Rotation
from tf2_msgs.msg import TFMessage

from a2w.arms.component import ArmNode
from a2w.description.component import RobotStateNode
from a2w.ros.host import RosHost

folder = sys.argv[1]
rclpy.init()
host = RosHost(diagnostics_period=0.0)
host.add(RobotStateNode, "robot_state_node", params={"calibration": folder, "publish_tf": False})
arm = host.add(ArmNode, "arm_node", params={"calibration": folder, "backend": "flexiv",
                                            "flexiv.left_serial": "Rizon4s-000001",
                                            "flexiv.right_serial": "Rizon4s-000002"})
conflict = ""
try:
    host.add(RobotStateNode, "robot_state_conflict",
             params={"calibration": folder, "left_base_pose": [0.0, 0.5, 0.0, 0.0, 0.0, 0.0]})
except ValueError as exc:
    conflict = str(exc)
spinner = threading.Thread(target=host.spin, kwargs={"install_signal_handlers": False}, daemon=True)
spinner.start()

time.sleep(0.5)  # a late joiner: the node published /tf_static when it was built
probe = rclpy.create_node("probe")
got: list[Any] = []
lock = threading.Lock()


def keep(m: Any) -> None:
    with lock:
        got.append(m)


latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
probe.create_subscription(TFMessage, "/tf_static", keep, latched)
executor = rclpy.executors.SingleThreadedExecutor()
executor.add_node(probe)
spin_probe = threading.Thread(target=executor.spin, daemon=True)
spin_probe.start()
deadline = time.monotonic() + 20
while time.monotonic() < deadline:
    with lock:
        if got:
            break
    time.sleep(0.05)


def matrix(tr: Any) -> list[list[float]]:
    m = np.eye(4)
    r, v = tr.transform.rotation, tr.transform.translation
    m[:3, :3] = Rotation.from_quat([r.x, r.y, r.z, r.w]).as_matrix()
    m[:3, 3] = [v.x, v.y, v.z]
    return m.tolist()


with lock:
    static = {t.child_frame_id: [t.header.frame_id, matrix(t)] for t in got[0].transforms} if got else {}
result = {"static": static, "static_messages": len(got), "arm_bases": [np.asarray(T).tolist() for T in arm.base_T],
          "conflict": conflict}
executor.shutdown()
spin_probe.join(10)  # a daemon thread left inside rclpy aborts the exit (ros2/rclpy#1484)
probe.destroy_node()
host.stop()
spinner.join(15)
rclpy.try_shutdown()
print("RESULT " + json.dumps(result))
