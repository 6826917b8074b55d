"""Messages of the simulator: its clock, where the episode stands, the task's privileged facts,
and the faults it injected.

ROS mirrors (``a2w.ros.codec``): ``ClockTick`` -> rosgraph_msgs/Clock; ``SimStatus``, ``TaskFacts``
and ``FaultEvent`` -> a2w_interfaces/msg/* (TaskFacts' header names the table frame, ``world``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from a2w.msgs.arms import ARM_NAMES
from a2w.msgs.checks import finite_scalar
from a2w.msgs.common import Pose


def _integer(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name}: must be an integer, got {value!r}")


@dataclass(frozen=True)
class ClockTick:
    """Message on /clock: the simulator's time (seconds)."""

    time: float


@dataclass(frozen=True)
class SimStatus:
    """Published on /sim/status: where the simulated episode stands."""

    stamp: float  # sim time
    task: str
    seed: int
    success: bool
    expert_done: bool
    faults: tuple[str, ...] = field(default_factory=tuple)  # "name@onset:target" of injected faults
    realtime_factor: float = 0.0  # measured sim seconds per wall second

    def __post_init__(self) -> None:
        object.__setattr__(self, "stamp", finite_scalar("stamp", self.stamp))
        _integer("seed", self.seed)
        faults = tuple(self.faults)
        if not all(isinstance(f, str) for f in faults):
            raise ValueError(f"faults: must be strings, got {faults!r}")
        object.__setattr__(self, "faults", faults)
        object.__setattr__(self, "realtime_factor", finite_scalar("realtime_factor", self.realtime_factor))


@dataclass(frozen=True)
class TaskFacts:
    """Published latched on /sim/task, once per episode when its objects have come to rest: what
    only the simulator knows and a scripted expert plans from (a policy never sees it). Poses are
    in the table frame."""

    stamp: float  # sim time the object pose was read
    task: str
    seed: int
    object_name: str
    object_pose: Pose
    arm_bases: tuple[Pose, Pose]  # left, right: table <- arm base
    arm: str = ""  # the arm a single-arm task uses; "" when it uses both

    def __post_init__(self) -> None:
        object.__setattr__(self, "stamp", finite_scalar("stamp", self.stamp))
        _integer("seed", self.seed)
        if not isinstance(self.object_pose, Pose):
            raise ValueError("object_pose: must be a Pose")
        bases = tuple(self.arm_bases)
        if len(bases) != 2 or not all(isinstance(b, Pose) for b in bases):
            raise ValueError(f"arm_bases: must be two Poses (left, right), got {self.arm_bases!r}")
        object.__setattr__(self, "arm_bases", bases)
        if self.arm not in ("", *ARM_NAMES):
            raise ValueError(f"arm: must be one of {['', *ARM_NAMES]}, got {self.arm!r}")


@dataclass(frozen=True)
class FaultEvent:
    """A fault as it happened: the spec plus the sim time it took effect."""

    name: str
    target: str
    onset: float  # actual sim time of the first affected step
    scheduled: float
    detail: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name: must be a non-empty string, got {self.name!r}")
        if not isinstance(self.target, str):
            raise ValueError(f"target: must be a string, got {self.target!r}")
        for f in ("onset", "scheduled"):
            object.__setattr__(self, f, finite_scalar(f, getattr(self, f)))
