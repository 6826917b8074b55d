"""Messages of health reporting: a component's status and its level (diagnostic_msgs/DiagnosticStatus)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Mapping

from a2w.msgs.checks import finite_scalar


class DiagnosticLevel(enum.IntEnum):
    """OK < WARN < ERROR, then STALE (no recent report); an int on the wire and in comparisons."""

    OK = 0
    WARN = 1
    ERROR = 2
    STALE = 3

    def __str__(self) -> str:
        # Diagnostics values are strings: "1" on every Python (3.10's IntEnum would give the name).
        return str(self.value)


@dataclass(frozen=True)
class DiagnosticStatus:
    """Health of one component (maps to diagnostic_msgs/DiagnosticStatus)."""

    name: str
    level: DiagnosticLevel  # an int of the enum's values is accepted and converted
    message: str
    values: Mapping[str, str]
    stamp: float

    def __post_init__(self) -> None:
        try:
            level = DiagnosticLevel(self.level)
        except ValueError:
            raise ValueError(
                f"level: must be 0 (OK), 1 (WARN), 2 (ERROR) or 3 (STALE), got {self.level!r}") from None
        object.__setattr__(self, "level", level)
        object.__setattr__(self, "values", {str(k): str(v) for k, v in self.values.items()})
        object.__setattr__(self, "stamp", finite_scalar("stamp", self.stamp))
