"""Windows of executed motion and their scores: the shadow's model side, shared by the live node and
``a2w shadow calibrate`` (which replays recorded episodes through it).

A window is 21 keyframes 0.1 s apart (its start and the 20 times A2World-sim predicts) with the 20
executed 10 Hz actions between them. ``ShadowPredictor.score`` predicts the window from its first
keyframe, the actions and the history of real frames so far, scores each view against the real
frames, then appends the window's real frames and actions to the history.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from a2w.shadow.motion import CHUNK
from a2w.shadow.scores import ViewScore, view_score

TOKENIZER_FILE = "tokenizer.safetensors"


@dataclass
class Keyframe:
    stamp: float
    frames: dict[str, np.ndarray] | None  # view -> uint8 (H, W, 3) at the model's size; None: not paired
    note: str = ""


@dataclass
class Window:
    index: int
    keys: list[Keyframe]  # 21: the start and the 20 predicted times
    actions: np.ndarray  # (20, 14) executed, 10 Hz


def load_rollout(checkpoint: str | Path, image_size: tuple[int, int], steps: int, seed: int,
                 device: str = "cpu") -> Any:
    """An A2World-sim ``WorldModelRollout`` from a checkpoint directory (model + tokenizer.safetensors);
    errors name the directory and what does not fit."""
    from a2world.checkpoint import load_checkpoint
    from a2world.rollout import RolloutConfig, WorldModelRollout
    from a2world.sampler import SamplerConfig
    from a2world.tokenizer import WanTokenizer

    d = Path(checkpoint).expanduser()
    net = load_checkpoint(d, device)
    if not net.config.use_history:
        raise ValueError(f"{d}: a {net.config.variant} checkpoint; the shadow needs A2World-sim (history-aware)")
    tok = WanTokenizer.from_checkpoint(d / TOKENIZER_FILE, dtype=None, device=device)
    step = tok.spatial_compression * net.config.patch_spatial
    if image_size[0] % step or image_size[1] % step:
        raise ValueError(f"image_size: {list(image_size)} must be multiples of {step}")
    return WorldModelRollout(net, tok, RolloutConfig(sampler=SamplerConfig(num_steps=steps), seed=seed))


class ShadowPredictor:
    """Predicts and scores windows in order, keeping the history of real frames and executed actions."""

    def __init__(self, rollout: Any, views: Sequence[str], view_ids: Sequence[int], latent_weight: float = 1.0,
                 seed: int = 0, max_history: int = 0) -> None:
        self.rollout = rollout
        self.views, self.view_ids = tuple(views), tuple(view_ids)
        self.latent_weight, self.seed = float(latent_weight), int(seed)
        # The release keeps every frame of an episode (HistoryBuffer); a shadow that runs for hours must not:
        # at 64x64 that is ~1.3 GB per hour for three views. Past ``max_history`` 10 Hz nodes (0: no bound)
        # the history starts again from the next window, as it does after a gap in the frames.
        self.max_history = int(max_history)
        self.restarts = 0
        self.history: Any = None  # a2world.history.HistoryBuffer, from the first full window
        self.last_prediction: np.ndarray | None = None  # (V, 21, H, W, 3) uint8 of the last scored window

    def extend(self, win: Window) -> None:
        """Append the window's real frames and actions to the history without predicting it."""
        from a2world.history import HistoryBuffer

        if any(k.frames is None for k in win.keys):
            self.history = None  # a gap in the real frames: start the history again at the next full window
            return
        if self.history is None:
            self.history = HistoryBuffer([win.keys[0].frames[v] for v in self.views])
        self.history.append([[k.frames[v] for k in win.keys[1:]] for v in self.views], win.actions)
        if self.max_history and self.history.n_nodes > self.max_history:
            self.history = None
            self.restarts += 1

    def score(self, win: Window) -> list[ViewScore]:
        """Each view's score for ``win`` (inf for a view without its frames), then extend the history."""
        import torch

        from a2world.history import HistoryBuffer

        start = win.keys[0]
        if start.frames is None:
            self.extend(win)
            return [ViewScore(v, math.nan, 0.0, math.inf) for v in self.views]
        if self.history is None:
            self.history = HistoryBuffer([start.frames[v] for v in self.views])
        scores: list[ViewScore] = []
        with torch.inference_mode():
            clips = self.rollout.predict_chunk([start.frames[v] for v in self.views], self.view_ids, win.actions,
                                               self.history, self.seed + win.index)
            self.last_prediction = clips
            for i, v in enumerate(self.views):
                real = [key.frames[v] for key in win.keys[1:] if key.frames is not None]
                if len(real) < CHUNK:
                    scores.append(ViewScore(v, math.nan, 0.0, math.inf))
                    continue
                pred = clips[i, 1:]
                latent = self._latent_mse(pred[-1], real[-1]) if self.latent_weight else 0.0
                scores.append(view_score(v, pred, np.stack(real), latent, self.latent_weight))
        self.extend(win)
        return scores

    def _latent_mse(self, predicted: np.ndarray, real: np.ndarray) -> float:
        from a2world.rollout import to_unit

        tok = self.rollout.tokenizer
        x = to_unit(np.stack([predicted, real]))[:, :, None].to(self.rollout.device)  # (2, 3, 1, H, W)
        lat = tok.encode(x.to(getattr(tok, "dtype", x.dtype)))
        return float((lat[0].float() - lat[1].float()).pow(2).mean())
