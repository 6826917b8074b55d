"""A tiny synthetic dataset in the recorder's layout, written with the recorder's own writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from a2w.msgs.cameras import VIEW_NAMES
from a2w.record.writer import DatasetWriter, Row

W = H = 32


def pose(episode: int, r: int) -> np.ndarray:
    """(16,) both arms: a slow sweep with a turn, the grippers closing halfway."""
    out = []
    for arm in (0, 1):
        phase = 0.05 * r + episode + arm
        p = [0.4 + 0.05 * np.sin(phase), (-0.2 if arm == 0 else 0.2) + 0.002 * r, 0.3 + 0.001 * r]
        q = Rotation.from_euler("xyz", [np.pi, 0.02 * r, 0.3 * np.sin(phase)]).as_quat()
        out += [*p, *q, 1.0 if r < 20 else 0.2]
    return np.array(out)


def image(episode: int, r: int, view: int) -> np.ndarray:
    """A bright square on a per-view background that moves with the left arm's x."""
    img = np.full((H, W, 3), 40 + 60 * view, np.uint8)
    x = int(4 + (pose(episode, r)[0] - 0.35) * 200) % (W - 8)
    y = (r // 2) % (H - 8)
    img[y:y + 8, x:x + 8] = (230, 200 - 50 * view, 60)
    return img


def write_dataset(root: Path, lengths: tuple[int, ...] = (40, 40), views: tuple[str, ...] = VIEW_NAMES,
                  task: str = "lift the box with both arms") -> Path:
    t0 = 1.7e9
    with DatasetWriter(root, views, W, H) as w:
        for e, n in enumerate(lengths):
            ep = w.begin_episode(task, seed=100 + e)
            for r in range(n):
                images = {v: image(e, r, k) for k, v in enumerate(views)}
                stamps = np.array([t0 + r / 30.0] * len(views))
                ep.add_row(Row(images, pose(e, r), np.zeros(14), pose(e, r + 1), stamps,
                               np.zeros(len(views), bool), t0 + r / 30.0, t0 + r / 30.0))
            ep.save()
    return root
