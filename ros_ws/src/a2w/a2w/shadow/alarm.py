"""Calibrated alarm levels with hysteresis.

Calibration: on scores of nominal episodes, the threshold for a false-alarm rate ``alpha`` is the
conformal quantile, the ceil((n + 1)(1 - alpha))-th smallest of the n scores: a new nominal score
exceeds it with probability at most alpha when scores are exchangeable (split conformal
prediction; with n < 1/alpha - 1 no finite threshold has that guarantee and calibration refuses).
WARN uses ``warn_alpha``, ALARM ``alarm_alpha``.

Hysteresis: a level is entered after ``enter`` consecutive scores above its threshold and left after
``leave`` consecutive scores below ``release`` times it, so one noisy frame neither raises nor clears.
"""

from __future__ import annotations

import enum
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np


class Level(enum.IntEnum):
    OK = 0
    WARN = 1
    ALARM = 2


def conformal_rank(n: int, alpha: float) -> int:
    """The 1-based rank among ``n`` sorted nominal scores whose value bounds the false-alarm rate by
    ``alpha``; ``ValueError`` when ``n`` is too few (checked before scoring: scoring takes minutes)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    k = math.ceil((n + 1) * (1 - alpha))
    if k > n:
        raise ValueError(f"{n} nominal scores cannot give a false-alarm rate of {alpha}: need at least "
                         f"{math.ceil(1 / alpha) - 1}")
    return k


def conformal_threshold(scores: Sequence[float], alpha: float) -> float:
    s = np.sort(np.asarray(scores, dtype=np.float64))
    k = conformal_rank(len(s), alpha)
    if not np.all(np.isfinite(s)):
        raise ValueError("calibration scores must be finite")
    return float(s[k - 1])


@dataclass(frozen=True)
class Thresholds:
    warn: float
    alarm: float
    warn_alpha: float = 0.1
    alarm_alpha: float = 0.02
    n: int = 0  # nominal scores they were fitted on

    def __post_init__(self) -> None:
        if not (math.isfinite(self.warn) and math.isfinite(self.alarm) and 0 <= self.warn <= self.alarm):
            raise ValueError(f"thresholds must be finite with 0 <= warn <= alarm, got {self.warn}, {self.alarm}")

    @classmethod
    def fit(cls, scores: Sequence[float], warn_alpha: float = 0.1, alarm_alpha: float = 0.02) -> Thresholds:
        return cls(conformal_threshold(scores, warn_alpha), conformal_threshold(scores, alarm_alpha),
                   warn_alpha, alarm_alpha, len(scores))

    def save(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Thresholds:
        try:
            return cls(**json.loads(Path(path).read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise ValueError(f"{path}: not shadow thresholds ({exc})") from None


class AlarmState:
    """The current level, updated one score at a time."""

    def __init__(self, thresholds: Thresholds, enter: int = 2, leave: int = 3, release: float = 0.8) -> None:
        if enter < 1 or leave < 1 or not 0 < release <= 1:
            raise ValueError(f"need enter >= 1, leave >= 1, 0 < release <= 1; got {enter}, {leave}, {release}")
        self.t, self.enter, self.leave, self.release = thresholds, enter, leave, release
        self.level = Level.OK
        self._above = {Level.WARN: 0, Level.ALARM: 0}
        self._below = 0
        self.alarms = 0

    def _threshold(self, level: Level) -> float:
        return self.t.alarm if level is Level.ALARM else self.t.warn

    def update(self, score: float) -> Level:
        """Feed one score (a non-finite score counts as above every threshold: it is not nominal)."""
        bad = not math.isfinite(score)
        for lv in (Level.WARN, Level.ALARM):
            self._above[lv] = self._above[lv] + 1 if bad or score > self._threshold(lv) else 0
        target = next((lv for lv in (Level.ALARM, Level.WARN) if self._above[lv] >= self.enter), None)
        if target is not None and target > self.level:
            self.level = target
            self._below = 0
            self.alarms += target is Level.ALARM
            return self.level
        if self.level is not Level.OK:
            below = not bad and score < self.release * self._threshold(self.level)
            self._below = self._below + 1 if below else 0
            if self._below >= self.leave:
                self.level = Level(self.level - 1)
                self._below = 0
        return self.level
