"""The sim node in the in-process host: /clock drives the sim clock, other components attach to
its world, the expert runs on sim time, faults are published with their onsets."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from a2w.arms.component import SET_MODE_SERVICE, STATE_TOPIC, TARGET_TOPIC
from a2w.cameras.sim.source import SimCameraSource
from a2w.cameras.source import CameraConfig
from a2w.geometry import pose_to_matrix
from a2w.host import Component, Host, NodeHandle, Params, QoS
from a2w.host.host import NodeSpec
from a2w.msgs.arms import ArmState, ControlMode, RigState, RigTarget
from a2w.msgs.common import Pose
from a2w.msgs.services import SetControlModeRequest, SetControlModeResponse
from a2w.msgs.sim import FaultEvent, SimStatus, TaskFacts
from a2w.nodes import load
from a2w.sim.component import FAULT_TOPIC, STATUS_TOPIC, TASK_TOPIC, SimNode
from a2w.sim.expert import SETTLE_TIME, plan
from a2w.sim.world import get_world
from tests.support import wait_until


def test_registered_as_sim_node() -> None:
    assert load("sim_node") is SimNode


def test_clock_world_and_camera_share_sim_time() -> None:
    host = Host(diagnostics_period=0)
    host.add_component(SimNode, "sim", task="none", realtime_factor=0.0, max_width=64, max_height=48,
                       world_name="t_clock")
    host.start()
    try:
        world = get_world("t_clock")
        cam = SimCameraSource(CameraConfig("front", width=64, height=48), world_name="t_clock")
        cam.open()
        cam.start()
        frame = cam.wait_frame(10.0)
        # Frames are stamped with world time; /clock publishes it after each stepped chunk, so
        # the host's sim clock reaches every frame's stamp within one chunk (not before it).
        assert frame.stamp <= world.time + 1e-9
        assert wait_until(lambda: host.sim_clock.now() >= frame.stamp - 1e-9, 30.0)
        assert wait_until(lambda: host.sim_clock.now() > 0.3, 30.0)
        assert abs(frame.stamp * 30 - round(frame.stamp * 30)) < 1e-6  # on the 30 Hz grid
        cam.close()
    finally:
        host.shutdown()
    with pytest.raises(LookupError):
        get_world("t_clock")


def test_expert_run_reports_success_and_faults_on_topics() -> None:
    host = Host(diagnostics_period=0)
    statuses: list[SimStatus] = []
    faults: list[FaultEvent] = []
    lock = threading.Lock()

    def on_status(m: SimStatus) -> None:
        with lock:
            statuses.append(m)

    def on_fault(m: FaultEvent) -> None:
        with lock:
            faults.append(m)

    host.add_component(SimNode, "sim", task="pick_cube", seed=0, realtime_factor=0.0,
                       run_expert=True, faults=["camera_black"], fault_window=[0.5, 1.0],
                       world_name="t_expert", max_width=64, max_height=48)
    host.bus.topic(STATUS_TOPIC, SimStatus, "test").taps.append(on_status)
    host.bus.topic(FAULT_TOPIC, FaultEvent, "test").taps.append(on_fault)
    host.start()
    try:
        assert wait_until(lambda: any(s.success for s in list(statuses)), 60.0), statuses[-1:]
    finally:
        host.shutdown()
    with lock:
        assert len(faults) == 1 and 0.5 <= faults[0].onset <= 1.0 + 1e-9
        done = [s for s in statuses if s.success]
        assert done[0].faults == (f"camera_black@{faults[0].onset:.3f}:{faults[0].target}",)
        assert all(b.stamp > a.stamp for a, b in zip(statuses, statuses[1:]))


def test_bad_parameters_name_the_field() -> None:
    host = Host(diagnostics_period=0)
    with pytest.raises(ValueError, match="task"):
        host.add_component(SimNode, "sim", task="juggle")
    with pytest.raises(ValueError, match="left_base"):
        host.add_component(SimNode, "sim2", left_base=[0.0, 1.0])
    with pytest.raises(ValueError, match="faults"):
        host.add_component(SimNode, "sim3", faults=["meteor"], world_name="t_bad")
    host.shutdown()


# -- the sim behind interfaces: task facts on a latched topic (issue 13 item 3) ----------------
class _Latecomer(Component):
    """Subscribes to the task facts after they were published: latched, so it still gets them."""

    def __init__(self, node: NodeHandle, params: Params) -> None:
        super().__init__(node, params)
        self.facts: list[TaskFacts] = []
        node.create_subscription(TASK_TOPIC, TaskFacts, self.facts.append, QoS.latched_state())


@pytest.mark.parametrize("task, seed", [("pick_cube", 0), ("pick_cube", 3), ("pick_cube", 4),
                                        ("lift_box", 0), ("lift_box", 3)])
def test_task_facts_are_published_latched_once_the_objects_rest(task: str, seed: int) -> None:
    host = Host(diagnostics_period=0)
    published: list[TaskFacts] = []
    host.bus.topic(TASK_TOPIC, TaskFacts, "test").taps.append(published.append)
    sim = host.add_component(SimNode, "sim", task=task, seed=seed, realtime_factor=0.0, world_name="t_facts")
    host.start()
    try:
        assert wait_until(lambda: sim.world.time > SETTLE_TIME + 0.5, 30.0)
        late = host.add_component(_Latecomer, "late")
        assert wait_until(lambda: late.facts, 30.0)
        world = sim.world
        with world.lock:
            pos, rot = world.body_pose(sim.task.object_name)
            bases = [world.arms[a].base_T for a in ("left", "right")]
    finally:
        host.shutdown()
    assert len(published) == 1, "one message per episode"
    assert len(late.facts) == 1 and late.facts[0] is published[0], "replayed to a late subscriber"
    facts = published[0]
    assert (facts.task, facts.seed, facts.object_name) == (task, seed, sim.task.object_name)
    assert facts.arm == sim.info.get("arm", "")
    assert SETTLE_TIME <= facts.stamp < SETTLE_TIME + 0.05
    # The object is at rest from then on: the facts are the pose it keeps.
    obj = pose_to_matrix(facts.object_pose)
    assert np.allclose(obj[:3, 3], pos, atol=1e-4) and np.allclose(obj[:3, :3], rot, atol=1e-3)
    for pose, base_T in zip(facts.arm_bases, bases):
        assert np.allclose(pose_to_matrix(pose), base_T, atol=1e-12)


def test_no_task_no_facts() -> None:
    host = Host(diagnostics_period=0)
    published: list[TaskFacts] = []
    host.bus.topic(TASK_TOPIC, TaskFacts, "test").taps.append(published.append)
    sim = host.add_component(SimNode, "sim", task="none", realtime_factor=0.0, world_name="t_nofacts")
    host.start()
    try:
        assert wait_until(lambda: sim.world.time > SETTLE_TIME + 0.2, 30.0)
    finally:
        host.shutdown()
    assert published == []


class _StubArms(Component):
    """Stands in for the arm node's interfaces: /arms/state, /arms/set_mode, /arms/target."""

    TCP = Pose(np.array([0.35, 0.0, 0.30]), np.array([1.0, 0.0, 0.0, 0.0]))  # tool pointing down
    SERVICE_AFTER = 0.0  # clock seconds before /arms/set_mode is served (DDS finds services late)

    def __init__(self, node: NodeHandle, params: Params) -> None:
        super().__init__(node, params)
        self.requests: list[tuple[float, SetControlModeRequest]] = []
        self.targets: list[RigTarget] = []
        self._served = False
        self._pub = node.create_publisher(STATE_TOPIC, RigState, QoS.sensor())
        node.create_subscription(TARGET_TOPIC, RigTarget, self.targets.append, QoS.reliable(10))
        node.create_timer(1 / 30, self._publish)

    def _on_mode(self, req: SetControlModeRequest) -> SetControlModeResponse:
        self.requests.append((self.node.clock.now(), req))
        return SetControlModeResponse(True, req.mode)

    def _publish(self) -> None:
        now = self.node.clock.now()
        if not self._served and now >= self.SERVICE_AFTER:
            self.node.create_service(SET_MODE_SERVICE, SetControlModeRequest, self._on_mode)
            self._served = True
        arm = ArmState(self.TCP, np.zeros(7), np.zeros(7), np.zeros(6), 1.0, now)
        self._pub.publish(RigState(arm, arm, ControlMode.POLICY if self.requests else ControlMode.HOLD, now))


