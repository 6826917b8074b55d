"""`a2w sim collect`: demonstrations of a sim task, recorded through the full sim stack.

Each episode runs ``launch/sim.launch.xml`` in-process (sim node, camera node, arm node with every
safety layer, the scripted expert) plus the recorder (``record_node``) on the same topics a rig
uses. A small ``Collector`` component drives the recorder through its ``/record/control`` service,
as a headset or a foot pedal would: start when the expert takes the arms, save when the task
succeeded, discard when it failed. Each episode gets its own seed (``seed0 + attempt``), recorded
with it in ``meta/a2w/episodes/``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from a2w.host.component import Component, NodeHandle
from a2w.host.params import Params
from a2w.host.qos import QoS
from a2w.msgs.episode import (
    EpisodeCommand,
    EpisodeControlRequest,
    EpisodeControlResponse,
    EpisodeEvent,
    EpisodeEventKind,
)
from a2w.record.component import CONTROL_SERVICE, OUTCOME_TOPIC

log = logging.getLogger(__name__)

SIM_LAUNCH = Path(__file__).resolve().parents[2] / "launch" / "sim.launch.xml"
INSTRUCTIONS = {
    "lift_box": "lift the box with both arms",
    "pick_cube": "pick up the cube",
}


class Collector(Component):
    """Calls the recorder's control service and collects its outcomes (``EpisodeEvent``s)."""

    def __init__(self, node: NodeHandle, params: Params) -> None:
        super().__init__(node, params)
        self.client = node.create_client(CONTROL_SERVICE, EpisodeControlRequest)
        self.outcomes: queue.Queue[EpisodeEvent] = queue.Queue()
        node.create_subscription(OUTCOME_TOPIC, EpisodeEvent, self.outcomes.put, QoS.reliable(20))

    def command(self, req: EpisodeControlRequest, timeout: float = 30.0) -> EpisodeControlResponse:
        return self.client.call(req, timeout=timeout)


@dataclass
class EpisodeResult:
    attempt: int
    seed: int
    saved: bool
    episode_index: int = -1
    rows: int = 0
    note: str = ""
    wall_s: float = 0.0


@dataclass
class CollectSummary:
    results: list[EpisodeResult] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def saved(self) -> list[EpisodeResult]:
        return [r for r in self.results if r.saved]


def run_episode(task: str, seed: int, out: Path, width: int, height: int, realtime: float,
                timeout: float = 120.0, record_params: dict | None = None,
                extra_nodes: Sequence = ()) -> EpisodeResult:
    """One sim episode with the recorder; saved when the expert's task succeeded.
    ``record_params`` override the recorder's parameters; ``extra_nodes`` (``NodeSpec``s) run beside
    the stack (e.g. something between the cameras and the recorder)."""
    from a2w.host import Host
    from a2w.host.host import NodeSpec
    from a2w.launch import LaunchRunner
    from a2w.sim.expert_node import Phase

    t0 = time.monotonic()
    args = {"task": task, "seed": str(seed), "realtime": str(realtime), "record": "true", "dataset": str(out)}
    specs = LaunchRunner().load(SIM_LAUNCH, args).nodes
    for spec in specs:
        if spec.name == "sim_node":
            spec.params.update(max_width=max(width, spec.params.get("max_width", 0)),
                               max_height=max(height, spec.params.get("max_height", 0)))
        elif spec.name == "camera_node":
            spec.params.update(width=width, height=height)
        elif spec.name == "expert_node":
            spec.params.update(exit_when_done=False, timeout=timeout)
        elif spec.name == "record_node":
            spec.params.update(width=width, height=height, **(record_params or {}))
    specs.extend(extra_nodes)
    specs.append(NodeSpec(Collector, "collector", params={"use_sim_time": True}))
    host = Host(diagnostics_period=0)
    for spec in specs:
        host.add(spec)
    expert = host.components["/expert_node"]
    collector: Collector = host.components["/collector"]  # type: ignore[assignment]
    runner = threading.Thread(target=lambda: host.spin(install_signal_handlers=False), daemon=True)
    runner.start()
    result = EpisodeResult(attempt=-1, seed=seed, saved=False)
    try:
        deadline = time.monotonic() + timeout * max(1.0, 1.0 / max(realtime, 1e-3)) + 60.0
        while expert.phase not in (Phase.RUN, Phase.DONE):
            if time.monotonic() > deadline or host.stop_event.is_set():
                raise TimeoutError(f"the expert never started ({expert.phase.value})")
            time.sleep(0.01)
        resp = collector.command(EpisodeControlRequest(EpisodeCommand.START, INSTRUCTIONS[task], seed))
        if not resp.success:
            raise RuntimeError(f"the recorder refused to start: {resp.message}")
        while expert.phase is not Phase.DONE:
            if time.monotonic() > deadline or host.stop_event.is_set():
                raise TimeoutError("the expert did not finish")
            time.sleep(0.02)
        cmd = EpisodeCommand.SAVE if expert.success else EpisodeCommand.DISCARD
        resp = collector.command(EpisodeControlRequest(cmd))
        if not resp.success:
            raise RuntimeError(f"the recorder refused to {cmd.value}: {resp.message}")
        while True:  # the recorder's verdict (saving runs in its writer worker)
            ev = collector.outcomes.get(timeout=120.0)
            if ev.kind is EpisodeEventKind.START:
                result.episode_index = ev.episode_index
                continue
            result.note = ev.note if expert.success else f"{expert.outcome}; {ev.note}"
            result.saved = ev.kind is EpisodeEventKind.SAVE
            if result.saved:
                result.rows = int(ev.note.split()[1])
            break
    except (TimeoutError, RuntimeError, queue.Empty) as exc:
        result.note = f"failed: {exc}"
    finally:
        host.stop()
        runner.join(60.0)
    result.wall_s = time.monotonic() - t0
    return result


def collect(task: str, episodes: int, out: Path, seed0: int = 0, width: int = 256, height: int = 192,
            realtime: float = 1.0, max_attempts: int | None = None,
            on_result: Callable[[EpisodeResult], None] | None = None) -> CollectSummary:
    """Run episodes until ``episodes`` are saved (or ``max_attempts``, default 2x, have run)."""
    summary = CollectSummary()
    t0 = time.monotonic()
    attempts = max_attempts if max_attempts is not None else 2 * episodes
    for attempt in range(attempts):
        if len(summary.saved) >= episodes:
            break
        r = run_episode(task, seed0 + attempt, out, width, height, realtime)
        r.attempt = attempt
        summary.results.append(r)
        if on_result is not None:
            on_result(r)
    summary.wall_s = time.monotonic() - t0
    return summary
