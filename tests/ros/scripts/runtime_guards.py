"""Issue 12 runtime guards under real rclpy: non-finite parameters refused, a crashed worker ends
the run with exit code 70, a /clock jump is reported, and the publishers of a topic in another
process are named by ``NodeHandle.topic_publishers`` (what the camera node checks)."""

import json
import subprocess
import sys
import threading
import time

import rclpy
from rclpy.node import Node

from a2w.ros.host import RosHost
from a2w.ros.rclpy_kit import message_class
from tests.probe_components import Tunable


def node_run(target: str, name: str, *ros_args: str, duration: str = "30") -> list:
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "a2w.ros.main", f"tests.probe_components:{target}", "--name", name,
                        "--duration", duration, "--ros-args", *ros_args],
                       capture_output=True, text=True, timeout=90)
    return [p.returncode, (p.stdout + p.stderr)[-2000:], time.monotonic() - t0]


result: dict = {"params": {}}
for label, arg in {"gain=.nan": "gain:=.nan", "gain=.inf": "gain:=.inf", "gain=-.inf": "gain:=-.inf",
                   "limit=.nan": "limit:=.nan", "limit=.inf": "limit:=.inf",
                   "weights=[1.0,.nan]": "weights:=[1.0, .nan]", "weights=[-.inf]": "weights:=[-.inf]",
                   "driver.rate=.nan": "driver.rate:=.nan", "driver.rate=0.1": "driver.rate:=0.1"}.items():
    result["params"][label] = node_run("Tunable", "tunable", "-p", arg, duration="5")[:2]
result["crash"] = node_run("Crashy", "crashy")

# A talker in another process publishes a camera image topic: the graph query the camera node
# uses to flag a second publisher of its topic names it. (The camera node itself cannot run under
# rclpy yet: FrameMetadata has no ROS message mapping.)
talker = subprocess.Popen([sys.executable, "-m", "a2w.ros.main", "tests.probe_components:Talker", "--name", "talker",
                           "--ros-args", "-p", "views:=[front]"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
rclpy.init()
host = RosHost(diagnostics_period=0.25)
watcher_component = host.add(Tunable, "watcher", namespace="/rig",
                             params={"driver.rate": 2.0, "driver.serials": ["x"]})
# A group's fields are ROS parameters with dotted names, read back into the group.
result["group"] = [watcher_component.params.driver.rate, watcher_component.params.driver.serials,
                   sorted(watcher_component.node.node.get_parameters_by_prefix("driver"))]
host.add(Tunable, "sim_timed", params={"use_sim_time": True})
spinner = threading.Thread(target=host.spin, kwargs={"install_signal_handlers": False}, daemon=True)
spinner.start()
watcher = next(n for n in host.nodes if n.name == "watcher")
topic = watcher.resolve_topic("cameras/front/color/image_raw")
deadline = time.monotonic() + 30
# Discovery reports the endpoint first and the node's name a moment later.
while time.monotonic() < deadline and "/talker" not in watcher.topic_publishers("/cameras/front/color/image_raw"):
    time.sleep(0.05)
result["publishers"] = watcher.topic_publishers("/cameras/front/color/image_raw")
result["resolved"] = topic
talker.send_signal(2)
talker.communicate(timeout=15)

# /clock: two good ticks, one 1000 s ahead, one back where it was.
clock_node = Node("clock_pub")
Clock = message_class("rosgraph_msgs/msg/Clock")
pub = clock_node.create_publisher(Clock, "/clock", 10)
sim_node = next(n for n in host.nodes if n.name == "sim_timed")
deadline = time.monotonic() + 10
while time.monotonic() < deadline and pub.get_subscription_count() == 0:
    time.sleep(0.05)
for t in (1.0, 1.1, 1001.1, 1.2):
    msg = Clock()
    msg.clock.sec, msg.clock.nanosec = int(t), int(round((t % 1) * 1e9))
    pub.publish(msg)
    time.sleep(0.3)
result["clock_jumps"] = sim_node.clock_jumps
result["last_clock_jump"] = sim_node.last_clock_jump
host.stop()
spinner.join(15)
clock_node.destroy_node()
rclpy.try_shutdown()
print("RESULT " + json.dumps(result))