@pytest.mark.parametrize("task", ["pick_cube", "lift_box"])
def test_expert_node_plans_from_topics_and_the_arm_interfaces_only(task: str) -> None:
    """No world lookup: the sim node's world has a name the expert never hears of, and the expert
    drives the arms through the arm node's interfaces from the published facts."""
    host = Host(diagnostics_period=0)
    facts: list[TaskFacts] = []
    host.bus.topic(TASK_TOPIC, TaskFacts, "test").taps.append(facts.append)
    try:
        sim = host.add_component(SimNode, "sim", task=task, seed=2, realtime_factor=0.0,
                                 world_name="t_private", use_sim_time=True)
        arms = host.add_component(_StubArms, "arm_node", use_sim_time=True)
        expert = host.add(NodeSpec(load("expert_node"), "expert_node",
                                   params={"use_sim_time": True, "exit_when_done": False}))
        host.start()
        assert wait_until(lambda: len(arms.targets) >= 10, 30.0)
        plan_from_world = plan(sim.task, sim.task.facts(sim.world, sim.info, 2), _tcp0(sim))
    finally:
        host.shutdown()
    assert [(r.mode, r.requester) for _, r in arms.requests] == [(ControlMode.POLICY, "expert_node")]
    assert all(t.source is ControlMode.POLICY and t.requester == "expert_node" for t in arms.targets)
    # The plan from the facts is the plan the privileged world gives (the object is at rest).
    for ours, theirs in zip(expert.expert.segments, plan_from_world, strict=True):
        assert ours.duration == pytest.approx(theirs.duration, abs=1e-3) and ours.grips == theirs.grips
        for g, h in zip(ours.goals, theirs.goals):
            assert (g is None) == (h is None) and (g is None or np.allclose(g, h, atol=1e-3))
    # Targets go out in each arm's base frame: the first ones start from where the arm is.
    first = arms.targets[0]
    for a, target in enumerate((first.left, first.right)):
        assert np.linalg.norm(target.tcp_pose.position - _StubArms.TCP.position) < 0.02


