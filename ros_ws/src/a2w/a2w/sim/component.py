"""The sim node: owns the sim world, steps physics on the sim clock and publishes it on /clock.

It registers its ``SimWorld`` under ``world_name`` so the camera and arm nodes configured with the
sim driver attach to it; that registry is in memory, so those nodes must run in this process (the
sim launch runs in one). It steps the world in a worker thread in chunks of ``1 / clock_rate`` sim
seconds, paced at ``realtime_factor`` (0 = as fast as possible; slower than asked when rendering
cannot keep up: everything runs on the sim clock, so nothing is dropped). After every chunk it
publishes ``ClockTick`` on /clock, which drives the host's sim clock for all ``use_sim_time``
components. It also resets the task for ``seed``, injects the configured faults (seeded onsets),
publishes the task's privileged facts (object pose, arm bases) latched on /sim/task once the
objects have come to rest, and reports task success on /sim/status; with ``run_expert`` it drives
the arms itself with the scripted expert (a demo without a policy).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

from a2w.arms.sim.backend import SimRigBackend
from a2w.host.component import Component, NodeHandle
from a2w.host.host import CLOCK_TOPIC
from a2w.host.params import Params, param
from a2w.host.qos import QoS
from a2w.msgs.sim import ClockTick, FaultEvent, SimStatus, TaskFacts
from a2w.sim.expert import SETTLE_TIME, ExpertDriver, start_expert
from a2w.sim.faults import FaultInjector, random_faults
from a2w.sim.scene import ARMS, BasePose, SceneConfig
from a2w.sim.tasks import TASK_NAMES, get_task
from a2w.sim.world import SimWorld, register_world, run_loop, unregister_world

STATUS_TOPIC = "/sim/status"
TASK_TOPIC = "/sim/task"
FAULT_TOPIC = "/sim/faults"


@dataclass
class SimNodeParams(Params):
    world_name: str = param("sim", "name under which camera/arm sim drivers find the world")
    task: str = param("pick_cube", "task whose objects are in the scene", choices=TASK_NAMES + ("none",))
    seed: int = param(0, "seed of the task's random initial state and fault onsets", low=0)
    realtime_factor: float = param(1.0, "sim seconds per wall second (0 = as fast as possible)", low=0.0)
    clock_rate: float = param(200.0, "/clock messages per sim second", low=1.0, high=600.0)
    max_width: int = param(640, "largest camera width the offscreen buffer allows", low=1)
    max_height: int = param(480, "largest camera height the offscreen buffer allows", low=1)
    left_base: list[float] = param([], "left arm mount x, y, z, roll, pitch, yaw ([] = TRI layout)")
    right_base: list[float] = param([], "right arm mount x, y, z, roll, pitch, yaw ([] = TRI layout)")
    run_expert: bool = param(False, "drive the arms with the scripted expert (no arm node then)")
    faults: list[str] = param([], "faults to inject (a2w.sim.faults.FAULT_NAMES), seeded onsets")
    fault_window: list[float] = param([1.0, 4.0], "sim-time window [start, end] for fault onsets")
    status_rate: float = param(10.0, "/sim/status messages per sim second", low=0.1, high=100.0)


def _base(values: list[float], default: BasePose, name: str) -> BasePose:
    if not values:
        return default
    if len(values) != 6 or not all(np.isfinite(values)):
        raise ValueError(f"{name}: need 6 finite values x, y, z, roll, pitch, yaw, got {values}")
    return BasePose(*values)


class SimNode(Component):
    Params = SimNodeParams

    def __init__(self, node: NodeHandle, params: SimNodeParams) -> None:
        super().__init__(node, params)
        p = params
        if len(p.fault_window) != 2 or not 0 <= p.fault_window[0] <= p.fault_window[1]:
            raise ValueError(f"fault_window: need [start, end] with 0 <= start <= end, got {p.fault_window}")
        defaults = SceneConfig(task="none")
        cfg = SceneConfig(task=p.task, max_width=p.max_width, max_height=p.max_height,
                          left_base=_base(p.left_base, defaults.left_base, "left_base"),
                          right_base=_base(p.right_base, defaults.right_base, "right_base"))
        self.world = SimWorld(cfg)
        self.task = get_task(p.task) if p.task != "none" else None
        self.info = self.task.reset(self.world, np.random.default_rng(p.seed)) if self.task else {}
        specs = random_faults(p.seed, p.faults, self.task.object_name if self.task else "",
                              (p.fault_window[0], p.fault_window[1]),
                              self.task.active_arms(self.info) if self.task else ARMS)
        if any(s.name.startswith("object") for s in specs) and self.task is None:
            raise ValueError("faults: object faults need a task with an object (task != 'none')")
        self.injector = FaultInjector(self.world, specs).attach()
        self.rig: SimRigBackend | None = None
        self.driver: ExpertDriver | None = None
        if p.run_expert:
            if self.task is None:
                raise ValueError("run_expert: needs a task (task != 'none')")
            self.rig = SimRigBackend(self.world)
            self.rig.connect()
        register_world(p.world_name, self.world)
        self._clock_pub = node.create_publisher(CLOCK_TOPIC, ClockTick, QoS.reliable(1))
        self._status_pub = node.create_publisher(STATUS_TOPIC, SimStatus, QoS.latched_state())
        self._facts_pub = node.create_publisher(TASK_TOPIC, TaskFacts, QoS.latched_state())
        self._facts: TaskFacts | None = None  # published once the objects have come to rest
        self._fault_pub = node.create_publisher(FAULT_TOPIC, FaultEvent, QoS.reliable(50))
        self._published_faults = 0
        self._next_status = 0.0
        self._success = False
        self._rate = 0.0
        self._stop = threading.Event()
        self._wall0: float | None = None
        self._thread = node.start_worker("physics", self._run)

    # -- worker ---------------------------------------------------------------------------
    def _run(self) -> None:
        stop = _EitherEvent(self._stop, self.node.shutdown_event)
        run_loop(self.world, stop, chunk=1.0 / self.params.clock_rate,  # type: ignore[arg-type]
                 realtime_factor=self.params.realtime_factor, on_chunk=self._on_chunk)

    def _on_chunk(self, t: float) -> None:
        now = time.monotonic()
        if self._wall0 is None:
            self._wall0 = now
        elif now > self._wall0:
            self._rate = t / (now - self._wall0)
        if self.task is not None and self._facts is None and t >= SETTLE_TIME:
            self._facts = self.task.facts(self.world, self.info, self.params.seed)
            self._facts_pub.publish(self._facts)
            if self.rig is not None:
                self.driver = start_expert(self.task, self._facts, self.world, self.rig)
        self._clock_pub.publish(ClockTick(t))
        events = self.injector.events
        while self._published_faults < len(events):
            self._fault_pub.publish(events[self._published_faults])
            self._published_faults += 1
        if t + 1e-9 >= self._next_status:
            self._next_status = t + 1.0 / self.params.status_rate
            if self.task is not None:
                self._success = self.task.success(self.world, self.info)
            self._status_pub.publish(self.status(t))

    def status(self, t: float | None = None) -> SimStatus:
        return SimStatus(
            stamp=self.world.time if t is None else t, task=self.params.task, seed=self.params.seed,
            success=self._success, expert_done=bool(self.driver and self.driver.done),
            faults=tuple(f"{e.name}@{e.onset:.3f}:{e.target}" for e in self.injector.events),
            realtime_factor=self._rate)

    # -- component ------------------------------------------------------------------------
    def diagnostics(self) -> dict[str, object]:
        return {"sim_time": f"{self.world.time:.3f}", "realtime_factor": f"{self._rate:.2f}",
                "success": self._success, "faults": len(self.injector.events)}

    def shutdown(self) -> None:
        self._stop.set()
        self._thread.join(10.0)
        if self.rig is not None:
            self.rig.close()
        unregister_world(self.params.world_name, self.world)
        self.world.close()


class _EitherEvent:
    """An Event-like view that is set when either of two events is (for ``run_loop``)."""

    def __init__(self, a: threading.Event, b: threading.Event) -> None:
        self._a, self._b = a, b

    def is_set(self) -> bool:
        return self._a.is_set() or self._b.is_set()

    def wait(self, timeout: float) -> bool:
        # Pacing waits are short (one chunk); poll both in small slices.
        end = time.monotonic() + timeout
        while not self.is_set():
            left = end - time.monotonic()
            if left <= 0:
                break
            self._a.wait(min(left, 0.01))
        return self.is_set()
