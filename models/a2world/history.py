"""A2World-sim history at inference: arc-length-uniform frame sampling, the 22-D action-path
features, and the per-rollout bookkeeping (a2world_release_facts.md §4.1).

Nodes line up with frames: node i is frame i and action i moves node i to node i + 1, so a history
of n frames comes with n - 1 actions. Actions are 14-D dual-arm rows
[dx, dy, dz, droll, dpitch, dyaw, gripper] × 2 (§6.1).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

ACTION_WIDTH = 14
FEATURES = 22
# §4.1: translation / rotation scales of the tanh-squashed mean delta.
MEAN_TRANSLATION_SCALE = 0.05
MEAN_ROTATION_SCALE = 0.25
GRIPPER_INDEX = 6


def _check_actions(actions: np.ndarray, name: str = "actions") -> np.ndarray:
    a = np.asarray(actions, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != ACTION_WIDTH:
        raise ValueError(f"{name} must be (N, {ACTION_WIDTH}), got shape {a.shape}")
    return a


def step_lengths(actions: np.ndarray, rotation_weight: float = 0.25) -> np.ndarray:
    """Dual-arm step length per action: sqrt(|Δp_L|² + |Δp_R|² + w·(|Δr_L|² + |Δr_R|²)).

    Arm L is dims 0-5, arm R dims 7-12; grippers are ignored (§4.1, w = 0.25).
    """
    a = _check_actions(actions)
    trans = (a[:, 0:3] ** 2).sum(1) + (a[:, 7:10] ** 2).sum(1)
    rot = (a[:, 3:6] ** 2).sum(1) + (a[:, 10:13] ** 2).sum(1)
    return np.sqrt(trans + rotation_weight * rot)


def sample_history_indices(actions: np.ndarray, budget: int = 20, eps: float = 1e-8) -> np.ndarray:
    """Pick `budget` node indices spread uniformly in arc length over nodes 0..len(actions).

    Each target of linspace(0, s_end, budget) takes the nearest node (ties to the earlier node);
    duplicates are allowed; the first index is 0 and the last the final node. A total arc
    <= eps gives [0] * (budget - 1) + [last] (§4.1).
    """
    if budget < 2:
        raise ValueError(f"budget must be >= 2, got {budget}")
    lengths = step_lengths(actions)
    last = len(lengths)
    arc = np.concatenate([[0.0], np.cumsum(lengths)])
    if arc[-1] <= eps:
        return np.array([0] * (budget - 1) + [last], dtype=np.int64)
    targets = np.linspace(0.0, arc[-1], budget)
    idx = np.abs(arc[None, :] - targets[:, None]).argmin(axis=1)
    idx[0], idx[-1] = 0, last
    return idx.astype(np.int64)


def node_grippers(actions: np.ndarray) -> np.ndarray:
    """Gripper state at each node (len(actions) + 1 values).

    The gripper in action i is the absolute state reached at node i + 1; node 0 takes the first
    action's value (our reading of §4.1: the facts give no rule for the first node).
    """
    a = _check_actions(actions)
    g = a[:, GRIPPER_INDEX]
    return np.concatenate([g[:1], g]) if len(g) else np.zeros(1)


def action_path_features(
    actions: np.ndarray, slots: Sequence[int], targets: Sequence[int]
) -> np.ndarray:
    """22-D features of the path from each history slot node to each future target node.

    Returns (len(targets), len(slots), 22) float32. For target g and slot h the path covers
    actions h..g-1 (L = g - h edges, g > h). Per §4.1, only the first arm's motion (dims 0-5)
    and the gripper at dim 6 enter:
      [0:6]   mean delta, tanh(x/0.05) for translation and tanh(x/0.25) for rotation;
      [6:12]  mean |delta|;  [12:18] RMS delta;
      [18]    L / (total number of edges);  [19] gripper at h;  [20] gripper at g;
      [21]    fraction of all gripper toggles that lie on the path, a toggle being any change
              of the raw gripper value between consecutive nodes (the release's count, so a
              continuous gripper toggles at every step it moves).
    """
    a = _check_actions(actions)
    s = np.asarray(slots, dtype=np.int64)
    t = np.asarray(targets, dtype=np.int64)
    n_edges = len(a)
    if s.ndim != 1 or t.ndim != 1:
        raise ValueError("slots and targets must be 1-D index sequences")
    if s.min() < 0 or t.max() > n_edges:
        raise ValueError(f"slots/targets must lie in 0..{n_edges} (nodes of {n_edges} actions)")
    lengths = t[:, None] - s[None, :]
    if (lengths < 1).any():
        raise ValueError("every target must come after every history slot")
    motion = a[:, :6]
    zero = np.zeros((1, 6))
    c_sum = np.concatenate([zero, np.cumsum(motion, 0)])
    c_abs = np.concatenate([zero, np.cumsum(np.abs(motion), 0)])
    c_sq = np.concatenate([zero, np.cumsum(motion**2, 0)])
    grippers = node_grippers(a)
    toggles = (grippers[1:] != grippers[:-1]).astype(np.float64)
    c_tog = np.concatenate([[0.0], np.cumsum(toggles)])
    total_toggles = max(c_tog[-1], 1.0)

    def span(c: np.ndarray) -> np.ndarray:
        return c[t][:, None] - c[s][None, :]

    length = lengths[..., None].astype(np.float64)
    mean = span(c_sum) / length
    scale = np.array([MEAN_TRANSLATION_SCALE] * 3 + [MEAN_ROTATION_SCALE] * 3)
    out = np.empty((len(t), len(s), FEATURES), dtype=np.float64)
    out[..., 0:6] = np.tanh(mean / scale)
    out[..., 6:12] = span(c_abs) / length
    out[..., 12:18] = np.sqrt(span(c_sq) / length)
    out[..., 18] = lengths / max(n_edges, 1)
    out[..., 19] = grippers[s][None, :]
    out[..., 20] = grippers[t][:, None]
    out[..., 21] = span(c_tog) / total_toggles
    return out.astype(np.float32)


class HistoryBuffer:
    """Every frame so far per view and every executed action (§4.1 bookkeeping).

    Starts from `initial_copies` copies of each view's first frame and that many minus one zero
    actions. After each chunk, the 20 new frames and the chunk's 20 actions are appended.
    """

    def __init__(
        self, first_frames: Sequence[np.ndarray], history_length: int = 20, initial_copies: int = 20
    ) -> None:
        if initial_copies < 1:
            raise ValueError(f"initial_copies must be >= 1, got {initial_copies}")
        self.history_length = history_length
        self.frames: list[list[np.ndarray]] = [[np.asarray(f)] * initial_copies for f in first_frames]
        # §9 item 10: zero rows mean gripper 0, so the first real action usually counts as a toggle.
        self.actions = np.zeros((initial_copies - 1, ACTION_WIDTH), dtype=np.float64)

    @property
    def n_nodes(self) -> int:
        return len(self.actions) + 1

    def select(self, chunk_actions: np.ndarray) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
        """History for the next chunk.

        Returns (per-view frames (Th, H, W, 3), features (len(chunk), Th, 22), node indices).
        The future targets are the chunk's new nodes n..n+len(chunk)-1 past the current node.
        """
        chunk = _check_actions(chunk_actions, "chunk_actions")
        idx = sample_history_indices(self.actions, self.history_length)
        current = self.n_nodes - 1
        targets = current + 1 + np.arange(len(chunk))
        state = action_path_features(np.concatenate([self.actions, chunk]), idx, targets)
        frames = [np.stack([view[i] for i in idx]) for view in self.frames]
        return frames, state, idx

    def append(self, new_frames: Sequence[np.ndarray], chunk_actions: np.ndarray) -> None:
        """Add each view's new frames (len(chunk_actions), H, W, 3) and the executed actions."""
        chunk = _check_actions(chunk_actions, "chunk_actions")
        if len(new_frames) != len(self.frames):
            raise ValueError(f"new_frames must hold {len(self.frames)} views, got {len(new_frames)}")
        for view, frames in zip(self.frames, new_frames):
            if len(frames) != len(chunk):
                raise ValueError(f"each view needs {len(chunk)} new frames, got {len(frames)}")
            view.extend(np.asarray(f) for f in frames)
        self.actions = np.concatenate([self.actions, chunk])
