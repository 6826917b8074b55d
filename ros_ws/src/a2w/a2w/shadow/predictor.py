"""Windows of executed motion and their scores: the shadow's model side, shared by the live node and
``a2w shadow calibrate`` (which replays recorded episodes through it).

A window is 21 keyframes 0.1 s apart (its start and the 20 times A2World-sim predicts) with the 20
executed 10 Hz actions between them. ``ShadowPredictor.score`` predicts the window from its first
keyframe, the actions and the history of real frames so far, scores each view against the real
frames, then appends the window's real frames and actions to the history.

The shadow's "ahead" prediction (the policy's planned chunk rolled out before it is executed) uses
``history_until`` (the history as it was at the chunk's observation, read-only), ``predict`` and
``compare``: it never appends to the history, which holds only real frames and executed actions.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from a2w.msgs.cameras import VIEW_ARMS
from a2w.shadow.motion import CHUNK, KEYFRAME_PERIOD, moving_steps
from a2w.shadow.scores import ViewScore, frozen_seconds, view_score

TOKENIZER_FILE = "tokenizer.safetensors"
# Score per second of a view frozen through motion (scores.frozen_seconds): 0.3 s alone (0.9) is above
# any calibrated ALARM threshold so far (0.4-0.7); nominal windows never have any, so calibration is unmoved.
FREEZE_WEIGHT = 3.0


@dataclass
class Keyframe:
    stamp: float
    frames: dict[str, np.ndarray] | None  # view -> uint8 (H, W, 3) at the model's size; None: not paired
    note: str = ""
    # view -> the camera stamp of its frame: the live node pairs a camera's last frame again when one is
    # late or dropped; None (replays) means every keyframe holds a new frame of every view
    sources: dict[str, float] | None = None


@dataclass
class Window:
    index: int
    keys: list[Keyframe]  # 21: the start and the 20 predicted times
    actions: np.ndarray  # (20, 14) executed, 10 Hz
    # Keyframes to the next window's start: the history moves on by this many after the window (each
    # keyframe once); less than 20 makes windows overlap, so a fault is scored sooner after it starts.
    advance: int = CHUNK

    def __post_init__(self) -> None:
        if not 1 <= self.advance <= CHUNK:
            raise ValueError(f"advance: 1..{CHUNK} keyframes, got {self.advance}")


# The shadow's default stride (the node's, calibrate's and eval's): a window every 0.5 s judged a fault
# 0.44 s after onset (median) against 0.71 s for back-to-back 2 s windows (issue 18 note); a machine
# slower than that predicts the newest window as often as it can.
STRIDE = 5


def window_starts(n_keys: int, stride: int) -> range:
    """Indices of the keyframes that start a window among ``n_keys`` (each window needs 21)."""
    if not 1 <= stride <= CHUNK:
        raise ValueError(f"stride: 1..{CHUNK} keyframes, got {stride}")
    return range(0, n_keys - CHUNK, stride)


def load_rollout(checkpoint: str | Path, image_size: tuple[int, int], steps: int, seed: int,
                 device: str = "cpu", fast_vae: bool = True) -> Any:
    """An A2World-sim ``WorldModelRollout`` from a checkpoint directory (model + tokenizer.safetensors);
    errors name the directory and what does not fit. ``fast_vae`` runs the tokenizer as a
    ``SinglePassTokenizer`` (same numbers up to float rounding, about half the time on a CPU);
    False keeps the release's streaming tokenizer (``bench/shadow_window.py`` compares the two)."""
    from a2world.checkpoint import load_checkpoint
    from a2world.rollout import RolloutConfig, WorldModelRollout
    from a2world.sampler import SamplerConfig
    from a2world.tokenizer import SinglePassTokenizer, WanTokenizer

    d = Path(checkpoint).expanduser()
    net = load_checkpoint(d, device)
    if not net.config.use_history:
        raise ValueError(f"{d}: a {net.config.variant} checkpoint; the shadow needs A2World-sim (history-aware)")
    tok = WanTokenizer.from_checkpoint(d / TOKENIZER_FILE, dtype=None, device=device)
    step = tok.spatial_compression * net.config.patch_spatial
    if image_size[0] % step or image_size[1] % step:
        raise ValueError(f"image_size: {list(image_size)} must be multiples of {step}")
    return WorldModelRollout(net, SinglePassTokenizer(tok) if fast_vae else tok,
                             RolloutConfig(sampler=SamplerConfig(num_steps=steps), seed=seed))


