"""Messages and service types of the arm node that the shared domain types do not cover.

``JointStates`` mirrors sensor_msgs/JointState; ``ArmsStatus`` is the latched summary a monitor
shows (mode and owner, motion, last reason, faults, warnings). The two services use the shared,
ROS-mapped request types of ``a2w.ros.requests`` (re-exported here) so the same component serves
them on both hosts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from a2w.msgs.arms import ControlMode
from a2w.ros.requests import Outcome, RecoverRequest, SetControlModeRequest, SetControlModeResponse

__all__ = ["ArmsStatus", "JointStates", "Outcome", "RecoverRequest", "SetControlModeRequest",
           "SetControlModeResponse"]


@dataclass(frozen=True)
class JointStates:
    """Positions (rad) and velocities (rad/s) of named joints (sensor_msgs/JointState)."""

    names: tuple[str, ...]
    position: np.ndarray
    velocity: np.ndarray
    stamp: float

    def __post_init__(self) -> None:
        n = len(self.names)
        for f in ("position", "velocity"):
            a = np.array(getattr(self, f), dtype=np.float64)
            if a.shape != (n,):
                raise ValueError(f"{f}: shape must be ({n},), got {a.shape}")
            a.flags.writeable = False
            object.__setattr__(self, f, a)
        object.__setattr__(self, "names", tuple(str(x) for x in self.names))
        if not math.isfinite(float(self.stamp)):
            raise ValueError("stamp: must be finite")


@dataclass(frozen=True)
class ArmsStatus:
    mode: ControlMode
    motion: str  # stopped | holding | streaming | faulted | recovering | connecting
    message: str  # the last notable event, with its reason
    faults: tuple[str, ...] = ()  # current faults, "<arm>: <kind>: <robot text>"
    stamp: float = 0.0
    recovery_ok: bool | None = None  # result of the last recovery (None while none finished)
    owner: str = ""  # the requester that owns the arms ('' while they are free)
    warnings: tuple[str, ...] = ()  # current warnings, e.g. "<arm> gripper: jammed: ..."
    extra: dict[str, str] = field(default_factory=dict)
