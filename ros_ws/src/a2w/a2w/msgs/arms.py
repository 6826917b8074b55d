"""Messages of the arms: measured state, targets, who owns them, and the arm node's status.

ROS mirrors: ``ArmState``, ``RigState``, ``ArmTarget``, ``RigTarget`` -> a2w_interfaces/msg/*;
``JointStates`` follows sensor_msgs/JointState and ``ArmsStatus`` is the latched summary a monitor
shows; neither has a ROS mapping yet (in-process host only).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

import numpy as np

from a2w.msgs.checks import enum_member, finite_scalar, frozen_array
from a2w.msgs.common import Pose

ARM_NAMES: tuple[str, str] = ("left", "right")  # arm 0 is the left arm (docs/architecture.md §5)


class ControlMode(str, enum.Enum):
    """Who owns the arms (docs/architecture.md §7). A change always passes through HOLD."""

    IDLE = "idle"
    HOLD = "hold"
    TELEOP = "teleop"
    POLICY = "policy"


def _gripper(name: str, value: float) -> float:
    v = finite_scalar(name, value)
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"{name}: must be in [0, 1] (1 = fully open), got {v}")
    return v


@dataclass(frozen=True)
class ArmState:
    """Measured state of one arm."""

    tcp_pose: Pose
    joint_positions: np.ndarray
    joint_velocities: np.ndarray
    wrench: np.ndarray  # external wrench at the TCP [fx, fy, fz, tx, ty, tz] in the base frame
    gripper_open: float
    stamp: float
    fault: str = ""  # empty when healthy; the robot's own text otherwise
    enabled: bool = True
    # False when this arm's data stopped updating (link lost or frozen): the values are the last
    # ones received, not the arm's current state. Set by the arm node (its ``state_timeout``).
    fresh: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.tcp_pose, Pose):
            raise ValueError("tcp_pose: must be a Pose")
        q = frozen_array("joint_positions", self.joint_positions, shape=(None,), dtype=np.float64)
        dq = frozen_array("joint_velocities", self.joint_velocities, shape=q.shape, dtype=np.float64)
        object.__setattr__(self, "joint_positions", q)
        object.__setattr__(self, "joint_velocities", dq)
        object.__setattr__(self, "wrench", frozen_array("wrench", self.wrench, shape=(6,), dtype=np.float64))
        object.__setattr__(self, "gripper_open", _gripper("gripper_open", self.gripper_open))
        object.__setattr__(self, "stamp", finite_scalar("stamp", self.stamp))

    @property
    def faulted(self) -> bool:
        return bool(self.fault)


@dataclass(frozen=True)
class RigState:
    """Both arms plus who owns them."""

    left: ArmState
    right: ArmState
    mode: ControlMode
    stamp: float  # when the arm node read the arms' data (its clock), not the publish time

    def __post_init__(self) -> None:
        for name in ARM_NAMES:
            if not isinstance(getattr(self, name), ArmState):
                raise ValueError(f"{name}: must be an ArmState")
        object.__setattr__(self, "mode", enum_member("mode", ControlMode, self.mode))
        object.__setattr__(self, "stamp", finite_scalar("stamp", self.stamp))

    def arm(self, index: int) -> ArmState:
        return (self.left, self.right)[index]


@dataclass(frozen=True)
class ArmTarget:
    """Absolute TCP pose target (base frame of that arm) and gripper opening."""

    tcp_pose: Pose
    gripper_open: float

    def __post_init__(self) -> None:
        if not isinstance(self.tcp_pose, Pose):
            raise ValueError("tcp_pose: must be a Pose")
        object.__setattr__(self, "gripper_open", _gripper("gripper_open", self.gripper_open))


@dataclass(frozen=True)
class RigTarget:
    """Targets for both arms, to be reached at ``stamp``, from a source (teleop, policy).

    ``requester`` names the sender as it named itself when it took the arms (``/arms/set_mode``);
    the arm node moves only for the owner's targets.
    """

    left: ArmTarget
    right: ArmTarget
    stamp: float
    source: ControlMode
    requester: str = ""

    def __post_init__(self) -> None:
        for name in ARM_NAMES:
            if not isinstance(getattr(self, name), ArmTarget):
                raise ValueError(f"{name}: must be an ArmTarget")
        object.__setattr__(self, "stamp", finite_scalar("stamp", self.stamp))
        object.__setattr__(self, "source", enum_member("source", ControlMode, self.source))
        if not isinstance(self.requester, str):
            raise ValueError(f"requester: must be a string, got {type(self.requester).__name__}")

    def arm(self, index: int) -> ArmTarget:
        return (self.left, self.right)[index]


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
