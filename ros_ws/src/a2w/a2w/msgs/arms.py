"""Messages of the arms: measured state, targets, who owns them, and the arm node's status.

ROS mirrors (``a2w.ros.codec``): ``RigState`` (with its two ``ArmState``), ``ArmTarget``,
``RigTarget`` -> a2w_interfaces/msg/*; ``JointStates`` -> sensor_msgs/JointState (``/joint_states``);
``ArmsStatus``, the latched summary a monitor shows -> a2w_interfaces/msg/ArmsStatus. An ``ArmState``
travels only inside a ``RigState``, which names each arm's base frame.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

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
        names = tuple(self.names)
        if not all(isinstance(x, str) and x for x in names):
            raise ValueError(f"names: must be non-empty strings, got {names!r}")
        if len(set(names)) != len(names):
            raise ValueError(f"names: duplicate joint names in {names!r}")
        object.__setattr__(self, "names", names)
        n = len(names)
        object.__setattr__(self, "position", frozen_array("position", self.position, shape=(n,), dtype=np.float64))
        # NaN velocities: a publisher that does not measure them (JointState allows an empty list).
        object.__setattr__(self, "velocity", frozen_array("velocity", self.velocity, shape=(n,), dtype=np.float64,
                                                          finite=False))
        object.__setattr__(self, "stamp", finite_scalar("stamp", self.stamp))


def _strings(name: str, value: object) -> tuple[str, ...]:
    items = tuple(value)  # type: ignore[call-overload]
    if not all(isinstance(x, str) for x in items):
        raise ValueError(f"{name}: must be strings, got {items!r}")
    return items


@dataclass(frozen=True)
class ArmsStatus:
    """The arm node's summary, latched on /arms/status (what a monitor shows)."""

    mode: ControlMode
    motion: str  # connecting | stopped | holding | streaming | faulted | recovering | disconnected
    message: str  # the last notable event, with its reason
    faults: tuple[str, ...] = ()  # current faults, "<arm>: <kind>: <robot text>"
    stamp: float = 0.0
    recovery_ok: bool | None = None  # result of the last recovery (None while none finished)
    owner: str = ""  # the requester that owns the arms ('' while they are free)
    warnings: tuple[str, ...] = ()  # current warnings, e.g. "<arm> gripper: jammed: ..."

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", enum_member("mode", ControlMode, self.mode))
        for f in ("motion", "message", "owner"):
            if not isinstance(getattr(self, f), str):
                raise ValueError(f"{f}: must be a string, got {getattr(self, f)!r}")
        object.__setattr__(self, "faults", _strings("faults", self.faults))
        object.__setattr__(self, "warnings", _strings("warnings", self.warnings))
        object.__setattr__(self, "stamp", finite_scalar("stamp", self.stamp))
        if self.recovery_ok not in (None, True, False):
            raise ValueError(f"recovery_ok: must be None, True or False, got {self.recovery_ok!r}")
