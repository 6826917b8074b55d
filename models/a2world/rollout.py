"""Chunk-by-chunk autoregressive rollout of A2World / A2World-sim (a2world_release_facts.md §3.5).

Each chunk is conditioned on the decoded last frame of the previous one (through uint8 pixels and
a fresh encode, as the reference does); A2World-sim additionally sees its sampled history.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from a2world.dit import A2WorldDiT, HistoryInputs
from a2world.history import HistoryBuffer
from a2world.sampler import FrameCondition, SamplerConfig, first_frame_mask, sample
from a2world.tokenizer import VideoTokenizer as Tokenizer  # the one tokenizer interface
from a2world.tokenizer import frames_to_unit

log = logging.getLogger(__name__)


@dataclass
class RolloutConfig:
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    seed: int = 0
    history_length: int = 20
    # §4.1: the history starts from this many copies of the first frame.
    initial_history_copies: int = 20


def to_unit(frames: np.ndarray) -> torch.Tensor:
    """uint8 (..., H, W, 3) -> float32 (..., 3, H, W) in [-1, 1] as x/127.5 - 1 (§3.4).

    Computed in bf16 like the release (uint8 -> bf16, /127.5, -1, each op rounding to bf16), so
    an fp32 rollout feeds the VAE the release's exact pixels; bf16 -> fp32 is exact.
    """
    t = torch.from_numpy(np.ascontiguousarray(frames))
    return frames_to_unit(t, torch.bfloat16).float().movedim(-1, -3)


def to_uint8(video: torch.Tensor) -> np.ndarray:
    """float (..., 3, H, W) in [-1, 1] -> uint8 (..., H, W, 3): clip((x+1)·127.5), truncated (§3.5)."""
    x = ((video.float() + 1.0) * 127.5).clamp(0.0, 255.0).to(torch.uint8)
    return x.movedim(-3, -1).cpu().numpy()


def _trim_to_latent_grid(frames: int, temporal: int) -> int:
    """Largest 1 + k·temporal <= frames: the causal VAE drops an incomplete tail (§4.2)."""
    return 1 + temporal * ((frames - 1) // temporal)


def encode_history_frames(
    tokenizer: Tokenizer, frames: Sequence[np.ndarray], single_video: bool, device: torch.device
) -> torch.Tensor:
    """Per-view history frames (Th, H, W, 3) -> latent (1, C, V·L, h, w), view-major.

    With `single_video` (reference quirk, §4.2) the views are concatenated in time and encoded as
    one causal video whose latents are split evenly per view; otherwise each view is encoded alone.
    """
    tc = tokenizer.temporal_compression
    if single_video:
        video = to_unit(np.concatenate(list(frames), axis=0)).to(device)  # (V·Th, 3, H, W)
        keep = _trim_to_latent_grid(video.shape[0], tc)
        latent = tokenizer.encode(video[:keep].transpose(0, 1)[None])
        if latent.shape[2] % len(frames):
            raise ValueError(f"{latent.shape[2]} history latents do not split into {len(frames)} views")
        return latent
    video = to_unit(np.stack(list(frames))).to(device)  # (V, Th, 3, H, W)
    keep = _trim_to_latent_grid(video.shape[1], tc)
    latent = tokenizer.encode(video[:, :keep].transpose(1, 2))  # (V, C, L, h, w)
    return latent.transpose(0, 1).reshape(1, latent.shape[1], -1, *latent.shape[-2:])


class WorldModelRollout:
    """Roll a world model forward over a sequence of 14-D actions, 20 per chunk."""

    def __init__(
        self, net: A2WorldDiT, tokenizer: Tokenizer, config: RolloutConfig | None = None
    ) -> None:
        self.net = net
        self.tokenizer = tokenizer
        self.config = config or RolloutConfig()
        if tokenizer.latent_channels != net.config.latent_channels:
            raise ValueError(
                f"tokenizer.latent_channels ({tokenizer.latent_channels}) != "
                f"net latent_channels ({net.config.latent_channels})"
            )

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def _check_inputs(self, images: Sequence[np.ndarray], view_ids: Sequence[int], actions: np.ndarray) -> None:
        cfg = self.net.config
        if len(images) != len(view_ids) or not 1 <= len(images) <= cfg.n_cameras_emb:
            raise ValueError(
                f"images and view_ids must have the same length in 1..{cfg.n_cameras_emb}, "
                f"got {len(images)} and {len(view_ids)}"
            )
        if len(set(view_ids)) != len(view_ids) or min(view_ids) < 0:
            raise ValueError(f"view_ids must be distinct non-negative ids, got {list(view_ids)}")
        shapes = {np.asarray(i).shape for i in images}
        if len(shapes) != 1:
            raise ValueError(f"images must share one shape, got {sorted(shapes)}")
        h, w, c = shapes.pop()
        step = self.tokenizer.spatial_compression * cfg.patch_spatial
        if c != 3 or h % step or w % step:
            raise ValueError(f"images must be (H, W, 3) uint8 with H, W multiples of {step}, got {(h, w, c)}")
        if actions.ndim != 2 or actions.shape[1] != cfg.action_width:
            raise ValueError(f"actions must be (N, {cfg.action_width}), got {actions.shape}")
        if len(actions) < cfg.action_chunk:
            raise ValueError(f"actions must hold at least one chunk of {cfg.action_chunk} rows")

    def run(
        self,
        images: Sequence[np.ndarray],
        view_ids: Sequence[int],
        actions: np.ndarray,
        on_chunk: Callable[[int, int], None] | None = None,
    ) -> np.ndarray:
        """Predict the video. images: per view uint8 (H, W, 3); actions: (N, 14).

        Returns uint8 (V, 1 + 20·n_chunks, H, W, 3): all 21 frames of chunk 0, frames 1..20 of
        each later chunk. An incomplete last chunk of actions is dropped (§3.5).
        """
        actions = np.asarray(actions, dtype=np.float32)
        self._check_inputs(images, view_ids, actions)
        cfg = self.net.config
        n_chunks = len(actions) // cfg.action_chunk
        if n_chunks * cfg.action_chunk != len(actions):
            log.warning("dropping %d trailing actions (incomplete chunk)", len(actions) % cfg.action_chunk)
        n_views = len(images)
        current = [np.asarray(i, dtype=np.uint8) for i in images]
        history = (
            HistoryBuffer(current, self.config.history_length, self.config.initial_history_copies)
            if cfg.use_history
            else None
        )
        video: list[np.ndarray] = [np.stack(current)[:, None]]
        for k in range(n_chunks):
            chunk = actions[k * cfg.action_chunk : (k + 1) * cfg.action_chunk]
            clips = self.predict_chunk(current, view_ids, chunk, history, self.config.seed + k)
            video.append(clips[:, 1:])
            current = [clips[v, -1] for v in range(n_views)]
            if history is not None:
                history.append([clips[v, 1:] for v in range(n_views)], chunk)
            if on_chunk is not None:
                on_chunk(k + 1, n_chunks)
        return np.concatenate(video, axis=1)

    def predict_chunk(
        self,
        current: Sequence[np.ndarray],
        view_ids: Sequence[int],
        chunk: np.ndarray,
        history: HistoryBuffer | None,
        seed: int,
    ) -> np.ndarray:
        """One chunk: uint8 (V, 21, H, W, 3) from each view's current frame, 20 actions and (for
        A2World-sim) the history so far, which the caller appends to (real frames, for a shadow)."""
        cfg, net = self.net.config, self.net
        chunk = np.asarray(chunk, dtype=np.float32)
        if chunk.shape != (cfg.action_chunk, cfg.action_width):
            raise ValueError(f"chunk must be ({cfg.action_chunk}, {cfg.action_width}), got {chunk.shape}")
        if cfg.use_history and history is None:
            raise ValueError("this model needs a history (A2World-sim); pass a HistoryBuffer")
        hist_inputs = None
        if cfg.use_history:
            frames, state, _ = history.select(chunk)
            latent = encode_history_frames(self.tokenizer, frames, cfg.quirks.history_single_video, self.device)
            hist_inputs = HistoryInputs(latent, torch.from_numpy(state)[None].to(self.device))
        view_ids_t = torch.tensor([list(view_ids)], device=self.device)
        cond = self._condition(current, view_ids_t, chunk, hist_inputs)
        with torch.no_grad():
            x0 = sample(net, cond, seed=seed, config=self.config.sampler)
            return self._decode(x0, len(current))  # (V, 21, H, W, 3) uint8

    def _condition(
        self,
        current: Sequence[np.ndarray],
        view_ids: torch.Tensor,
        chunk: np.ndarray,
        history: HistoryInputs | None,
    ) -> FrameCondition:
        """Clean latent with each view's current frame at latent 0.

        The reference encodes a 21-frame clip whose frames 1..20 are black; the VAE is causal, so
        latent 0 depends on frame 0 only (§1.7 step 6) and the other latents are never used.
        Encoding frame 0 alone gives the same conditioning for a fraction of the work.
        """
        cfg = self.net.config
        first = to_unit(np.stack(list(current)))[:, :, None].to(self.device)  # (V, 3, 1, H, W)
        lat0 = self.tokenizer.encode(first)  # (V, C, 1, h, w)
        v, c, _, h, w = lat0.shape
        clean = torch.zeros(v, c, cfg.state_t, h, w, device=self.device, dtype=torch.float32)
        clean[:, :, 0] = lat0[:, :, 0].float()
        clean = clean.transpose(0, 1).reshape(1, c, v * cfg.state_t, h, w)
        return FrameCondition(
            clean=clean,
            frame_mask=first_frame_mask(1, v, cfg.state_t, self.device),
            view_ids=view_ids,
            actions=torch.from_numpy(chunk)[None].to(self.device),
            history=history,
        )

    def _decode(self, x0: torch.Tensor, n_views: int) -> np.ndarray:
        """(1, C, V·T, h, w) -> uint8 (V, 21, H, W, 3), each view decoded separately."""
        _, c, vt, h, w = x0.shape
        per_view = x0.reshape(c, n_views, vt // n_views, h, w).transpose(0, 1)
        pixels = self.tokenizer.decode(per_view.to(torch.float32))
        return to_uint8(pixels.transpose(1, 2))  # (V, T, 3, H, W) -> (V, T, H, W, 3)
