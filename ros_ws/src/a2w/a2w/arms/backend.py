"""The arm-backend interface every dual-arm driver implements (Flexiv RDK, MuJoCo sim).

A backend drives both arms of the rig (index 0 = left, 1 = right) at its own command rate. It is
deliberately thin: safety (ownership, clamps, workspace, watchdog) lives in the arm component,
which is the same for every backend. Faults surface the same way for every backend: the arm's
``ArmState.fault`` carries the robot's text and ``fault()`` its kind; streaming commands are
refused (``ArmFaultError``) until ``clear_fault()`` succeeds.

Life cycle: construct (no I/O) -> ``connect()`` (bring-up: connect, clear minor faults, enable,
enter the streaming mode) -> ``read()`` / ``command()`` ... -> ``stop()`` -> ``close()``
(idempotent). Holding still is streaming the pose to hold: the arm node brakes along the current
path and then streams where the arms came to rest, which a backend-side "hold the measured pose"
could not do (it would jump back to wherever the arm was measured, outside the node's box checks).
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass

import numpy as np

from a2w.msgs.arms import ArmState, ArmTarget


class FaultKind(str, enum.Enum):
    JOINT_LIMIT = "joint_limit"
    EXCESSIVE_FORCE = "excessive_force"
    SELF_COLLISION = "self_collision"  # between the two arms, or an arm and itself
    ESTOP = "estop"  # operator-side: e-stop pressed; not recoverable from software
    OPERATOR = "operator"  # other operator states (teach pendant mode, enabling switch released)
    COMMUNICATION = "communication"
    OTHER = "other"


RECOVERABLE = frozenset({FaultKind.JOINT_LIMIT, FaultKind.EXCESSIVE_FORCE,
                         FaultKind.SELF_COLLISION, FaultKind.COMMUNICATION, FaultKind.OTHER})


@dataclass(frozen=True)
class Fault:
    arm: int
    kind: FaultKind
    text: str  # the robot's own message

    @property
    def recoverable(self) -> bool:
        return self.kind in RECOVERABLE


class ArmError(RuntimeError):
    """Base of arm backend errors."""


class ArmConnectionError(ArmError):
    """Bring-up failed (robot not found, wrong software version, refused connection)."""


class ArmFaultError(ArmError):
    """A motion command was refused because the arm is faulted."""

    def __init__(self, fault: Fault) -> None:
        super().__init__(f"arm {fault.arm} faulted ({fault.kind.value}): {fault.text}")
        self.fault = fault


class RecoveryRefused(ArmError):
    """``clear_fault()`` refused: the fault needs the operator (e-stop, pendant)."""


class RigBackend(abc.ABC):
    """Both arms of the rig."""

    #: joint names per arm, for /joint_states
    joint_names: tuple[tuple[str, ...], tuple[str, ...]]

    @property
    @abc.abstractmethod
    def command_rate(self) -> float:
        """Rate (Hz) at which the backend expects ``command()`` calls."""

    @abc.abstractmethod
    def connect(self) -> None:
        """Bring both arms up ready to stream Cartesian targets. ``ArmConnectionError`` if not."""

    @abc.abstractmethod
    def read(self) -> tuple[ArmState, ArmState]:
        """Latest measured state of both arms. Never blocks on the robot."""

    @abc.abstractmethod
    def command(self, targets: tuple[ArmTarget, ArmTarget]) -> None:
        """Stream one Cartesian target (base frame of each arm) and gripper opening per arm.
        Raises ``ArmFaultError`` if either arm is faulted; nothing moves then."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop motion now; the arms stay stopped until the next ``command()``."""

    @abc.abstractmethod
    def fault(self, arm: int) -> Fault | None:
        """Current fault of ``arm`` (0 left, 1 right), or None."""

    @abc.abstractmethod
    def clear_fault(self) -> None:
        """Clear recoverable faults and re-enter the streaming mode. ``RecoveryRefused`` for
        operator-side faults (e-stop, pendant); ``ArmError`` if clearing failed."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop and disconnect. Idempotent."""

    def base_pose(self, arm: int) -> np.ndarray | None:
        """4x4 pose of arm ``arm``'s base in the world (table) frame, if the backend knows it (a
        simulated scene does); None for real arms, whose bases are calibrated: the arm node's
        ``left_base_pose`` / ``right_base_pose`` parameters."""
        return None

    def __enter__(self) -> "RigBackend":
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
