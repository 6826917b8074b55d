"""robot_state_node under the rclpy host, fed raw sensor_msgs/JointState by a plain rclpy node:
a late transient-local subscriber gets /tf_static and /robot_description, /tf arrives as
tf2_msgs/TFMessage with each good message's stamp, and undecodable (NaN) or unknown-joint
messages publish nothing and do not stop the node."""

import json
import math
import threading
import time
from typing import Any

import numpy as np
import rclpy
import rclpy.executors
from builtin_interfaces.msg import Time
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from scipy.spatial.transform import Rotation
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from tf2_msgs.msg import TFMessage

from a2w.description.component import RobotStateNode
from a2w.description.tree import parse_urdf
from a2w.ros.host import RosHost

NAMES = [f"{arm}_joint{i}" for arm in ("left", "right") for i in range(1, 8)]

rclpy.init()
host = RosHost(diagnostics_period=0.5)
rs = host.add(RobotStateNode, "robot_state_node", params={"max_rate": 0.0})  # every message
spinner = threading.Thread(target=host.spin, kwargs={"install_signal_handlers": False}, daemon=True)
spinner.start()

probe = rclpy.create_node("probe")
pub = probe.create_publisher(JointState, "/joint_states", 10)
lock = threading.Lock()
got: dict[str, list[Any]] = {"tf": [], "static": [], "desc": []}


def keep(key: str) -> Any:
    def cb(m: Any) -> None:
        with lock:
            got[key].append(m)
    return cb


def stamp_of(t: float) -> Time:
    return Time(sec=int(t), nanosec=int(round((t - int(t)) * 1e9)) % 1_000_000_000)


def joint_state(names: list[str], q: list[float], t: float) -> JointState:
    m = JointState()
    m.header.stamp = stamp_of(t)
    m.header.frame_id = "world"
    m.name, m.position = names, q
    return m


probe.create_subscription(TFMessage, "/tf", keep("tf"), 100)
executor = rclpy.executors.SingleThreadedExecutor()
executor.add_node(probe)
spin_probe = threading.Thread(target=executor.spin, daemon=True)
spin_probe.start()

# Wait until the node's subscription has matched, so no message is lost to discovery.
deadline = time.monotonic() + 20
while pub.get_subscription_count() < 1 and time.monotonic() < deadline:
    time.sleep(0.05)

rng = np.random.default_rng(0)
q_good = [float(x) for x in rng.uniform(-1.0, 1.0, len(NAMES))]
sent: list[float] = []
now = probe.get_clock().now().nanoseconds * 1e-9

def wait_for(cond: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with lock:
            if cond():
                return True
        time.sleep(0.01)
    return False


# The node's /joint_states queue keeps the newest message only (sensor QoS), so each bad message
# gets time to be taken before the next one replaces it.
pub.publish(joint_state(NAMES, [math.nan] + q_good[1:], now))  # refused by JointStates' decode
wait_for(lambda: host.nodes[0].callback_errors >= 1, 5.0)
pub.publish(joint_state(NAMES[:-1] + ["right_finger_joint"], q_good, now + 0.001))  # unknown joint
wait_for(lambda: rs.rejected["unknown_joint"] >= 1, 5.0)
for k in range(20):
    t = probe.get_clock().now().nanoseconds * 1e-9
    pub.publish(joint_state(NAMES, q_good, t))
    sent.append(t)
    wait_for(lambda: len(got["tf"]) >= len(sent))  # lockstep: the newest-only queue drops nothing

# Late joiners: subscribed a second after the node published its latched topics.
time.sleep(1.0)
latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
probe.create_subscription(TFMessage, "/tf_static", keep("static"), latched)
probe.create_subscription(String, "/robot_description", keep("desc"), latched)
deadline = time.monotonic() + 20
while time.monotonic() < deadline:
    with lock:
        if got["static"] and got["desc"] and len(got["tf"]) >= len(sent):
            break
    time.sleep(0.05)

types = dict(probe.get_topic_names_and_types())
static_pub_qos = [i.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL
                  for i in probe.get_publishers_info_by_topic("/tf_static")]


def matrix(tr: Any) -> np.ndarray:
    m = np.eye(4)
    r = tr.transform.rotation
    m[:3, :3] = Rotation.from_quat([r.x, r.y, r.z, r.w]).as_matrix()
    v = tr.transform.translation
    m[:3, 3] = [v.x, v.y, v.z]
    return m


def chain(static: Any, dynamic: Any, child: str) -> np.ndarray:
    parent_of = {t.child_frame_id: t for t in static.transforms}
    parent_of.update({t.child_frame_id: t for t in dynamic.transforms})
    m = np.eye(4)
    while child != "world":
        t = parent_of[child]
        m = matrix(t) @ m
        child = t.header.frame_id
    return m


with lock:
    tf, static, desc = list(got["tf"]), list(got["static"]), list(got["desc"])
result: dict[str, Any] = {
    "types": {k: types.get(k) for k in ("/tf", "/tf_static", "/robot_description", "/joint_states")},
    "static_pub_transient_local": static_pub_qos,
    "static_count": len(static),
    "static_pairs": sorted([t.header.frame_id, t.child_frame_id] for t in static[0].transforms) if static else [],
    "desc_is_urdf": bool(desc) and desc[0].data.lstrip().startswith("<?xml") and "<robot" in desc[0].data,
    "tf_count": len(tf),
    # In integer nanoseconds: a2w keeps stamps as float seconds (~0.2 us steps at today's epoch).
    "tf_stamp_errors_ns": [abs((t.transforms[0].header.stamp.sec - stamp_of(s).sec) * 1_000_000_000
                               + t.transforms[0].header.stamp.nanosec - stamp_of(s).nanosec)
                           for t, s in zip(tf, sent)],
    "sent": len(sent),
    "diagnostics": rs.diagnostics(),
    "callback_errors": host.nodes[0].callback_errors,
}
if tf and static and desc:
    tree = parse_urdf(desc[0].data)
    positions = dict(zip(NAMES, q_good))
    errs = [float(np.abs(chain(static[0], tf[-1], f"{arm}_tcp") - tree.pose(f"{arm}_tcp", positions)).max())
            for arm in ("left", "right")]
    result["tcp_error"] = max(errs)

executor.shutdown()
spin_probe.join(10)  # a daemon thread left inside rclpy aborts the exit (ros2/rclpy#1484)
probe.destroy_node()
host.stop()
spinner.join(15)
rclpy.try_shutdown()
print("RESULT " + json.dumps(result))
