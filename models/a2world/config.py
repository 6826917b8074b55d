"""Configuration of the multi-view action-conditioned DiT (A2World and A2World-sim).

One dataclass describes both variants; the released 2B configuration and tiny configurations with
the same structure are built by the functions at the bottom. Every reference quirk is a field with
its reference behaviour as the default (a2world_release_facts.md §9).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from a2world.load_checks import JsonConfig

Variant = Literal["pretrained", "sim"]
VARIANTS: tuple[Variant, ...] = ("pretrained", "sim")


@dataclass(frozen=True)
class QuirkOptions:
    """Reference-code behaviours the released weights were trained or evaluated with.

    Defaults reproduce the reference. Each field names the fact it comes from.
    """

    # §1.3: RoPE buffers and angles are computed in bf16 in reference inference.
    rope_bf16_angles: bool = True
    # §1.3: fps modulation is active although the config flag says otherwise.
    rope_fps_modulation: bool = True
    # §1.4: the per-frame timestep is cast to bf16 before the sinusoid.
    timestep_bf16: bool = True
    # §4.4: the view-pair bias resizes the history-slot axis onto the query frames.
    vpb_swapped_axes: bool = True
    # §4.4: with batch > 1 the bias rows are expanded sample-major while the attention rows are
    # view-major, so samples receive each other's biases.
    vpb_batch_mixing: bool = True
    # §4.2: the multi-view history is VAE-encoded as one causal video and then split per view.
    history_single_video: bool = True
    # §4.3: the sim net casts the history latent and the 2-D sin-cos table to bf16 before the
    # history tokenizer whatever the net's dtype, so an fp32 net still sees bf16-rounded values.
    history_bf16_rounding: bool = True


def _numbers(value: Any) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, tuple) else (value,)


def _positive(value: Any) -> bool:
    """False only for a number (not a bool) that is not > 0, NaN included."""
    return not isinstance(value, (int, float)) or isinstance(value, bool) or value > 0


@dataclass(frozen=True)
class DiTConfig(JsonConfig):
    """Hyper-parameters of the backbone (a2world_release_facts.md §1.1)."""

    variant: Variant = "pretrained"
    model_channels: int = 2048
    num_blocks: int = 28
    num_heads: int = 16
    mlp_ratio: float = 4.0
    patch_spatial: int = 2
    patch_temporal: int = 1
    latent_channels: int = 16
    view_condition_dim: int = 7
    n_cameras_emb: int = 4
    max_img_h: int = 240
    max_img_w: int = 240
    max_frames: int = 128
    state_t: int = 6
    adaln_lora_dim: int = 256
    crossattn_emb_channels: int = 1024
    action_chunk: int = 20
    action_width: int = 14
    # Hidden width of the three action MLPs and the pretrained-only modules; the release uses
    # mlp_ratio · model_channels (8192).
    action_hidden: int | None = None
    # RoPE (§1.3)
    rope_h_extrapolation_ratio: float = 3.0
    rope_w_extrapolation_ratio: float = 3.0
    rope_t_extrapolation_ratio: float = 0.25
    rope_base_fps: float = 24.0
    fps: float = 10.0
    norm_eps: float = 1e-6
    # A2World-sim history path (§2.3, §4.3, §4.4)
    history_conv_channels: int = 128
    history_pe_dim: int = 128
    history_pose_in: int = 102
    history_pose_hidden: int = 256
    history_gate_in: int = 6
    history_latents_per_view: int = 5
    history_frames_per_view: int = 20
    vpb_features: int = 22
    vpb_hidden: int = 128
    vpb_clamp: float = 10.0
    # Pretrained-only `black_to_crossattn_emb` (§2.2): pooled token grid.
    black_pool: tuple[int, int, int] = (16, 12, 8)
    quirks: QuirkOptions = field(default_factory=QuirkOptions)

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        # Every size, rate and scale here is positive; 0 or less would fail later, far from the cause.
        nonpositive = [
            f"{f.name}={getattr(self, f.name)!r}"
            for f in dataclasses.fields(self)
            if not all(_positive(v) for v in _numbers(getattr(self, f.name)))
        ]
        if nonpositive:
            raise ValueError(f"DiTConfig fields must be positive: {', '.join(nonpositive)}")
        if self.model_channels % self.num_heads:
            raise ValueError(
                f"model_channels ({self.model_channels}) must be divisible by "
                f"num_heads ({self.num_heads})"
            )
        if self.head_dim % 2 or self.head_dim < 12:
            raise ValueError(f"head_dim must be even and >= 12, got {self.head_dim}")

    @property
    def use_history(self) -> bool:
        return self.variant == "sim"

    @property
    def use_black(self) -> bool:
        # Only the pretrained class builds the module (§1.1 `use_black`).
        return self.variant == "pretrained"

    @property
    def head_dim(self) -> int:
        return self.model_channels // self.num_heads

    @property
    def mlp_hidden(self) -> int:
        return int(self.model_channels * self.mlp_ratio)

    @property
    def action_hidden_dim(self) -> int:
        return self.action_hidden if self.action_hidden is not None else self.mlp_hidden

    @property
    def action_dim(self) -> int:
        return self.action_chunk * self.action_width

    @property
    def patch_in_channels(self) -> int:
        # [latent | condition mask | padding mask | view embedding] (§1.2)
        return self.latent_channels + 2 + self.view_condition_dim

    @property
    def patch_in_features(self) -> int:
        return self.patch_in_channels * self.patch_spatial**2 * self.patch_temporal

    @property
    def patch_out_features(self) -> int:
        return self.latent_channels * self.patch_spatial**2 * self.patch_temporal


def released_config(variant: Variant) -> DiTConfig:
    """The 2B configuration of the released checkpoints (a2world_release_facts.md §1.1)."""
    return DiTConfig(variant=variant)


def tiny_config(variant: Variant, **overrides: Any) -> DiTConfig:
    """Same structure as the release at a size that runs on a CPU in milliseconds.

    Width 128 with 2 heads of 64 keeps the RoPE split (20/20/24) non-trivial; small latent
    images (e.g. 8×8 latents, 4×4 tokens per frame) are the caller's choice.
    """
    base: dict[str, Any] = dict(
        variant=variant,
        model_channels=128,
        num_blocks=2,
        num_heads=2,
        adaln_lora_dim=32,
        crossattn_emb_channels=64,
        action_hidden=256,
        history_conv_channels=32,
        history_pe_dim=32,
        history_pose_hidden=32,
        vpb_hidden=32,
        black_pool=(2, 2, 2),
    )
    base.update(overrides)
    return DiTConfig(**base)
