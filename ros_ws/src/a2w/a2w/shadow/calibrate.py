"""``a2w shadow calibrate``: thresholds from nominal recorded episodes.

Each episode is replayed through the shadow's own windowing: a keyframe every third 30 Hz row (the
row's frames at the model's size), the 10 Hz actions composed from the rows' measured states, a fresh
history per episode. Every window's overall score is collected; the thresholds are their conformal
quantiles for the stated false-alarm rates (``a2w.shadow.alarm``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from a2w.msgs.cameras import VIEW_IDS
from a2w.shadow.alarm import Thresholds, conformal_rank
from a2w.shadow.motion import CHUNK, COMPOSE, actions_10hz
from a2w.shadow.predictor import FREEZE_WEIGHT, Keyframe, ShadowPredictor, Window, window_starts
from a2w.shadow.scores import overall

log = logging.getLogger(__name__)


@dataclass
class Calibration:
    thresholds: Thresholds
    scores: list[float]
    episodes: int
    windows: int


def episode_windows(frames: dict[str, np.ndarray], state: np.ndarray, stride: int = CHUNK) -> list[Window]:
    """Windows of one recorded episode, one every ``stride`` keyframes: ``frames`` view -> (N, H, W, 3)
    at the model's size, ``state`` (N, 16) measured poses per 30 Hz row (the recorder's observation.state)."""
    n = len(state)
    poses = np.asarray(state, dtype=np.float64).reshape(n, 2, 8)
    span = CHUNK * COMPOSE
    out = []
    for w, key in enumerate(window_starts((n - 1) // COMPOSE + 1 if n else 0, stride)):
        start = key * COMPOSE
        rows = range(start, start + span + 1, COMPOSE)
        keys = [Keyframe(r / 30.0, {v: f[r] for v, f in frames.items()}) for r in rows]
        out.append(Window(w, keys, actions_10hz(poses[start:start + span + 1]), stride))
    return out


def calibrate(predictor_factory: Callable[[], ShadowPredictor], episodes: Sequence[tuple[dict, np.ndarray]],
              warn_alpha: float, alarm_alpha: float,
              progress: Callable[[int, int], None] | None = None, stride: int = CHUNK) -> Calibration:
    """Score every window of every episode (a fresh predictor, so a fresh history, per episode)."""
    windows = [episode_windows(frames, state, stride) for frames, state in episodes]
    n = sum(len(w) for w in windows)
    if not n:
        raise ValueError(f"no complete {CHUNK / 10:.0f} s window in {len(episodes)} episode(s)")
    for alpha in (warn_alpha, alarm_alpha):
        conformal_rank(n, alpha)  # too few windows fails now, not after minutes of scoring
    scores: list[float] = []
    for i, wins in enumerate(windows):
        predictor = predictor_factory()
        for win in wins:
            scores.append(overall(predictor.score(win)))
        if progress is not None:
            progress(i + 1, len(episodes))
    return Calibration(Thresholds.fit(scores, warn_alpha, alarm_alpha), scores, len(episodes), len(scores))


def run(checkpoint: Path, datasets: Sequence[Path], out: Path, views: Sequence[str], image_size: tuple[int, int],
        steps: int, warn_alpha: float, alarm_alpha: float, latent_weight: float, seed: int = 0,
        max_episodes: int | None = None, stride: int = CHUNK, freeze_weight: float = FREEZE_WEIGHT) -> Calibration:
    from a2w.shadow.predictor import load_rollout
    from a2w.train.data import DataConfig, load_episodes

    rollout = load_rollout(checkpoint, image_size, steps, seed)
    cfg = DataConfig(image_size=image_size, views=tuple(views), max_episodes=max_episodes)
    episodes = []
    for root in datasets:
        eps, _ = load_episodes(root, cfg)
        episodes += [(e.frames, e.state) for e in eps]
    view_ids = [VIEW_IDS[v] for v in views]

    def progress(i: int, n: int) -> None:
        log.info("calibrated on %d/%d episodes", i, n)

    result = calibrate(lambda: ShadowPredictor(rollout, views, view_ids, latent_weight, seed,
                                               freeze_weight=freeze_weight), episodes,
                       warn_alpha, alarm_alpha, progress, stride)
    result.thresholds.save(out)
    return result
