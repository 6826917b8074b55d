"""Messages of the simulator: its clock, where the episode stands, and the faults it injected.

ROS mirrors: ``ClockTick`` -> rosgraph_msgs/Clock. ``SimStatus`` and ``FaultEvent`` have no ROS
mapping yet (in-process host only).
"""

from __future__ import annotations

from dataclasses import dataclass, field


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


@dataclass(frozen=True)
class FaultEvent:
    """A fault as it happened: the spec plus the sim time it took effect."""

    name: str
    target: str
    onset: float  # actual sim time of the first affected step
    scheduled: float
    detail: str = ""
