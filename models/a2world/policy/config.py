"""Configuration of A2World-policy: the backbone's DiTConfig plus the action stream.

The policy predicts 60 actions at 30 Hz and 20 future frames per view at 10 fps from the current
frame of every view and an instruction (paper §3.3, supplement §6.2). The released-size and tiny
configurations share one structure; only widths, depths and horizons change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from a2world.config import DiTConfig, released_config, tiny_config
from a2world.load_checks import JsonConfig

# paper supplement §6.2: σ_v = √6·σ_base, σ_a = 0.5·σ_base
SIGMA_SCALE_VIDEO = math.sqrt(6.0)
SIGMA_SCALE_ACTION = 0.5


@dataclass(frozen=True)
class PolicyConfig(JsonConfig):
    """Hyper-parameters of A2World-policy.

    `backbone` is the A2World DiT configuration whose video path the policy keeps unchanged;
    its `variant` must be "pretrained" (the policy has no history path).
    """

    backbone: DiTConfig = field(default_factory=lambda: released_config("pretrained"))
    action_horizon: int = 60
    action_width: int = 14
    action_rate_hz: float = 30.0
    # Hidden width of each block's action MLP as a multiple of the model width; None copies the
    # video MLP exactly (4.0). A smaller ratio keeps the first hidden units of the video MLP.
    action_mlp_ratio: float | None = None
    # Joint self-attention: video rows may read action columns (decision in `a2world.policy.model`).
    video_attends_actions: bool = True
    # Instruction context length (T5 tokens) fed to every block's cross-attention.
    text_tokens: int = 512
    # Wan2.1 VAE: one latent per 4 pixel frames after the first (wan_vae_facts.md).
    temporal_compression: int = 4
    # Longest clean action prefix seen in training (training-time RTC's d_max).
    max_prefix: int = 20
    sigma_scale_video: float = SIGMA_SCALE_VIDEO
    sigma_scale_action: float = SIGMA_SCALE_ACTION
    sigma_data: float = 1.0
    # a2world_release_facts.md §1.7 / paper §6.1: conditioning tokens sit at σ_cond.
    sigma_cond: float = 1e-4

    def __post_init__(self) -> None:
        if self.backbone.variant != "pretrained":
            raise ValueError(f"backbone.variant must be 'pretrained', got {self.backbone.variant!r}")
        if self.action_horizon < 1 or self.action_width < 1:
            raise ValueError(
                f"action_horizon and action_width must be >= 1, got {self.action_horizon}, {self.action_width}"
            )
        if not 0 <= self.max_prefix < self.action_horizon:
            raise ValueError(f"max_prefix must be in 0..{self.action_horizon - 1}, got {self.max_prefix}")
        if self.action_mlp_ratio is not None and not 0 < self.action_mlp_ratio <= self.backbone.mlp_ratio:
            raise ValueError(
                f"action_mlp_ratio must be in (0, {self.backbone.mlp_ratio}], got {self.action_mlp_ratio}"
            )
        video_s = (self.pixel_frames - 1) / self.backbone.fps
        action_s = self.action_horizon / self.action_rate_hz
        if not math.isclose(video_s, action_s, rel_tol=1e-9):
            raise ValueError(
                f"the action horizon ({self.action_horizon} at {self.action_rate_hz} Hz = {action_s} s) must "
                f"span the predicted video ({self.pixel_frames - 1} frames at {self.backbone.fps} fps = {video_s} s)"
            )

    # ------------------------------------------------------------------ derived sizes
    @property
    def latent_frames(self) -> int:
        """Latent frames per view per chunk (conditioning latent included)."""
        return self.backbone.state_t

    @property
    def pixel_frames(self) -> int:
        """Pixel frames per view per chunk, frame 0 being the observation."""
        return 1 + self.temporal_compression * (self.backbone.state_t - 1)

    @property
    def predicted_frames(self) -> int:
        return self.pixel_frames - 1

    @property
    def actions_per_latent(self) -> float:
        """Action steps per latent frame: 30 Hz / 10 fps · 4 = 12 in the real-rig setup."""
        return self.action_rate_hz / self.backbone.fps * self.temporal_compression

    @property
    def action_mlp_hidden(self) -> int:
        ratio = self.backbone.mlp_ratio if self.action_mlp_ratio is None else self.action_mlp_ratio
        return int(self.backbone.model_channels * ratio)

    @property
    def context_dim(self) -> int:
        return self.backbone.crossattn_emb_channels

    @property
    def action_sigma_ratio(self) -> float:
        """σ_a / σ_v under the shared-timestep coupling."""
        return self.sigma_scale_action / self.sigma_scale_video


def released_policy_config(**overrides: Any) -> PolicyConfig:
    """Released-size policy: the 2B A2World backbone plus full-width action branches.

    With exact copies of the video MLPs (ratio 4) this is 3.54B parameters; the paper reports
    3.0B (§4.1), between `action_mlp_ratio=1.0` (2.84B) and 2.0 (3.07B). Same code for all.
    """
    return PolicyConfig(backbone=released_config("pretrained"), **overrides)


def tiny_policy_config(state_t: int = 6, action_horizon: int | None = None, **overrides: Any) -> PolicyConfig:
    """Same structure at CPU size: width 128, 2 blocks, 64-dim context of 8 tokens.

    The default keeps the real time structure (6 latents = 20 frames at 10 fps, 60 actions at
    30 Hz); a smaller `state_t` shortens both (the horizon follows unless given).
    """
    backbone_overrides = overrides.pop("backbone_overrides", {})
    backbone = tiny_config("pretrained", state_t=state_t, **backbone_overrides)
    frames = 4 * (state_t - 1)
    horizon = action_horizon if action_horizon is not None else frames * 3
    base: dict[str, Any] = dict(
        backbone=backbone,
        action_horizon=horizon,
        text_tokens=8,
        max_prefix=min(20, horizon // 3),
    )
    base.update(overrides)
    return PolicyConfig(**base)
