"""One episode of a task with its scripted expert: reset from a seed, run, judge success."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from a2w.arms.sim.backend import SimRigBackend
from a2w.arms.sim.params import SimRigParams
from a2w.sim.expert import SETTLE_TIME, ExpertDriver, start_expert
from a2w.sim.faults import FaultInjector, FaultSpec
from a2w.sim.scene import SceneConfig
from a2w.sim.tasks import Task, get_task
from a2w.sim.world import SimWorld

log = logging.getLogger(__name__)


@dataclass
class EpisodeResult:
    task: str
    seed: int
    success: bool
    actions: np.ndarray  # (T, 14) float32 A2World deltas at 30 Hz
    commanded: np.ndarray  # (T + 1, 2, 8) commanded TCP poses (base frames) + gripper
    stamps: np.ndarray  # (T,) sim time of each command
    info: dict[str, Any]
    error: str = ""  # why the expert stopped early (a fault), empty otherwise
    fault_events: list[Any] = field(default_factory=list)


@dataclass
class Episode:
    """A world, its rig and a task, reset for ``seed``; ``run()`` plays the expert."""

    task_name: str
    seed: int = 0
    scene: SceneConfig | None = None
    rig_params: SimRigParams | None = None
    faults: tuple[FaultSpec, ...] = ()

    def __post_init__(self) -> None:
        self.task: Task = get_task(self.task_name)
        cfg = self.scene or SceneConfig(task=self.task_name)
        if cfg.task != self.task_name:
            raise ValueError(f"scene.task: {cfg.task!r} does not match task {self.task_name!r}")
        self.world = SimWorld(cfg)
        self.rig = SimRigBackend(self.world, self.rig_params)
        self.rig.connect()
        self.rng = np.random.default_rng(self.seed)
        self.info = self.task.reset(self.world, self.rng)
        self.driver: ExpertDriver | None = None
        self.injector = FaultInjector(self.world, list(self.faults)).attach()

    def run(self, on_action: Callable[[float], None] | None = None,
            on_chunk: Callable[[float], None] | None = None, chunk_steps: int = 20) -> EpisodeResult:
        """Settle, run the expert to its end, return the result. ``on_chunk(t)`` after every
        ``chunk_steps`` physics steps (progress bars, fault bookkeeping)."""
        self.world.step_for(SETTLE_TIME)
        facts = self.task.facts(self.world, self.info, self.seed)
        self.driver = start_expert(self.task, facts, self.world, self.rig, on_action)
        while not self.driver.done:
            self.world.step(chunk_steps)
            if on_chunk is not None:
                on_chunk(self.world.time)
        d = self.driver
        return EpisodeResult(
            task=self.task_name, seed=self.seed, success=self.task.success(self.world, self.info),
            actions=d.actions(), commanded=np.stack(d.commanded), stamps=np.asarray(d.stamps),
            info=self.info, error=d.error, fault_events=list(self.injector.events))

    @property
    def duration(self) -> float:
        """Expected sim duration of ``run()`` (settle + plan), known once the expert started."""
        return SETTLE_TIME + (self.driver.expert.duration if self.driver else 0.0)

    def close(self) -> None:
        self.rig.close()
        self.world.close()


def run_episode(task: str, seed: int, **kwargs: Any) -> EpisodeResult:
    """Physics-only episode (no rendering): the affordable path for tests and data checks."""
    ep = Episode(task, seed, **kwargs)
    try:
        return ep.run()
    finally:
        ep.close()
