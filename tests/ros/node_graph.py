"""Which topics and services every registered node (``a2w.nodes.NODES``) uses, recorded as it builds.

``RECIPES`` says how to build each node with sim drivers in one process (the sim world is
in-process, so the sim node comes first). ``spy_on`` patches a ``NodeHandle`` class (the in-process
host's ``_Node`` or the rclpy host's ``RosNode``) so that every publisher, subscription, service and
client a component creates is recorded with its type and QoS, the expected ROS graph then comes from
``a2w.ros.codec`` (``expected_graph``). Used by tests/ros/test_mappings.py (no rclpy) and by
tests/ros/scripts/every_node.py (the ROS tier).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from a2w.host.component import Publisher
from a2w.host.qos import QoS
from a2w.nodes import NODES
from a2w.ros import codec

WORLD_NAME = "node_graph"
SIM_INSTRUCTION = "pick up the cube"  # the sim world the sim drivers share (one per process)
IMAGE_SIZE = {"width": 64, "height": 48}
# The sim rig's calibration folder: the nodes that take extrinsics read them from it (issue 20).
SIM_CALIBRATION = str(Path(__file__).resolve().parents[2] / "calibration" / "sim")

# exec name -> parameters that build it with sim drivers, in build order (the sim node registers
# the world the camera and arm drivers look up). A node added to NODES needs a line here: the
# mapping tests fail, naming it, until it has one.
RECIPES: dict[str, dict[str, Any]] = {
    "sim_node": {"use_sim_time": True, "world_name": WORLD_NAME, "task": "pick_cube",
                 "max_width": IMAGE_SIZE["width"], "max_height": IMAGE_SIZE["height"]},
    "camera_node": {"use_sim_time": True, "driver": "sim", "sim.world_name": WORLD_NAME,
                    "enable_depth": True, **IMAGE_SIZE},
    "arm_node": {"use_sim_time": True, "backend": "sim", "sim.world_name": WORLD_NAME, "calibration": SIM_CALIBRATION},
    "expert_node": {"use_sim_time": True, "exit_when_done": False, "timeout": 600.0},
    "robot_state_node": {"use_sim_time": True, "calibration": SIM_CALIBRATION},
    # a fresh directory per process: the recorder creates (and locks) its dataset there
    "record_node": {"use_sim_time": True, "root": tempfile.mkdtemp(prefix="a2w-node-graph-dataset-"), **IMAGE_SIZE},
    "task_judge_node": {"use_sim_time": True, "exit_when_done": False, "timeout": 600.0},
    # a tiny random checkpoint (written on first use, see policy_checkpoint); not started: no motion
    "policy_node": {"use_sim_time": True, "checkpoint": "", "steps": 1, "threads": 1, "autostart": False},
    # serves its page on a free loopback port; no page connects, so it never takes the arms
    "teleop_node": {"use_sim_time": True, "port": 0, "qr": False},
    # no viewer (no ports), the session .rrd in a fresh directory
    "monitor_node": {"use_sim_time": True, "serve": False,
                     "rrd": tempfile.mkdtemp(prefix="a2w-node-graph-monitor-") + "/session.rrd"},
    # a tiny random A2World-sim (written on first use, see worldmodel_checkpoint); ahead on: every endpoint
    "shadow_node": {"use_sim_time": True, "checkpoint": "", "steps": 1, "threads": 1, "ahead": True},
}


def policy_checkpoint() -> str:
    """A tiny random policy checkpoint for this process (written once)."""
    global _POLICY_DIR
    if _POLICY_DIR is None:
        from a2world.policy.bundle import write_random_bundle

        _POLICY_DIR = str(write_random_bundle(tempfile.mkdtemp(prefix="a2w-node-graph-policy-"), [SIM_INSTRUCTION],
                                              image_size=(32, 32)))
    return _POLICY_DIR


_POLICY_DIR: str | None = None
_WORLDMODEL_DIR: str | None = None


def worldmodel_checkpoint() -> str:
    """A tiny random A2World-sim checkpoint for this process (written once)."""
    global _WORLDMODEL_DIR
    if _WORLDMODEL_DIR is None:
        from tests.shadow.support import tiny_worldmodel

        _WORLDMODEL_DIR = str(tiny_worldmodel(Path(tempfile.mkdtemp(prefix="a2w-node-graph-worldmodel-"))))
    return _WORLDMODEL_DIR


def recipe(name: str) -> dict[str, Any]:
    """The parameters that build ``name`` (its RECIPES entry, completed with files made on demand)."""
    params = dict(RECIPES[name])
    if name == "policy_node":
        params["checkpoint"] = policy_checkpoint()
    elif name == "shadow_node":
        params["checkpoint"] = worldmodel_checkpoint()
    return params


def missing_recipes() -> list[str]:
    """Registered nodes this module cannot build (sorted)."""
    return sorted(set(NODES) - set(RECIPES))


@dataclass(frozen=True)
class Endpoint:
    node: str  # fully qualified node name
    kind: str  # "publisher" | "subscription" | "service" | "client"
    name: str  # resolved topic or service name
    domain: type  # message type, or request type of a service
    qos: QoS | None = None  # topics only


@dataclass
class Recording:
    endpoints: list[Endpoint] = field(default_factory=list)
    # (resolved topic, message) of every publish on a topic ``keep`` accepts
    published: list[tuple[str, Any]] = field(default_factory=list)
    keep: Callable[[str], bool] = lambda topic: False


class _RecordingPublisher(Publisher):
    def __init__(self, inner: Publisher, resolved: str, rec: Recording) -> None:
        self._inner, self._resolved, self._rec = inner, resolved, rec
        self.topic, self.msg_type = inner.topic, inner.msg_type

    def publish(self, msg: Any) -> None:
        if self._rec.keep(self._resolved):
            self._rec.published.append((self._resolved, msg))
        self._inner.publish(msg)


def spy_on(handle_cls: type, rec: Recording) -> Callable[[], None]:
    """Record what nodes of ``handle_cls`` create into ``rec``; returns the undo."""
    originals = {n: handle_cls.__dict__[n] for n in ("create_publisher", "create_subscription",
                                                      "create_service", "create_client")}

    def create_publisher(self: Any, topic: str, msg_type: type, qos: QoS) -> Publisher:
        resolved = self.resolve_topic(topic)
        rec.endpoints.append(Endpoint(self.fqn, "publisher", resolved, msg_type, qos))
        return _RecordingPublisher(originals["create_publisher"](self, topic, msg_type, qos), resolved, rec)

    def create_subscription(self: Any, topic: str, msg_type: type, callback: Callable, qos: QoS) -> None:
        rec.endpoints.append(Endpoint(self.fqn, "subscription", self.resolve_topic(topic), msg_type, qos))
        return originals["create_subscription"](self, topic, msg_type, callback, qos)

    def create_service(self: Any, name: str, request_type: type, handler: Callable) -> None:
        rec.endpoints.append(Endpoint(self.fqn, "service", self.resolve_topic(name), request_type))
        return originals["create_service"](self, name, request_type, handler)

    def create_client(self: Any, name: str, request_type: type) -> Any:
        rec.endpoints.append(Endpoint(self.fqn, "client", self.resolve_topic(name), request_type))
        return originals["create_client"](self, name, request_type)

    for n, fn in (("create_publisher", create_publisher), ("create_subscription", create_subscription),
                  ("create_service", create_service), ("create_client", create_client)):
        setattr(handle_cls, n, fn)

    def undo() -> None:
        for n, fn in originals.items():
            setattr(handle_cls, n, fn)

    return undo


def unmapped(rec: Recording) -> list[str]:
    """One line per endpoint whose type has no ROS mapping (``codec.topic_codec``/``service_codec``)."""
    out = []
    for e in rec.endpoints:
        try:
            if e.kind in ("service", "client"):
                codec.service_codec(e.domain)
            else:
                codec.topic_codec(e.domain)
        except TypeError as exc:
            out.append(f"{e.node} {e.kind} {e.name} ({e.domain.__qualname__}): {exc}")
    return out


@dataclass(frozen=True)
class RosEndpoint:
    node: str
    kind: str  # "publisher" | "subscription" | "service" | "client"
    name: str
    ros_type: str  # pkg/msg/Name or pkg/srv/Name
    reliability: str = ""  # publishers and subscriptions: "reliable" | "best_effort"


def expected_graph(rec: Recording) -> list[RosEndpoint]:
    """The ROS endpoints the recorded ones become on the rclpy host: a topic's own and its
    companions' (``codec.ros_topics``), a service's ``.srv``."""
    out = []
    for e in rec.endpoints:
        if e.kind in ("service", "client"):
            out.append(RosEndpoint(e.node, e.kind, e.name, codec.service_codec(e.domain).ros_type))
            continue
        rel = e.qos.reliability.value if e.qos is not None else ""
        for topic, ros_type in codec.ros_topics(e.name, e.domain):
            out.append(RosEndpoint(e.node, e.kind, topic, ros_type, rel))
    return out
