"""The robot-state node on the in-process host: /robot_description and /tf_static latched for late
subscribers, /tf from /joint_states with its stamp, bad messages counted and never published or
fatal (non-finite, repeated or mismatched joints cannot be a JointStates: the message refuses
them, tests/ros/test_description.py sends them over ROS); and in the sim stack (sim node, arm
node, this node) the TF chain world -> <arm>_tcp at a /joint_states stamp equals the TCP the arm
node reports on /arms/state for the same read."""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np
import pytest

from a2w import frames
from a2w.arms.component import STATE_TOPIC, ArmNode
from a2w.description.component import (
    DESCRIPTION_TOPIC,
    REJECT_REASONS,
    TF_STATIC_TOPIC,
    TF_TOPIC,
    RobotStateNode,
)
from a2w.description.tree import parse_urdf
from a2w.description.urdf import VIEWS, flange_frame, joint_name
from a2w.geometry import pose_to_matrix
from a2w.host import Component, Host, NodeHandle, Params, QoS
from a2w.msgs.arms import JointStates, RigState
from a2w.msgs.tf import FrameTransforms, RobotDescription
from a2w.nodes import load
from a2w.sim.component import SimNode
from a2w.sim.scene import ARMS
from tests.support import wait_until

NAMES = tuple(joint_name(arm, i) for arm in ARMS for i in range(1, 8))


class _Probe(Component):
    """Publishes /joint_states; records /tf, and (subscribing when built) the latched topics."""

    def __init__(self, node: NodeHandle, params: Params) -> None:
        super().__init__(node, params)
        self.lock = threading.Lock()
        self.tf: list[FrameTransforms] = []
        self.static: list[FrameTransforms] = []
        self.desc: list[RobotDescription] = []
        self.pub = node.create_publisher("/joint_states", JointStates, QoS.sensor())
        node.create_subscription(TF_TOPIC, FrameTransforms, self._keep(self.tf), QoS.reliable(100))
        node.create_subscription(TF_STATIC_TOPIC, FrameTransforms, self._keep(self.static), QoS.latched_state())
        node.create_subscription(DESCRIPTION_TOPIC, RobotDescription, self._keep(self.desc), QoS.latched_state())

    def _keep(self, into: list[Any]) -> Any:
        def cb(msg: Any) -> None:
            with self.lock:
                into.append(msg)
        return cb


def _chain(static: FrameTransforms, dynamic: FrameTransforms | None, child: str) -> np.ndarray:
    """Pose of ``child`` in the world composed from the transforms, as a tf2 lookup would."""
    parent_of = {t.child: t for t in static.transforms}
    if dynamic is not None:
        parent_of.update({t.child: t for t in dynamic.transforms})
    m = np.eye(4)
    while child != frames.WORLD:
        t = parent_of[child]
        m = pose_to_matrix(t.pose) @ m
        child = t.parent
    return m


@pytest.fixture
def host() -> Any:
    h = Host(diagnostics_period=0)
    yield h
    h.shutdown()


def _start(host: Host, **params: Any) -> tuple[RobotStateNode, _Probe]:
    node = host.add_component(RobotStateNode, "robot_state_node", **params)
    host.start()
    probe = host.add_component(_Probe, "probe")  # after the publisher: a late subscriber
    return node, probe  # type: ignore[return-value]


def test_registered_as_robot_state_node() -> None:
    assert load("robot_state_node") is RobotStateNode


def test_late_subscriber_gets_the_description_and_every_fixed_joint(host: Host) -> None:
    node, probe = _start(host)
    assert wait_until(lambda: probe.static and probe.desc, 5.0)
    tree = parse_urdf(probe.desc[0].urdf)
    static = probe.static[0]
    assert {(t.parent, t.child) for t in static.transforms} == {(j.parent, j.child) for j in tree.fixed_joints}
    assert {(frames.WORLD, frames.base_frame(a)) for a in ARMS} <= {(t.parent, t.child) for t in static.transforms}
    for view in VIEWS:  # every camera's optical frame resolves to the world from static transforms alone
        assert frames.optical_frame(view) in {t.child for t in static.transforms}
    np.testing.assert_allclose(_chain(static, None, frames.optical_frame("front")),
                               tree.pose(frames.optical_frame("front"), {}), atol=1e-12)
    assert len(probe.static) == 1 and len(probe.desc) == 1  # once, not per /joint_states


