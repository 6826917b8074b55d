"""Type hashes rclpy reports for every a2w_interfaces type built by colcon (message and service parts)."""

import json
import time

import rclpy
from rclpy.node import Node

from a2w.ros.interfaces import interface_names
from a2w.ros.rclpy_kit import message_class

rclpy.init()
node = Node("hashes")
topics = {}
for name in interface_names():
    parts = [name] if "/msg/" in name else [name + s for s in ("_Request", "_Response", "_Event")]
    for part in parts:
        topic = "/h_" + part.rsplit("/", 1)[1]
        node.create_publisher(message_class(part), topic, 1)
        topics[part] = topic
time.sleep(0.3)
out = {part: str(node.get_publishers_info_by_topic(t)[0].topic_type_hash) for part, t in topics.items()}
rclpy.shutdown()
print("RESULT " + json.dumps(out))
