"""The level of a ``DiagnosticStatus``, with the values of diagnostic_msgs/DiagnosticStatus.

Dependency-free on purpose: message types, hosts and components all import it.
"""

from __future__ import annotations

import enum


class DiagnosticLevel(enum.IntEnum):
    """OK < WARN < ERROR, then STALE (no recent report); an int on the wire and in comparisons."""

    OK = 0
    WARN = 1
    ERROR = 2
    STALE = 3

    def __str__(self) -> str:
        # Diagnostics values are strings: "1" on every Python (3.10's IntEnum would give the name).
        return str(self.value)
