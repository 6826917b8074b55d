"""3D rotary position embedding over (t, h, w) latent patches (a2world_release_facts.md §1.3).

The head dimension is split into t, h and w channel groups; the 128-dim (head_dim) angle vector
is laid out as [t | h | w] twice and applied in the non-interleaved "rotate-half" form, so
channel i rotates with channel i + head_dim/2. Every camera gets the same positions.
"""

from __future__ import annotations

import torch
from torch import nn

from a2world.config import DiTConfig


def rope_split(head_dim: int) -> tuple[int, int, int]:
    """(dim_t, dim_h, dim_w) channel counts; dim_h = dim_w = head_dim // 6 * 2."""
    dim_h = head_dim // 6 * 2
    return head_dim - 2 * dim_h, dim_h, dim_h


def ntk_theta(ratio: float, dim: int, base: float = 10000.0) -> float:
    """NTK-scaled RoPE base: base · ratio^(dim / (dim - 2))."""
    return base * ratio ** (dim / (dim - 2))


class RotaryPosition3D(nn.Module):
    """One RoPE table generator (one per supported camera count in the checkpoint).

    The three buffers exist because the released checkpoints store them; the angles are always
    regenerated from the formula, so stored bf16 values are never trusted.
    """

    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        self.config = config
        dim_t, dim_h, _ = rope_split(config.head_dim)
        self.dim_t, self.dim_hw = dim_t, dim_h
        seq_len = max(
            config.max_img_h // config.patch_spatial,
            config.max_img_w // config.patch_spatial,
            config.max_frames // config.patch_temporal,
        )
        self.register_buffer("seq", torch.arange(seq_len, dtype=torch.float32))
        self.register_buffer("dim_spatial_range", self.spatial_range())
        self.register_buffer("dim_temporal_range", self.temporal_range())

    def spatial_range(self) -> torch.Tensor:
        return torch.arange(0, self.dim_hw, 2)[: self.dim_hw // 2].float() / self.dim_hw

    def temporal_range(self) -> torch.Tensor:
        return torch.arange(0, self.dim_t, 2)[: self.dim_t // 2].float() / self.dim_t

    def reference_buffers(self, dtype: torch.dtype = torch.bfloat16) -> dict[str, torch.Tensor]:
        """The buffer values a build cast to `dtype` stores (used to check checkpoints)."""
        seq = torch.arange(self.seq.numel(), dtype=torch.float32)
        return {
            "seq": seq.to(dtype),
            "dim_spatial_range": self.spatial_range().to(dtype),
            "dim_temporal_range": self.temporal_range().to(dtype),
        }

    def angles(
        self,
        t: int,
        h: int,
        w: int,
        fps: float | None = None,
        device: torch.device | str | None = None,
        bf16: bool | None = None,
    ) -> torch.Tensor:
        """Rotation angles (t·h·w, head_dim) in float32 for one camera, token order (t, h, w).

        With `bf16` (default: the config's quirk) the arithmetic runs in bf16 exactly as the
        reference does after casting the whole net to bf16 (§1.3), then the angles are upcast.
        """
        cfg = self.config
        bf16 = cfg.quirks.rope_bf16_angles if bf16 is None else bf16
        fps = cfg.fps if fps is None else fps
        dtype = torch.bfloat16 if bf16 else torch.float32
        n = max(t, h, w, self.seq.numel())
        seq = torch.arange(n, dtype=torch.float32, device=device).to(dtype)
        spatial = self.spatial_range().to(device=device, dtype=dtype)
        temporal = self.temporal_range().to(device=device, dtype=dtype)

        theta_h = ntk_theta(cfg.rope_h_extrapolation_ratio, self.dim_hw)
        theta_w = ntk_theta(cfg.rope_w_extrapolation_ratio, self.dim_hw)
        theta_t = ntk_theta(cfg.rope_t_extrapolation_ratio, self.dim_t)
        freqs_h = 1.0 / (theta_h**spatial)
        freqs_w = 1.0 / (theta_w**spatial)
        freqs_t = 1.0 / (theta_t**temporal)

        pos_t = seq[:t]
        if cfg.quirks.rope_fps_modulation:
            # §1.3: positions are t · base_fps / fps, divided first, as the reference does.
            pos_t = pos_t / fps * cfg.rope_base_fps
        half_t = torch.outer(pos_t, freqs_t)
        half_h = torch.outer(seq[:h], freqs_h)
        half_w = torch.outer(seq[:w], freqs_w)
        grid = [
            half_t[:, None, None, :].expand(t, h, w, -1),
            half_h[None, :, None, :].expand(t, h, w, -1),
            half_w[None, None, :, :].expand(t, h, w, -1),
        ]
        table = torch.cat(grid * 2, dim=-1)
        return table.reshape(t * h * w, -1).float()


class MultiCameraRope(nn.ModuleDict):
    """`pos_embedder_options.n_cameras_{1..N}`: per-camera-count RoPE modules (§1.1)."""

    def __init__(self, config: DiTConfig) -> None:
        super().__init__(
            {f"n_cameras_{n}": RotaryPosition3D(config) for n in range(1, config.n_cameras_emb + 1)}
        )

    def angles(
        self, n_views: int, t: int, h: int, w: int, device: torch.device | str | None = None
    ) -> torch.Tensor:
        """Angles (n_views·t·h·w, head_dim): the one-camera table repeated per view."""
        key = f"n_cameras_{n_views}"
        if key not in self:
            raise ValueError(f"n_views must be in 1..{len(self)}, got {n_views}")
        return self[key].angles(t, h, w, device=device).repeat(n_views, 1)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate (B, heads, N, head_dim) by angles (N, head_dim); fp32 math, input dtype out."""
    xf = x.float()
    out = xf * angles.cos() + rotate_half(xf) * angles.sin()
    return out.to(x.dtype)