class ShadowPredictor:
    """Predicts and scores windows in order, keeping the history of real frames and executed actions."""

    def __init__(self, rollout: Any, views: Sequence[str], view_ids: Sequence[int], latent_weight: float = 1.0,
                 seed: int = 0, max_history: int = 0, freeze_weight: float = FREEZE_WEIGHT) -> None:
        self.rollout = rollout
        self.views, self.view_ids = tuple(views), tuple(view_ids)
        self.latent_weight, self.seed = float(latent_weight), int(seed)
        self.freeze_weight = float(freeze_weight)
        # The release keeps every frame of an episode (HistoryBuffer); a shadow that runs for hours must not:
        # at 64x64 that is ~1.3 GB per hour for three views. Past ``max_history`` 10 Hz nodes (0: no bound)
        # the history starts again from the next window, as it does after a gap in the frames.
        self.max_history = int(max_history)
        self.restarts = 0
        self.history: Any = None  # a2world.history.HistoryBuffer, from the first full window
        self.node_stamps: list[float] = []  # the clock time of each history node (ahead: history_until)
        self.last_prediction: np.ndarray | None = None  # (V, 21, H, W, 3) uint8 of the last scored window

    def extend(self, win: Window) -> None:
        """Append the window's real frames and actions up to the next window's start (``win.advance``)
        to the history without predicting it."""
        keys = win.keys[:win.advance + 1]
        if any(k.frames is None for k in keys):
            self.history = None  # a gap in the real frames: start the history again at the next full window
            return
        if self.history is None:
            self._start(keys[0])
        self.history.append([[k.frames[v] for k in keys[1:]] for v in self.views], win.actions[:win.advance])
        self.node_stamps.extend(k.stamp for k in keys[1:])
        if self.max_history and self.history.n_nodes > self.max_history:
            self.history = None
            self.restarts += 1

    def _start(self, key: Keyframe) -> None:
        from a2world.history import HistoryBuffer

        self.history = HistoryBuffer([key.frames[v] for v in self.views])
        self.node_stamps = [key.stamp] * self.history.n_nodes  # the first frame's copies

    def history_until(self, stamp: float) -> Any:
        """The history as it stood at ``stamp``: its nodes up to that time (the history object itself
        when all are), never appended to. None without a history; ``ValueError`` when the history
        (re)started after ``stamp``, so it holds nothing from before it."""
        if self.history is None:
            return None
        n = int(np.searchsorted(np.asarray(self.node_stamps), stamp + 1e-6, side="right"))
        if n == 0:
            raise ValueError(f"{stamp:.3f} is older than the history (it starts at {self.node_stamps[0]:.3f})")
        if n == self.history.n_nodes:
            return self.history  # HistoryBuffer.select reads only
        past = copy.copy(self.history)  # list slices share the frames: no image is copied
        past.frames = [view[:n] for view in self.history.frames]
        past.actions = self.history.actions[: n - 1]
        return past

    def predict(self, start: dict[str, np.ndarray], actions: np.ndarray, history: Any, seed: int) -> np.ndarray:
        """(V, 21, H, W, 3) uint8 predicted from each view's ``start`` frame, 20 actions and ``history``
        (a fresh one from the start frames when None); the predictor's own history is not touched."""
        import torch

        from a2world.history import HistoryBuffer

        current = [start[v] for v in self.views]
        with torch.inference_mode():
            return self.rollout.predict_chunk(current, self.view_ids, actions,
                                              history if history is not None else HistoryBuffer(current), seed)

    def compare(self, clips: np.ndarray, real: Sequence[dict[str, np.ndarray] | None],
                frozen: dict[str, float] | None = None) -> list[ViewScore]:
        """Each view's score of predicted ``clips`` (V, 21, ...) against the 20 ``real`` frame sets after
        the start (None: not paired; a view short of 20 real frames scores inf), plus ``freeze_weight``
        times its ``frozen`` seconds (``frozen_in``; none for a plan not yet executed)."""
        import torch

        paired = {v: [r[v] for r in real if r is not None] for v in self.views}
        full = [i for i, v in enumerate(self.views) if len(paired[v]) >= CHUNK]
        latents: dict[int, float] = {}
        if self.latent_weight and full:
            with torch.inference_mode():
                mse = self._latent_mses([clips[i, -1] for i in full], [paired[self.views[i]][-1] for i in full])
            latents = dict(zip(full, mse))
        scores: list[ViewScore] = []
        for i, v in enumerate(self.views):
            if i not in full:
                scores.append(ViewScore(v, math.nan, 0.0, math.inf))
                continue
            scores.append(view_score(v, clips[i, 1:], np.stack(paired[v]), latents.get(i, 0.0), self.latent_weight,
                                     (frozen or {}).get(v, 0.0), self.freeze_weight))
        return scores

    def frozen_in(self, win: Window) -> dict[str, float]:
        """Per view, how long its real frames stood still through motion it sees for sure (s: its own arm's
        for a wrist camera, either arm's for the front one, ``VIEW_ARMS``); none for a window with an
        unpaired keyframe (its views score inf anyway). Not any arm's for every view: at the sim's low
        resolutions a still arm's wrist camera can render the same image while the other arm moves."""
        if not self.freeze_weight or any(k.frames is None for k in win.keys):
            return {}
        out = {}
        for v in self.views:
            moving = moving_steps(win.actions, VIEW_ARMS.get(v, ()))
            sources = None if any(k.sources is None for k in win.keys) else [k.sources[v] for k in win.keys]
            out[v] = frozen_seconds(np.stack([k.frames[v] for k in win.keys]), moving, KEYFRAME_PERIOD, sources)
        return out

    def score(self, win: Window) -> list[ViewScore]:
        """Each view's score for ``win`` (inf for a view without its frames), then extend the history."""
        start = win.keys[0]
        if start.frames is None:
            self.extend(win)
            return [ViewScore(v, math.nan, 0.0, math.inf) for v in self.views]
        if self.history is None:
            self._start(start)
        clips = self.predict(start.frames, win.actions, self.history, self.seed + win.index)
        self.last_prediction = clips
        scores = self.compare(clips, [key.frames for key in win.keys[1:]], self.frozen_in(win))
        self.extend(win)
        return scores

    def _latent_mses(self, predicted: Sequence[np.ndarray], real: Sequence[np.ndarray]) -> list[float]:
        """Mean squared latent difference of each (predicted, real) frame pair. All pairs go through the
        tokenizer as one batch of single-frame clips (its batch elements never interact), one call instead
        of one per view."""
        from a2world.rollout import to_unit

        tok = self.rollout.tokenizer
        n = len(predicted)
        x = to_unit(np.stack([*predicted, *real]))[:, :, None].to(self.rollout.device)  # (2n, 3, 1, H, W)
        lat = tok.encode(x.to(getattr(tok, "dtype", x.dtype))).float()
        return [float((lat[i] - lat[n + i]).pow(2).mean()) for i in range(n)]
