"""The expert node: the sim task's scripted expert driving the rig *through the arm node*.

It stands where the policy node will stand: it asks the arm node for the ``policy`` mode, then
publishes timed ``RigTarget``s on /arms/target at 30 Hz of sim time, so every safety layer of the
arm node (ownership, clamps, workspace, watchdog) is exercised exactly as with a policy. When the
plan has run (or ``timeout`` passes) it reads the task outcome from /sim/status and asks the host
to stop, with exit code 0 on success and 1 otherwise: the demo's verdict.

It plans from the task's privileged facts that the sim node publishes latched on /sim/task (object
pose, arm bases) and the arms' state on /arms/state: topics and the arm node's interfaces only, so
unlike the sim drivers it does not need the sim node's process.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from a2w.arms.component import SET_MODE_SERVICE, STATE_TOPIC, TARGET_TOPIC
from a2w.geometry import matrix_to_pose, pose_to_matrix
from a2w.host.component import Component, NodeHandle
from a2w.host.params import Params, param
from a2w.host.qos import QoS
from a2w.msgs.arms import ArmTarget, ControlMode, RigState, RigTarget
from a2w.msgs.services import SetControlModeRequest
from a2w.msgs.sim import SimStatus, TaskFacts
from a2w.sim.component import STATUS_TOPIC, TASK_TOPIC
from a2w.sim.expert import SETTLE_TIME, ScriptedExpert, plan
from a2w.sim.tasks import get_task


class Phase(enum.Enum):
    WAIT_STATE = (f"waiting for {STATE_TOPIC}, the task facts on {TASK_TOPIC} (sim_node task:=none?) "
                  f"and the service {SET_MODE_SERVICE}")
    WAIT_MODE = "waiting for the policy mode"
    RUN = "running the plan"
    DONE = "done"


@dataclass
class ExpertNodeParams(Params):
    rate: float = param(30.0, "target rate (Hz of the node's clock)", low=1.0, high=200.0)
    settle: float = param(0.5, "extra time after the plan before judging success (s)", low=0.0)
    timeout: float = param(60.0, "give up (exit 1) after this long on the node's clock (s)", low=1.0)
    exit_when_done: bool = param(True, "ask the host to stop when the run is judged")


class ExpertNode(Component):
    Params = ExpertNodeParams

    def __init__(self, node: NodeHandle, params: ExpertNodeParams) -> None:
        super().__init__(node, params)
        self.phase = Phase.WAIT_STATE
        self.state: RigState | None = None
        self.status: SimStatus | None = None
        self.facts: TaskFacts | None = None
        self._bases: tuple[np.ndarray, ...] = ()  # table <- arm base, from the facts
        self.expert: ScriptedExpert | None = None
        self.t0 = 0.0
        self.sent = 0
        self.outcome: str = ""
        self.success: bool | None = None
        self._start = node.clock.now()
        self._pub = node.create_publisher(TARGET_TOPIC, RigTarget, QoS.reliable(10))
        self._mode = node.create_client(SET_MODE_SERVICE, SetControlModeRequest)
        node.create_subscription(STATE_TOPIC, RigState, self._on_state, QoS.sensor())
        node.create_subscription(STATUS_TOPIC, SimStatus, self._on_status, QoS.latched_state())
        node.create_subscription(TASK_TOPIC, TaskFacts, self._on_facts, QoS.latched_state())
        node.create_timer(1.0 / params.rate, self._tick)

    def _on_state(self, state: RigState) -> None:
        self.state = state

    def _on_status(self, status: SimStatus) -> None:
        self.status = status

    def _on_facts(self, facts: TaskFacts) -> None:
        self.facts = facts

    def _tick(self) -> None:
        now = self.node.clock.now()
        if self.phase is Phase.DONE:
            return
        if now - self._start > self.params.timeout:
            self._finish(False, f"timed out after {self.params.timeout:.0f} s while {self.phase.value}")
            return
        if (self.phase is Phase.WAIT_STATE and self.state is not None and self.facts is not None
                and now >= SETTLE_TIME and self._mode.ready()):
            self.phase = Phase.WAIT_MODE
            fut = self._mode.call_async(SetControlModeRequest(ControlMode.POLICY, requester=self.node.name))
            fut.add_done_callback(lambda f: self.node.post(lambda: self._on_mode(f)))
        elif self.phase is Phase.RUN:
            self._run(now)

    def _on_mode(self, fut) -> None:  # noqa: ANN001 - concurrent.futures.Future
        exc = fut.exception()
        resp = None if exc else fut.result()
        if exc or not resp.success:
            self._finish(False, f"arm node refused the policy mode: {exc or resp.message}")
            return
        task = get_task(self.facts.task)
        self._bases = tuple(pose_to_matrix(b) for b in self.facts.arm_bases)
        tcp0 = tuple(self._bases[a] @ pose_to_matrix(self.state.arm(a).tcp_pose) for a in range(2))
        grips = (self.state.left.gripper_open, self.state.right.gripper_open)
        self.expert = ScriptedExpert(plan(task, self.facts, tcp0), tcp0, grips)
        self.t0 = self.node.clock.now()
        self.phase = Phase.RUN
        self.log.info("expert plan: %.1f s for task %s", self.expert.duration, task.name)

    def _run(self, now: float) -> None:
        t = now - self.t0
        if t > self.expert.duration + self.params.settle:
            ok = bool(self.status and self.status.success)
            rtf = self.status.realtime_factor if self.status else 0.0
            self._finish(ok, f"task {'succeeded' if ok else 'failed'} after {t:.1f} s of sim time "
                             f"({self.sent} targets at {self.params.rate:g} Hz, real-time factor {rtf:.2f})")
            return
        step = 1.0 / self.params.rate
        arms = []
        for a, (pose_w, grip) in enumerate(self.expert.sample(min(t + step, self.expert.duration))):
            pose_b = matrix_to_pose(np.linalg.inv(self._bases[a]) @ pose_w)
            arms.append(ArmTarget(pose_b, float(np.clip(grip, 0.0, 1.0))))
        self._pub.publish(RigTarget(arms[0], arms[1], now + step, ControlMode.POLICY, self.node.name))
        self.sent += 1

    def _finish(self, success: bool, outcome: str) -> None:
        self.phase = Phase.DONE
        self.success, self.outcome = success, outcome
        (self.log.info if success else self.log.error)(outcome)
        if self.params.exit_when_done:
            self.node.request_shutdown(outcome, exit_code=0 if success else 1)

    def diagnostics(self) -> dict[str, object]:
        return {"phase": self.phase.value, "targets_sent": self.sent, "outcome": self.outcome}
