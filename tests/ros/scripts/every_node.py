"""Every registered node under the rclpy host, in one process with sim drivers (they share the
in-process sim world): each node's topics and services appear in the ROS graph with the types
``a2w.ros.codec`` gives them; one camera_info per image with the image's stamp and frame id; images
and camera_info reliable by default and best-effort on request; then a clean shutdown.

The expected endpoints are recorded as the components create them (tests/ros/node_graph.py), so
they are not written down a second time here.
"""

import json
import logging
import sys
import threading
import time
from collections import Counter

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy

from a2w.cameras.component import CameraComponent
from a2w.nodes import NODES, load
from a2w.ros.host import RosHost, RosNode
from a2w.ros.rclpy_kit import message_class
from tests.ros.node_graph import RECIPES, Recording, expected_graph, missing_recipes, recipe, spy_on

log = logging.getLogger("every_node")
logging.basicConfig(level=logging.INFO)

if missing_recipes():
    log.error("no recipe for %s in tests/ros/node_graph.py RECIPES", missing_recipes())
    sys.exit(2)

IMAGE = "/cameras/front/color/image_raw"
INFO = "/cameras/front/color/camera_info"
BE_PREFIX = "/cameras_best_effort"
WANT_IMAGES = 20

rclpy.init()
rec = Recording()
spy_on(RosNode, rec)
host = RosHost(diagnostics_period=0.5)
for exec_name in RECIPES:
    host.add(load(exec_name), exec_name, params=recipe(exec_name))
host.add(CameraComponent, "camera_best_effort", params={
    **RECIPES["camera_node"], "views": ["front"], "topic_prefix": BE_PREFIX, "image_qos": "best_effort"})
spinner = threading.Thread(target=host.spin, kwargs={"install_signal_handlers": False}, daemon=True)
spinner.start()

# A probe subscribing as RViz's Image display does (reliable), counting images and camera_infos.
probe = Node("graph_probe")
reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
images: list = []
infos: list = []
probe.create_subscription(message_class("sensor_msgs/msg/Image"), IMAGE,
                          lambda m: images.append((m.header.stamp.sec, m.header.stamp.nanosec, m.header.frame_id)),
                          reliable)
probe.create_subscription(message_class("sensor_msgs/msg/CameraInfo"), INFO,
                          lambda m: infos.append((m.header.stamp.sec, m.header.stamp.nanosec, m.header.frame_id)),
                          reliable)
probe_exec = SingleThreadedExecutor()
probe_exec.add_node(probe)
probe_thread = threading.Thread(target=probe_exec.spin, daemon=True)
probe_thread.start()

expected = expected_graph(rec)


def by_node(kind: str, node: str) -> dict[str, list[str]]:
    name, ns = node.rsplit("/", 1)[1], node.rsplit("/", 1)[0] or "/"
    fn = {"publisher": probe.get_publisher_names_and_types_by_node,
          "subscription": probe.get_subscriber_names_and_types_by_node,
          "service": probe.get_service_names_and_types_by_node,
          "client": probe.get_client_names_and_types_by_node}[kind]
    try:
        return {n: list(t) for n, t in fn(name, ns)}
    except Exception:  # noqa: BLE001 - node not discovered yet
        return {}


def missing() -> list[str]:
    out = []
    for e in expected:
        seen = by_node(e.kind, e.node)
        if seen.get(e.name) != [e.ros_type]:
            out.append(f"{e.node} {e.kind} {e.name} {e.ros_type}: graph has {seen.get(e.name)}")
    return out


deadline = time.monotonic() + 60
while time.monotonic() < deadline and (missing() or len(images) < WANT_IMAGES):
    time.sleep(0.25)
graph_missing = missing()
topics = {n: list(t) for n, t in probe.get_topic_names_and_types()}
services = {n: list(t) for n, t in probe.get_service_names_and_types()}


def reliabilities(topic: str) -> list[str]:
    return sorted({i.qos_profile.reliability.name.lower() for i in probe.get_publishers_info_by_topic(topic)})


qos = {t: reliabilities(t) for t in (IMAGE, INFO, f"{BE_PREFIX}/front/color/image_raw",
                                       f"{BE_PREFIX}/front/color/camera_info")}

host.stop()
spinner.join(30)
time.sleep(0.5)  # the last reliable samples in flight reach the probe
probe_exec.shutdown(timeout_sec=5)
# A daemon thread still inside rclpy when Python exits aborts the process ("terminate called
# without an active exception", ros2/rclpy#1484): join it before tearing down.
probe_thread.join(10)
probe.destroy_node()
rclpy.try_shutdown()

# One camera_info per image: over the stamps both subscriptions saw (discovery may match one a
# moment before the other), the stamp lists agree one to one, and every info names the image's frame.
img_stamps = Counter((s, ns) for s, ns, _ in images)
info_stamps = Counter((s, ns) for s, ns, _ in infos)
lo = max(min(img_stamps, default=(0, 0)), min(info_stamps, default=(0, 0)))
hi = min(max(img_stamps, default=(0, 0)), max(info_stamps, default=(0, 0)))
window_images = {k: n for k, n in img_stamps.items() if lo <= k <= hi}
window_infos = {k: n for k, n in info_stamps.items() if lo <= k <= hi}
result = {
    "expected": len(expected),
    "graph_missing": graph_missing,
    "expected_types": sorted({f"{e.name} {e.ros_type}" for e in expected if e.kind == "publisher"}),
    "topic_types": {t: v for t, v in topics.items()},
    "service_types": {t: v for t, v in services.items()},
    "images": len(images),
    "infos": len(infos),
    "paired_stamps": len(window_images),
    "one_info_per_image": window_images == window_infos and set(window_images.values()) == {1},
    "image_frame_ids": sorted({f for _, _, f in images}),
    "info_frame_ids": sorted({f for _, _, f in infos}),
    "qos": qos,
    "spinner_done": not spinner.is_alive(),
    "exit_code": host.exit_code,
    "stop_reason": host.stop_reason,
    "callback_errors": {rn.fqn: rn.callback_errors for rn in host.nodes if rn.callback_errors},
    "worker_errors": {rn.fqn: rn.worker_errors for rn in host.nodes if rn.worker_errors},
    "last_errors": {rn.fqn: rn.last_callback_error for rn in host.nodes if rn.callback_errors},
    "nodes": sorted(rn.fqn for rn in host.nodes),
    "registered": sorted(NODES),
}
print("RESULT " + json.dumps(result))
