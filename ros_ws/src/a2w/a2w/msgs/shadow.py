"""Messages of the shadow world model: its report per window (a2w_interfaces/msg/ShadowReport)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from a2w.msgs.checks import finite_scalar


@dataclass(frozen=True)
class ShadowReport:
    """Prediction versus reality over one window of executed motion. ``level``: 0 OK, 1 WARN, 2 ALARM.
    A view without usable frames scores inf (it cannot be judged nominal)."""

    stamp: float
    window: int
    views: tuple[str, ...]
    view_scores: tuple[float, ...]
    view_ssim: tuple[float, ...]
    score: float
    warn_threshold: float
    level: int
    horizon: float
    lag: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "stamp", finite_scalar("stamp", self.stamp))
        views = tuple(str(v) for v in self.views)
        scores = tuple(float(s) for s in self.view_scores)
        ssim = tuple(float(s) for s in self.view_ssim)
        if not (len(views) == len(scores) == len(ssim)):
            raise ValueError(f"views, view_scores and view_ssim must match: {len(views)}, {len(scores)}, {len(ssim)}")
        if any(math.isnan(s) for s in (*scores, self.score)):
            raise ValueError("scores: NaN (use inf for a view that could not be judged)")
        if self.level not in (0, 1, 2):
            raise ValueError(f"level: must be 0, 1 or 2, got {self.level!r}")
        if not isinstance(self.window, int) or self.window < 0:
            raise ValueError(f"window: must be a non-negative integer, got {self.window!r}")
        object.__setattr__(self, "views", views)
        object.__setattr__(self, "view_scores", scores)
        object.__setattr__(self, "view_ssim", ssim)

    @property
    def alarm(self) -> bool:
        return self.level == 2
