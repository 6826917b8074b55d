"""Deterministic synthetic rows for the recorder's tests (numpy only: the LeRobot venv imports it).

Each frame carries its episode, row and view in a pattern H.264 keeps: a flat colour per view and
episode, and a white bar whose position moves with the row, so a decoded frame matches its own
row far better than either neighbour (a shifted frame is caught, not just a wrong one).
"""

from __future__ import annotations

import numpy as np

VIEWS = ("left_wrist", "right_wrist", "front")
W, H = 96, 64


def frame(episode: int, row: int, view: int, w: int = W, h: int = H) -> np.ndarray:
    rng = np.random.default_rng(episode * 1000 + view)
    base = rng.integers(40, 160, size=3).astype(np.uint8)
    img = np.empty((h, w, 3), np.uint8)
    img[:] = base
    x = (row * 5) % (w - 12)
    img[:, x:x + 12] = 255
    y = (row * 3) % (h - 8)
    img[y:y + 8, :, 1] = 0
    return img


def state(episode: int, row: int) -> np.ndarray:
    t = row / 30.0
    s = np.zeros(16, np.float32)
    for a in range(2):
        s[a * 8:a * 8 + 3] = [0.3 + 0.01 * episode + 0.05 * np.sin(t), 0.1 * a, 0.2 + 0.02 * t]
        s[a * 8 + 6] = 1.0  # identity quaternion (x, y, z, w)
        s[a * 8 + 7] = 0.5 + 0.4 * np.cos(t)
    return s
