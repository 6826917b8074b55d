"""The shadow's verdict over a whole run, logged when the node stops (``make demo`` ends with it).

The node keeps only its last 100 reports (for /diagnostics); this keeps what the verdict needs from
every report: how many, the worst level reached, each entry into ALARM and the lag of each report
behind the node's clock (sim time in the sim, wall time on a rig).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from a2w.msgs.shadow import ShadowReport
from a2w.shadow.alarm import Level

# Where a reader finds more than the verdict (the node's topics; the monitor's .rrd holds both).
WHERE = ("per-window scores on /shadow/report, the node's counters on /diagnostics (shadow_node), "
         "its re-predicted frames on /shadow/predicted/<view>/color/image_raw; the monitor's .rrd keeps them")
MAX_LAGS = 100_000  # ~55 h of 2 s windows: bounded memory on a rig that runs for days


@dataclass
class ShadowSummary:
    """Fed every report the node publishes (``add``); ``text`` is the verdict."""

    reports: int = 0
    worst: Level = Level.OK
    alarms: list[tuple[float, float]] = field(default_factory=list)  # (stamp, score) of each entry into ALARM
    unjudged: int = 0  # windows with a view that could not be scored (inf)
    lags: deque[float] = field(default_factory=lambda: deque(maxlen=MAX_LAGS))
    _level: Level = Level.OK

    def add(self, report: ShadowReport) -> None:
        level = Level(report.level)
        self.reports += 1
        self.worst = max(self.worst, level)
        if level is Level.ALARM and self._level is not Level.ALARM:
            self.alarms.append((report.stamp, report.score))
        self._level = level
        self.unjudged += not math.isfinite(report.score)
        if math.isfinite(report.lag):
            self.lags.append(report.lag)

    @property
    def lag_median(self) -> float:
        return float(np.median(self.lags)) if self.lags else math.nan

    @property
    def lag_max(self) -> float:
        return max(self.lags) if self.lags else math.nan

    def text(self, calibrated: bool, skipped: int = 0, failed: int = 0, off: str = "") -> str:
        """The verdict: a first line starting ``shadow verdict:``, then where to look. ``off``: why the
        node never ran (no checkpoint); ``calibrated``: without thresholds the level cannot rise, and the
        verdict says so rather than claim OK."""
        if off:
            return f"shadow verdict: off ({off}): no reports\n  where: {WHERE}"
        if not self.reports:
            head = "shadow verdict: no reports (a window is 2 s of executed motion; none was finished and predicted)"
        else:
            level = self.worst.name if calibrated else "OK (uncalibrated: no thresholds, the level cannot rise)"
            alarms = ", ".join(f"{t:.1f} s (score {s:.3f})" for t, s in self.alarms[:5])
            more = f" and {len(self.alarms) - 5} more" if len(self.alarms) > 5 else ""
            head = (f"shadow verdict: {self.reports} reports, worst level {level}, {len(self.alarms)} alarm(s)"
                    f"{': at ' + alarms + more if alarms else ''}; lag behind the clock median "
                    f"{self.lag_median:.2f} s, max {self.lag_max:.2f} s")
        extra = [f"{n} {what}" for n, what in ((skipped, "windows skipped (worker behind)"),
                                              (failed, "failed"), (self.unjudged, "unjudged (a view missing)"))
                 if n]
        return head + (f"; {', '.join(extra)}" if extra else "") + f"\n  where: {WHERE}"