def test_tf_from_joint_states_with_its_stamp_agrees_with_the_urdf(host: Host) -> None:
    node, probe = _start(host, max_rate=0.0)
    rng = np.random.default_rng(4)
    q = rng.uniform(-1.5, 1.5, len(NAMES))
    stamp = host.wall_clock.now()
    probe.pub.publish(JointStates(NAMES, q, np.zeros(len(NAMES)), stamp))
    assert wait_until(lambda: probe.tf and probe.static, 5.0)
    tf = probe.tf[0]
    assert {t.stamp for t in tf.transforms} == {stamp}
    assert {t.child for t in tf.transforms} == {f"{a}_link{i}" for a in ARMS for i in range(1, 8)}
    tree = parse_urdf(node.urdf)
    positions = dict(zip(NAMES, q))
    for arm in ARMS:
        for link in (flange_frame(arm), frames.tcp_frame(arm), frames.optical_frame(f"{arm}_wrist")):
            np.testing.assert_allclose(_chain(probe.static[0], tf, link), tree.pose(link, positions), atol=1e-9)
    # A message naming one arm moves that arm's links only.
    probe.pub.publish(JointStates(NAMES[:7], q[:7], np.zeros(7), stamp + 0.01))
    assert wait_until(lambda: len(probe.tf) == 2, 5.0)
    assert {t.child for t in probe.tf[1].transforms} == {f"left_link{i}" for i in range(1, 8)}


def _bad(kind: str, now: float, last: float) -> JointStates:
    q, v = np.zeros(len(NAMES)), np.zeros(len(NAMES))
    if kind == "finger":  # a joint the URDF does not move
        return JointStates(NAMES[:-1] + ("right_finger_joint",), q, v, now)
    if kind == "misspelt":
        return JointStates(("left_joint1", "left_joint 2"), q[:2], v[:2], now)
    if kind == "other_robot":
        return JointStates(tuple(f"joint{i}" for i in range(1, 8)), q[:7], v[:7], now)
    if kind == "empty":
        return JointStates((), np.zeros(0), np.zeros(0), now)
    if kind == "stale":
        return JointStates(NAMES, q, v, now - 5.0)
    if kind == "repeated":
        return JointStates(NAMES, q, v, last)
    raise AssertionError(kind)


REASON = {"finger": "unknown_joint", "misspelt": "unknown_joint", "other_robot": "unknown_joint",
          "empty": "empty", "stale": "stale", "repeated": "repeated"}


@pytest.mark.parametrize("kind", sorted(REASON))
def test_bad_joint_states_publish_nothing_are_counted_and_the_next_good_one_publishes(host: Host, kind: str) -> None:
    node, probe = _start(host, max_rate=0.0)
    first = host.wall_clock.now()
    probe.pub.publish(JointStates(NAMES, np.zeros(len(NAMES)), np.zeros(len(NAMES)), first))
    assert wait_until(lambda: len(probe.tf) == 1, 5.0)
    probe.pub.publish(_bad(kind, host.wall_clock.now(), first))
    assert wait_until(lambda: node.diagnostics()["rejected"] == 1, 5.0)
    good = host.wall_clock.now() + 0.01
    probe.pub.publish(JointStates(NAMES, np.ones(len(NAMES)), np.zeros(len(NAMES)), good))
    assert wait_until(lambda: len(probe.tf) == 2, 5.0)
    assert probe.tf[1].transforms[0].stamp == good
    d = node.diagnostics()
    assert d[f"rejected_{REASON[kind]}"] == 1 and d["tf_published"] == 2
    assert sum(d[f"rejected_{r}"] for r in REJECT_REASONS) == 1 and REASON[kind] in d["last_reject"]
    assert all(n.callback_errors == 0 for n in host.nodes)


def test_without_publish_tf_only_the_static_part(host: Host) -> None:
    node, probe = _start(host, publish_tf=False, views=["front"], camera_optical_frames=False)
    assert wait_until(lambda: probe.static and probe.desc, 5.0)
    children = {t.child for t in probe.static[0].transforms}
    assert frames.camera_link("front") in children and frames.optical_frame("front") not in children
    assert frames.camera_link("left_wrist") not in children
    # Not subscribed to /joint_states at all, so nothing can reach /tf from it.
    info = {n["name"]: n for n in host.introspect()["nodes"]}
    assert info["/robot_state_node"]["subscriptions"] == []


