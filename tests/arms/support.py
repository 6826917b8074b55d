"""Helpers for tests/arms: the arm node on the simulated rig, run in-process in real time (wall
clock, SimRunner at 1x)."""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np

from a2w.arms.component import RECOVER_SERVICE, SET_MODE_SERVICE, TARGET_TOPIC, ArmNode, Motion
from a2w.host import Component, Host
from a2w.host.host import NodeSpec
from a2w.host.qos import QoS
from a2w.msgs.arms import ArmTarget, ControlMode, RigState, RigTarget
from a2w.msgs.common import Pose
from a2w.msgs.services import RecoverRequest, SetControlModeRequest
from tests.support import wait_until

_names = itertools.count()


class Probe(Component):
    """A test-side node: publishes targets, calls services, records /arms/state."""

    def __init__(self, node: Any, params: Any) -> None:
        super().__init__(node, params)
        self.pub = node.create_publisher(TARGET_TOPIC, RigTarget, QoS.reliable(10))
        self.states: list[RigState] = []
        node.create_subscription("/arms/state", RigState, self.states.append, QoS.sensor())
        self.set_mode_client = node.create_client(SET_MODE_SERVICE, SetControlModeRequest)
        self.recover_client = node.create_client(RECOVER_SERVICE, RecoverRequest)


@dataclass
class Rig:
    host: Host
    arm: ArmNode
    probe: Probe
    world: Any
    runner: Any
    sender: str = "test"  # who the probe's targets say they are from: whoever last took the arms

    @property
    def backend(self) -> Any:
        return self.arm.backend

    def now(self) -> float:
        return self.arm.clock.now()

    def set_mode(self, mode: str, who: str = "test") -> Any:
        resp = self.probe.set_mode_client.call(SetControlModeRequest(ControlMode(mode), who))
        if resp.success and ControlMode(mode) in (ControlMode.TELEOP, ControlMode.POLICY):
            self.sender = who
        return resp

    def recover(self) -> Any:
        return self.probe.recover_client.call(RecoverRequest())

    def read(self) -> Any:
        return self.backend.read()

    def send(self, left: ArmTarget, right: ArmTarget, source: str = "teleop", lead: float = 0.0,
             requester: str | None = None) -> None:
        self.probe.pub.publish(RigTarget(left, right, self.now() + lead, ControlMode(source),
                                         self.sender if requester is None else requester))

    def stream(self, make: Callable[[float], tuple[ArmTarget, ArmTarget]], seconds: float,
               source: str = "teleop", rate: float = 50.0, requester: str | None = None) -> None:
        t0 = time.monotonic()
        while (t := time.monotonic() - t0) < seconds:
            left, right = make(t)
            self.send(left, right, source, requester=requester)
            time.sleep(1.0 / rate)
        self.drain()

    def drain(self) -> None:
        """Wait until the arm node has handled every target sent so far."""
        node = next(n for n in self.host.nodes if n.fqn == "/arm_node")
        wait_for(lambda: all(s.delivered + s.dropped >= s.received for s in node.subscriptions),
                 2.0, "targets to be delivered")
        done = threading.Event()
        node.executor.post(done.set, "drain")
        done.wait(2.0)

    def diag(self) -> dict[str, Any]:
        return self.arm.diagnostics()


def wait_for(cond: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """``wait_until`` that fails the test, saying what it waited for."""
    if not wait_until(cond, timeout):
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def target(pos: np.ndarray, quat: np.ndarray, grip: float = 1.0) -> ArmTarget:
    return ArmTarget(Pose(np.asarray(pos, float), np.asarray(quat, float)), grip)


def hold_targets(rig: Rig) -> tuple[ArmTarget, ArmTarget]:
    left, right = rig.read()
    return (target(left.tcp_pose.position, left.tcp_pose.quaternion, left.gripper_open),
            target(right.tcp_pose.position, right.tcp_pose.quaternion, right.gripper_open))


def world_tcp(rig: Rig, arm: int) -> np.ndarray:
    st = rig.read()[arm]
    T = rig.arm.base_T[arm]
    return T[:3, :3] @ st.tcp_pose.position + T[:3, 3]


def base_point(rig: Rig, arm: int, p_world: np.ndarray) -> np.ndarray:
    T = rig.arm.base_T[arm]
    return T[:3, :3].T @ (np.asarray(p_world, float) - T[:3, 3])


def make_rig(task: str = "none", clock: Any = None, **params: Any) -> Iterator[Rig]:
    """A sim world (with ``task``'s objects), its runner and a host (on ``clock``, default wall
    time) with the arm node (``params``) and a probe. Every resource is owned by the exit stack
    from the moment it exists, so a failing setup (a bad parameter on purpose) releases what was
    already started, here, on this thread."""
    from a2w.sim.scene import SceneConfig
    from a2w.sim.world import SimRunner, SimWorld, register_world, unregister_world

    name = f"arms-test-{next(_names)}"
    with contextlib.ExitStack() as owned:
        world = SimWorld(SceneConfig(task=task, max_width=160, max_height=120))
        owned.callback(world.close)
        register_world(name, world)
        owned.callback(unregister_world, name, world)
        runner = owned.enter_context(SimRunner(world, realtime_factor=1.0))
        host = Host(diagnostics_period=0) if clock is None else Host(clock=clock, diagnostics_period=0)
        owned.callback(host.shutdown)
        defaults = {"backend": "sim", "sim.world_name": name, "hold_after": 0.15, "stop_after": 0.6,
                    "stale_after": 0.5}
        arm = host.add(NodeSpec(ArmNode, "arm_node", params={**defaults, **params}))
        probe = host.add(NodeSpec(Probe, "probe"))
        host.start()
        rig = Rig(host, arm, probe, world, runner)
        wait_for(lambda: arm.motion == Motion.HOLDING, 10.0, "arm node to connect and hold")
        yield rig

