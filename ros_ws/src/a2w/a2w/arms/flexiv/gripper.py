"""Robotiq 2F-85 behind the Flexiv controller: the ways it can be wired, opening<->width mapping,
and the completion rule. Stdlib only: the RDK worker process imports it.

How the rig wires the 2F-85 is an open question (flexiv_facts.md §3.2, §9.2): through the robot
as an Elements *Device* (RDK ``Gripper``, path A) or straight from the host over Modbus-RTU
(path B). The interface must therefore be chosen in config (``flexiv.gripper_interface``);
"unset" refuses to start.
"""

from __future__ import annotations

INTERFACES = ("unset", "rdk_device", "modbus_rtu", "none")
STROKE_M = 0.085  # 2F-85 nominal stroke; the RDK's params() range wins when available (§3.2)
DEADBAND_M = 0.002  # width changes below this are not re-sent (2 mm, §3.1)


def open_to_width(gripper_open: float, min_width: float, max_width: float) -> float:
    """gripper_open in [0, 1] (1 = fully open, docs/architecture.md §5) -> finger width (m)."""
    g = min(max(float(gripper_open), 0.0), 1.0)
    return min_width + g * (max_width - min_width)


def width_to_open(width: float, min_width: float, max_width: float) -> float:
    span = max_width - min_width
    if span <= 0:
        return 1.0
    return min(max((float(width) - min_width) / span, 0.0), 1.0)


def clamp_to_range(value: float, lo: float, hi: float) -> float:
    """RDK ``Move`` raises ValueError outside ``params()`` ranges (§3.1): clamp first."""
    return min(max(value, lo), hi)


class MoveTracker:
    """Completion of one ``Move``: done when the fingers report not moving, or the width stayed
    within 2 mm for 0.5 s (flexiv_gripper's rule, flexiv_facts.md §3.1); failed after a timeout."""

    def __init__(self, target: float, started: float, tolerance: float = 0.002,
                 settle: float = 0.5, timeout: float = 10.0) -> None:
        self.target = target
        self.started = started
        self.tolerance = tolerance
        self.settle = settle
        self.timeout = timeout
        self._anchor: tuple[float, float] | None = None  # (width, since)
        self.result = ""  # "" running, "reached", "stalled", "timeout"

    def update(self, width: float, is_moving: bool, now: float) -> str:
        if self.result:
            return self.result
        if self._anchor is None or abs(width - self._anchor[0]) > self.tolerance:
            self._anchor = (width, now)
        steady = now - self._anchor[1] >= self.settle
        if (not is_moving and now - self.started > 0.05) or steady:
            self.result = "reached" if abs(width - self.target) <= self.tolerance else "stalled"
        elif now - self.started > self.timeout:
            self.result = "timeout"
        return self.result