@pytest.mark.parametrize("params", [{"max_rate": 20.0}, {}], ids=["20Hz", "default_30Hz"])
def test_max_rate_skips_messages_closer_than_its_period_by_stamp(host: Host, params: dict[str, Any]) -> None:
    node, probe = _start(host, **params)
    every = 5 if params else 4  # 100 Hz stamps: every 5th at 20 Hz, every 4th (40 ms) at 30 Hz
    t0 = host.wall_clock.now()
    stamps = [t0 + 0.01 * i for i in range(21)]  # 100 Hz for 0.2 s
    for s in stamps:
        probe.pub.publish(JointStates(NAMES, np.zeros(len(NAMES)), np.zeros(len(NAMES)), s))
        assert wait_until(lambda: node.published + node.throttled == stamps.index(s) + 1, 5.0)
    assert [m.transforms[0].stamp for m in probe.tf] == stamps[::every]


@pytest.mark.parametrize("params, why", [
    ({"arms": ["middle"]}, "arms"),
    ({"views": ["top"]}, "view"),
    ({"arms": ["left"], "views": ["right_wrist"]}, "right arm"),
    ({"left_base_pose": [0.0, 0.0, 0.1]}, "left_base_pose"),
    ({"right_base_pose": [0.0] * 7}, "right_base_pose"),
    ({"left_base_pose": [0.0, 0.0, math.nan, 0.0, 0.0, 0.0]}, "left_base_pose"),
    ({"front_camera_pose": [0.0, 1.0]}, "front_camera_pose"),
    ({"tcp_offset": -0.01}, "tcp_offset"),
])
def test_bad_parameters_refuse_to_build_naming_them(host: Host, params: dict[str, Any], why: str) -> None:
    with pytest.raises(ValueError, match=why):
        host.add_component(RobotStateNode, "robot_state_node", **params)


def test_in_the_sim_stack_tf_agrees_with_the_arm_nodes_tcp() -> None:
    host = Host(diagnostics_period=0)
    states: dict[float, RigState] = {}
    tfs: list[FrameTransforms] = []
    statics: list[FrameTransforms] = []
    lock = threading.Lock()

    def on_state(m: RigState) -> None:
        with lock:
            states[m.stamp] = m

    def on_tf(m: FrameTransforms) -> None:
        with lock:
            tfs.append(m)

    host.bus.topic(STATE_TOPIC, RigState, "test").taps.append(on_state)
    host.bus.topic(TF_TOPIC, FrameTransforms, "test").taps.append(on_tf)
    host.bus.topic(TF_STATIC_TOPIC, FrameTransforms, "test").taps.append(statics.append)
    sim = {"use_sim_time": True}
    host.add_component(SimNode, "sim_node", task="none", realtime_factor=1.0, world_name="t_tf",
                       max_width=64, max_height=48, **sim)
    host.add_component(ArmNode, "arm_node", backend="sim", **{"sim.world_name": "t_tf"}, **sim)
    rs = host.add_component(RobotStateNode, "robot_state_node", **sim)
    host.start()
    try:
        def matched() -> list[tuple[RigState, FrameTransforms]]:
            with lock:
                return [(states[t.transforms[0].stamp], t) for t in tfs if t.transforms[0].stamp in states]
        assert wait_until(lambda: len(matched()) >= 5, 60.0), rs.diagnostics()
        worst = 0.0
        for state, tf in matched():
            for i, arm in enumerate(ARMS):
                st = state.arm(i)
                base = _chain(statics[0], tf, frames.base_frame(arm))
                reported = base @ pose_to_matrix(st.tcp_pose)
                got = _chain(statics[0], tf, frames.tcp_frame(arm))
                worst = max(worst, float(np.abs(got[:3, 3] - reported[:3, 3]).max()))
                np.testing.assert_allclose(got[:3, :3], reported[:3, :3], atol=1e-6)
        assert worst < 1e-6, worst
        assert rs.diagnostics()["rejected"] == 0
    finally:
        host.shutdown()
