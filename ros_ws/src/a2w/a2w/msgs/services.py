"""Request and response types of the rig's control services, one pair per ``a2w_interfaces/srv/*``.

Components offer or call these services through ``NodeHandle.create_service`` / ``create_client``
on either host; ``a2w.ros.codec.SERVICES`` maps each pair to its ``.srv``.
"""

from __future__ import annotations

from dataclasses import dataclass

from a2w.msgs.arms import ControlMode


@dataclass(frozen=True)
class Outcome:
    """Response of the simple services: did it work, and a human-readable reason."""

    success: bool
    message: str = ""


@dataclass(frozen=True)
class SetControlModeRequest:
    """Hand the arms to ``mode``. ``requester`` names the caller (its node name): the arm node's
    ownership policy (``a2w.arms.ownership``) identifies sources by it. ``override`` is the
    operator's override of that policy (logged)."""

    mode: ControlMode
    requester: str = ""
    override: bool = False

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "mode", ControlMode(self.mode))
        except ValueError as exc:
            raise ValueError(f"mode: unknown control mode {self.mode!r}") from exc
        if not isinstance(self.requester, str):
            raise ValueError(f"requester: must be a string, got {type(self.requester).__name__}")
        if not isinstance(self.override, bool):
            raise ValueError(f"override: must be a bool, got {self.override!r}")


@dataclass(frozen=True)
class SetControlModeResponse:
    """``mode`` is the mode in force after the call (unchanged on refusal)."""

    success: bool
    mode: ControlMode
    message: str = ""

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "mode", ControlMode(self.mode))
        except ValueError as exc:
            raise ValueError(f"mode: unknown control mode {self.mode!r}") from exc


@dataclass(frozen=True)
class StartPolicyRequest:
    instruction: str

    def __post_init__(self) -> None:
        if not isinstance(self.instruction, str) or not self.instruction.strip():
            raise ValueError("instruction: must be a non-empty string")


@dataclass(frozen=True)
class SetInstructionRequest:
    """Condition the running policy's next chunks on ``instruction``."""

    instruction: str

    def __post_init__(self) -> None:
        if not isinstance(self.instruction, str) or not self.instruction.strip():
            raise ValueError("instruction: must be a non-empty string")


@dataclass(frozen=True)
class StopRequest:
    reason: str = ""


@dataclass(frozen=True)
class RecoverRequest:
    """Clear a recoverable fault on arm 0 (left), 1 (right) or both (``None``)."""

    arm: int | None = None

    def __post_init__(self) -> None:
        if self.arm not in (None, 0, 1):
            raise ValueError(f"arm: must be 0, 1 or None (both), got {self.arm!r}")