class _LateServiceArms(_StubArms):
    SERVICE_AFTER = SETTLE_TIME + 1.0


def test_expert_node_waits_for_the_mode_service_that_appears_after_the_state() -> None:
    """Under ros2 launch the arm node's state reached the expert before its service did, and the
    expert gave up on its first call: it waits for the service and then asks once."""
    host = Host(diagnostics_period=0)
    try:
        host.add_component(SimNode, "sim", task="lift_box", seed=0, realtime_factor=0.0,
                           world_name="t_late_service", use_sim_time=True)
        arms = host.add_component(_LateServiceArms, "arm_node", use_sim_time=True)
        expert = host.add(NodeSpec(load("expert_node"), "expert_node",
                                   params={"use_sim_time": True, "exit_when_done": False}))
        host.start()
        assert wait_until(lambda: len(arms.targets) >= 10 or expert.outcome, 30.0)
    finally:
        host.shutdown()
    assert expert.outcome == "", expert.outcome
    assert [r.mode for _, r in arms.requests] == [ControlMode.POLICY]
    assert arms.requests[0][0] >= _LateServiceArms.SERVICE_AFTER


def _tcp0(sim: SimNode) -> tuple[np.ndarray, np.ndarray]:
    return tuple(sim.world.arms[a].base_T @ pose_to_matrix(_StubArms.TCP) for a in ("left", "right"))


@pytest.mark.parametrize("field, value", [
    ("stamp", float("nan")), ("stamp", float("inf")), ("stamp", None),
    ("object_pose", (0.0, 0.0, 0.0)), ("object_pose", None),
    ("arm_bases", (Pose.identity(),)), ("arm_bases", (Pose.identity(),) * 3), ("arm_bases", (Pose.identity(), None)),
    ("arm", "middle"), ("arm", "Left"), ("arm", None),
])
def test_task_facts_refuse_malformed_fields_naming_them(field: str, value: object) -> None:
    good = dict(stamp=0.2, task="pick_cube", seed=0, object_name="cube", object_pose=Pose.identity(),
                arm_bases=(Pose.identity(), Pose.identity()), arm="left")
    assert len(TaskFacts(**good).arm_bases) == 2
    with pytest.raises(ValueError, match=field):
        TaskFacts(**{**good, field: value})
