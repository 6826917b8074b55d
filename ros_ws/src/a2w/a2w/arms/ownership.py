"""Who owns the arms: idle, hold, teleop or policy (DESIGN.md §2).

Only the owner's targets are accepted. Every change passes through HOLD, so the arms are held
still between two owners and no owner inherits the other's motion; every transition is recorded
with its reason.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass

from a2w.types import ControlMode

log = logging.getLogger(__name__)

STREAMING_MODES = frozenset({ControlMode.TELEOP, ControlMode.POLICY})


@dataclass(frozen=True)
class Transition:
    stamp: float
    old: ControlMode
    new: ControlMode
    reason: str

    def __str__(self) -> str:
        return f"{self.old.value}->{self.new.value} ({self.reason})"


def parse_mode(value: object) -> ControlMode:
    """ControlMode from a mode or its name; ValueError naming the field otherwise."""
    try:
        return ControlMode(value)
    except ValueError:
        raise ValueError(
            f"mode: unknown control mode {value!r}; one of {[m.value for m in ControlMode]}") from None


class Ownership:
    """The current mode and the transition log."""

    def __init__(self, mode: ControlMode = ControlMode.IDLE, history: int = 64,
                 logger: logging.Logger | None = None) -> None:
        self.mode = mode
        self.history: deque[Transition] = deque(maxlen=history)
        self._log = logger or log

    def accepts(self, source: ControlMode) -> bool:
        """True if targets from ``source`` may move the arms now."""
        return self.mode in STREAMING_MODES and source == self.mode

    def request(self, new: ControlMode | str, reason: str, stamp: float) -> list[Transition]:
        """Switch to ``new`` (through HOLD); returns the transitions made (empty if already there)."""
        new = parse_mode(new)
        if not reason or not str(reason).strip():
            raise ValueError("reason: a mode change needs a reason (it is logged)")
        if new == self.mode:
            return []
        steps = [new] if ControlMode.HOLD in (self.mode, new) else [ControlMode.HOLD, new]
        made = []
        for step in steps:
            tr = Transition(stamp, self.mode, step, reason)
            self.mode = step
            self.history.append(tr)
            self._log.info("arms mode %s", tr)
            made.append(tr)
        return made
