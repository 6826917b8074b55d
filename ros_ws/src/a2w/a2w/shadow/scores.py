"""Per-view divergence between predicted and real frames: structure (SSIM, in pixels) and content
(distance of the tokenizer's latents), combined into one score per view and overall.

SSIM is Wang et al. 2004 on luminance with the usual constants (K1 0.01, K2 0.03, L 255) and a
7×7 uniform window (skimage's default; scikit-image is not a dependency, this is the same formula).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

C1, C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
WINDOW = 7


def _luma(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"images must be uint8 (H, W, 3), got {img.dtype} {img.shape}")
    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float64)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two uint8 RGB frames of one size, on luminance; 1 for identical frames."""
    if np.shape(a) != np.shape(b):
        raise ValueError(f"frames differ in shape: {np.shape(a)} vs {np.shape(b)}")
    x, y = _luma(a), _luma(b)
    box = (WINDOW, WINDOW)
    mx, my = cv2.blur(x, box), cv2.blur(y, box)
    sxx = cv2.blur(x * x, box) - mx * mx
    syy = cv2.blur(y * y, box) - my * my
    sxy = cv2.blur(x * y, box) - mx * my
    n = WINDOW * WINDOW
    sxx, syy, sxy = sxx * n / (n - 1), syy * n / (n - 1), sxy * n / (n - 1)  # sample covariance, as skimage
    num = (2 * mx * my + C1) * (2 * sxy + C2)
    den = (mx * mx + my * my + C1) * (sxx + syy + C2)
    r = WINDOW // 2
    return float((num / den)[r:-r or None, r:-r or None].mean())


# A still image through this many keyframes of motion (0.3 s) is a frozen stream; fewer could be a camera
# repeating a frame or two of its own under load.
FROZEN_MIN_KEYS = 3


def frozen_seconds(frames: np.ndarray, moving: np.ndarray, period: float,
                   sources: Sequence[float] | None = None) -> float:
    """The longest stretch (s) over which a view's consecutive ``frames`` (n + 1, H, W, 3) stayed
    bit-identical through steps in which ``moving`` (n,) says the rig moved; stretches shorter than
    ``FROZEN_MIN_KEYS`` steps count 0. A real sensor's noise never repeats an image exactly, and a
    rendered view changes whenever an arm moves (``a2w.shadow.motion.MOVE_MM``). With ``sources`` (n + 1
    camera stamps), a step that holds the same camera frame again (late or dropped, not frozen) neither
    counts nor breaks a stretch: a frozen camera keeps sending new stamps."""
    if len(frames) != len(moving) + 1 or (sources is not None and len(sources) != len(frames)):
        raise ValueError(f"need one more frame (and source stamp) than steps, got {len(frames)} frames, "
                         f"{len(moving)} steps and {'no' if sources is None else len(sources)} stamps")
    run = best = 0
    for i, m in enumerate(moving):
        if sources is not None and sources[i + 1] == sources[i]:
            continue
        run = run + 1 if m and np.array_equal(frames[i], frames[i + 1]) else 0
        best = max(best, run)
    return best * period if best >= FROZEN_MIN_KEYS else 0.0


@dataclass(frozen=True)
class ViewScore:
    view: str
    ssim: float  # mean over the compared frames
    latent: float  # mean squared latent difference (0 when not computed)
    score: float  # (1 - ssim) + latent_weight * latent + freeze_weight * frozen: 0 = prediction matches
    frozen: float = 0.0  # seconds the real view stood still while the rig moved (frozen_seconds)


def view_score(view: str, predicted: np.ndarray, real: np.ndarray, latent_mse: float = 0.0,
               latent_weight: float = 1.0, frozen: float = 0.0, freeze_weight: float = 0.0) -> ViewScore:
    """Score of one view over matched frame pairs (n, H, W, 3) each."""
    if len(predicted) != len(real) or len(real) == 0:
        raise ValueError(f"need matched, non-empty frame lists, got {len(predicted)} and {len(real)}")
    s = float(np.mean([ssim(p, r) for p, r in zip(predicted, real)]))
    return ViewScore(view, s, float(latent_mse),
                     (1.0 - s) + latent_weight * float(latent_mse) + freeze_weight * float(frozen), float(frozen))


def overall(scores: list[ViewScore]) -> float:
    """The worst view: one camera that disagrees with the prediction is enough to look."""
    return max(s.score for s in scores)
