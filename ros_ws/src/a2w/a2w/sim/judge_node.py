"""The task judge: ends a sim run with the task's verdict when something other than the scripted
expert drives the arms (the policy node, teleop).

It reads /sim/status (latched) and asks the host to stop with exit code 0 once the task has been
successful for ``settle`` seconds of sim time, or 1 when ``timeout`` passes first: the same verdict
the expert node gives for its own runs, so ``launch/sim.launch.xml policy:=DIR`` ends like the demo.
"""

from __future__ import annotations

from dataclasses import dataclass

from a2w.host.component import Component, NodeHandle
from a2w.host.params import Params, param
from a2w.host.qos import QoS
from a2w.msgs.sim import SimStatus
from a2w.sim.component import STATUS_TOPIC


@dataclass
class TaskJudgeParams(Params):
    timeout: float = param(60.0, "the run fails (exit 1) after this long on the node's clock (s)", low=1.0)
    settle: float = param(0.5, "the task must stay successful this long to pass (s)", low=0.0)
    exit_when_done: bool = param(True, "ask the host to stop when the run is judged")


class TaskJudge(Component):
    Params = TaskJudgeParams

    def __init__(self, node: NodeHandle, params: TaskJudgeParams) -> None:
        super().__init__(node, params)
        self.status: SimStatus | None = None
        self.success_since: float | None = None
        self.verdict: bool | None = None
        self.outcome = ""
        self.elapsed = 0.0  # s of the node's clock from start to the verdict (or so far)
        self.success_time = float("nan")  # s from start until the task became (and stayed) successful
        self._start = node.clock.now()
        node.create_subscription(STATUS_TOPIC, SimStatus, self._on_status, QoS.latched_state())
        node.create_timer(0.1, self._check)

    def _on_status(self, status: SimStatus) -> None:
        self.status = status
        if not status.success:
            self.success_since = None
        elif self.success_since is None:
            self.success_since = status.stamp

    def _check(self) -> None:
        if self.verdict is not None:
            return
        now = self.node.clock.now()
        elapsed = self.elapsed = now - self._start
        if self.success_since is not None and now - self.success_since >= self.params.settle:
            self.success_time = self.success_since - self._start
            self._judge(True, f"task {self.status.task} succeeded after {elapsed:.1f} s of sim time "
                              f"(real-time factor {self.status.realtime_factor:.2f})")
        elif elapsed > self.params.timeout:
            task = self.status.task if self.status else "?"
            self._judge(False, f"task {task} not done after {self.params.timeout:g} s: timed out")

    def _judge(self, success: bool, outcome: str) -> None:
        self.verdict, self.outcome = success, outcome
        (self.log.info if success else self.log.error)(outcome)
        if self.params.exit_when_done:
            self.node.request_shutdown(outcome, exit_code=0 if success else 1)

    def diagnostics(self) -> dict[str, object]:
        return {"verdict": "pending" if self.verdict is None else ("success" if self.verdict else "failure"),
                "outcome": self.outcome}
