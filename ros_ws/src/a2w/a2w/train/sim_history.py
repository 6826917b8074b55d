"""A2World-sim's inputs from a recorded episode: the 10 Hz executed actions and the history an
A2World-sim rollout holds at a given row, shared by ``a2w train worldmodel-sim`` and
``a2w eval worldmodel`` so that training sees exactly what inference builds.

Nodes are the episode's rows on the 10 Hz grid that ends at the clip's first row ``start``:
``start % 3, start % 3 + 3, ..., start``. The action between two nodes is the executed motion,
the measured poses' 30 Hz deltas composed three at a time (``a2w.shadow.motion.actions_10hz``, the
convention the shadow feeds A2World-sim live). The history is the one a rollout started at the
first node and fed the real frames would hold at ``start`` (``a2world.history.HistoryBuffer``:
copies of the first frame, then every node up to and including the current one), and the clip's
own chunk is the executed motion of the K actions after ``start``.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from a2w.shadow.motion import COMPOSE, actions_10hz

__all__ = ["node_rows", "executed_actions", "episode_history", "history_inputs"]


def node_rows(start: int) -> np.ndarray:
    """The 10 Hz grid rows of an episode up to ``start``, oldest first."""
    if start < 0:
        raise ValueError(f"start must be >= 0, got {start}")
    return np.arange(start % COMPOSE, start + 1, COMPOSE)


def executed_actions(state: np.ndarray, start: int, count: int) -> np.ndarray:
    """(count, 14) executed 10 Hz actions from row ``start``: measured pose at ``start + 3i`` to
    ``start + 3(i + 1)``. ``state`` is the episode's (N, 16) measured poses on the 30 Hz grid."""
    end = start + COMPOSE * count
    if count < 1 or start < 0 or end >= len(state):
        raise ValueError(f"{count} actions from row {start} need rows up to {end}; the episode has {len(state)}")
    return actions_10hz(np.asarray(state[start:end + 1], dtype=np.float64).reshape(-1, 2, 8)).astype(np.float32)


def episode_history(frames: Mapping[str, np.ndarray], state: np.ndarray, start: int, views: Sequence[str],
                    history_length: int = 20, initial_copies: int = 20):  # noqa: ANN201 - a2world.history.HistoryBuffer
    """The history of real frames an A2World-sim rollout holds at row ``start`` (module docstring)."""
    from a2world.train.worldmodel_sim import history_from_past

    rows = node_rows(start)
    n = len(rows) - 1
    actions = executed_actions(state, int(rows[0]), n) if n else np.zeros((0, 14), np.float32)
    return history_from_past([np.asarray(frames[v])[rows] for v in views], actions, history_length, initial_copies)


def history_inputs(tokenizer, frames: Mapping[str, np.ndarray], state: np.ndarray, start: int,  # noqa: ANN001
                   views: Sequence[str], chunk: np.ndarray, single_video: bool, history_length: int = 20,
                   initial_copies: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """(history latent (C, V·L, h, w), features (K, Th, 22)) of the clip at ``start`` with its chunk:
    ``HistoryBuffer.select`` and ``encode_history_frames``, the calls ``WorldModelRollout`` makes."""
    import torch

    from a2world.rollout import encode_history_frames

    buf = episode_history(frames, state, start, views, history_length, initial_copies)
    selected, features, _ = buf.select(chunk)
    with torch.no_grad():
        device = getattr(tokenizer, "device", torch.device("cpu"))
        latent = encode_history_frames(tokenizer, selected, single_video, device)
    return latent[0].float().numpy(), features
