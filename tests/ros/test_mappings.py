"""Every registered node, built in-process with sim drivers (no rclpy): every type it publishes,
subscribes, serves or calls has a ROS mapping; the ROS graph that makes is consistent (one type per
topic, no topic fed twice by one node: one camera_info per image); images are reliable unless the
camera node is told otherwise. tests/ros/scripts/every_node.py checks the same graph under rclpy."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, Iterator

import pytest

import a2w.host.host as inproc
from a2w.cameras.component import CameraComponent
from a2w.host import Host
from a2w.host.host import NodeSpec
from a2w.msgs.cameras import VIEW_NAMES, CameraFrame
from a2w.nodes import NODES, load
from a2w.ros import codec
from a2w.ros.codec import RosbagsKit
from a2w.ros.interfaces import jazzy_typestore
from tests.ros.node_graph import (
    RECIPES,
    Endpoint,
    Recording,
    expected_graph,
    missing_recipes,
    recipe,
    spy_on,
    unmapped,
)
from tests.support import wait_until

BEST_EFFORT_PREFIX = "/cameras_best_effort"  # a second camera node with image_qos: best_effort
FRAMES_PER_VIEW = 3


@pytest.fixture(scope="module")
def graph() -> Iterator[Recording]:
    """Every registered node with a recipe, built and run until each view has sent a few frames."""
    rec = Recording(keep=lambda topic: topic.endswith("/color/image_raw"))
    undo = spy_on(inproc._Node, rec)  # noqa: SLF001 - the in-process host's NodeHandle
    host = Host(diagnostics_period=0)
    try:
        for exec_name in RECIPES:
            if exec_name in NODES:
                host.add(NodeSpec(load(exec_name), exec_name, params=recipe(exec_name)))
        host.add(NodeSpec(CameraComponent, "camera_best_effort", params={
            **RECIPES["camera_node"], "views": ["front"], "topic_prefix": BEST_EFFORT_PREFIX,
            "image_qos": "best_effort"}))
        host.start()

        def frames_per_view() -> Counter:
            return Counter(m.view for t, m in list(rec.published) if t.startswith("/cameras/"))

        wait_until(lambda: all(frames_per_view()[v] >= FRAMES_PER_VIEW for v in VIEW_NAMES), 60.0, 0.05)
        yield rec
    finally:
        host.shutdown()
        undo()


def test_every_registered_node_has_a_recipe() -> None:
    assert not missing_recipes(), (
        f"node(s) {missing_recipes()} in a2w.nodes.NODES have no recipe in tests/ros/node_graph.py RECIPES: "
        "add the parameters that build each with sim drivers, so its topics and services are checked")
    assert set(RECIPES) <= set(NODES), f"recipes for unregistered nodes: {sorted(set(RECIPES) - set(NODES))}"


def test_every_node_was_built(graph: Recording) -> None:
    built = {e.node for e in graph.endpoints}
    assert {f"/{n}" for n in NODES} <= built, f"built no endpoints: {sorted({f'/{n}' for n in NODES} - built)}"


def test_every_type_a_node_uses_has_a_ros_mapping(graph: Recording) -> None:
    assert graph.endpoints
    problems = unmapped(graph)
    assert not problems, "types without a ROS mapping (the node dies on the rclpy host):\n" + "\n".join(problems)


def test_one_type_per_ros_topic_and_no_topic_fed_twice_by_a_node(graph: Recording) -> None:
    ros = expected_graph(graph)
    types: dict[str, set[str]] = defaultdict(set)
    for e in ros:
        if e.kind in ("publisher", "subscription"):
            types[e.name].add(e.ros_type)
    assert {t: v for t, v in types.items() if len(v) > 1} == {}
    fed = Counter((e.node, e.name) for e in ros if e.kind == "publisher")
    assert {k: n for k, n in fed.items() if n > 1} == {}, "a node publishes one ROS topic twice (e.g. two camera_info)"
    services = Counter(e.name for e in ros if e.kind == "service")
    assert {k: n for k, n in services.items() if n > 1} == {}


def test_one_camera_info_per_image_with_its_stamp_and_frame(graph: Recording) -> None:
    """What the rclpy host sends for each frame the camera node published: the image and exactly one
    camera_info, on the topic next to it, with the same header."""
    kit = RosbagsKit(jazzy_typestore())
    on_topic: dict[str, list[Any]] = defaultdict(list)
    images = [(t, m) for t, m in graph.published if isinstance(m, CameraFrame)]
    assert len(images) >= FRAMES_PER_VIEW * len(VIEW_NAMES)
    for topic, frame in images:
        c = codec.topic_codec(type(frame))
        on_topic[topic].append(c.encode(kit, frame))
        for comp in c.companions:
            msg = comp.encode(kit, frame)
            if msg is not None:
                on_topic[comp.topic(topic)].append(msg)
    for topic, frames_sent in on_topic.items():
        if not topic.endswith("/image_raw"):
            continue
        infos = on_topic[codec.camera_info_topic(topic)]
        assert len(infos) == len(frames_sent), topic
        assert [i.header for i in infos] == [f.header for f in frames_sent], topic
        assert all(f.header.frame_id.endswith("_color_optical_frame") for f in frames_sent)
    # and the nodes themselves publish nothing on a camera_info topic (the ROS host derives it)
    assert [e for e in graph.endpoints if e.kind == "publisher" and e.name.endswith("/camera_info")] == []


def _publisher(graph: Recording, topic: str) -> Endpoint:
    [e] = [e for e in graph.endpoints if e.kind == "publisher" and e.name == topic]
    return e


@pytest.mark.parametrize("prefix, reliability", [("/cameras", "reliable"), (BEST_EFFORT_PREFIX, "best_effort")])
def test_images_are_reliable_unless_asked_otherwise(graph: Recording, prefix: str, reliability: str) -> None:
    for stream in ("color/image_raw", "aligned_depth_to_color/image_raw"):
        qos = _publisher(graph, f"{prefix}/front/{stream}").qos
        assert qos is not None and qos.reliability.value == reliability and qos.depth == 1
    # camera_info goes out with the image's publisher profile on the rclpy host
    ros = [e for e in expected_graph(graph)
           if e.name == f"{prefix}/front/color/camera_info" and e.kind == "publisher"]
    assert [e.reliability for e in ros] == [reliability]


def test_image_qos_accepts_only_the_two_reliabilities() -> None:
    host = Host(diagnostics_period=0)
    try:
        with pytest.raises(ValueError, match="image_qos"):
            host.add(NodeSpec(CameraComponent, "c", params={**RECIPES["camera_node"], "image_qos": "sensor_data"}))
    finally:
        host.shutdown()
