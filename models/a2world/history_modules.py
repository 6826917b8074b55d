"""A2World-sim's history modules inside the net (a2world_release_facts.md §2.3, §4.3, §4.4).

`HistoryTokenizer` turns history latents into cross-attention / memory tokens; `ViewPairBias`
turns the 22-D action-path features into an additive cross-attention bias.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def sincos_2d(h: int, w: int, dim: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Fixed 2D embedding (h·w, dim) on coordinates linspace(-1, 1): [y-part | x-part], each
    [sin | cos] (§4.3).

    The frequency ladder is not stated in the facts; this uses the common 1/10000^(k/(dim/4)),
    k = 0..dim/4-1 (an assumption: any mismatch only shifts a learned input projection's input).
    """
    quarter = dim // 4
    freqs = 1.0 / 10000.0 ** (torch.arange(quarter, dtype=torch.float32, device=device) / quarter)
    ys = torch.linspace(-1.0, 1.0, h, device=device)
    xs = torch.linspace(-1.0, 1.0, w, device=device)
    ay = ys[:, None] * freqs  # (h, q)
    ax = xs[:, None] * freqs  # (w, q)
    y_part = torch.cat([ay.sin(), ay.cos()], dim=-1)[:, None, :].expand(h, w, 2 * quarter)
    x_part = torch.cat([ax.sin(), ax.cos()], dim=-1)[None, :, :].expand(h, w, 2 * quarter)
    return torch.cat([y_part, x_part], dim=-1).reshape(h * w, 4 * quarter)


class HistoryTokenizer(nn.Module):
    """`PoseAwareHistoryTokenizer` in "conv" mode. The pose and gate branches exist in the
    checkpoint but the reference calls the tokenizer with `state=None`, so they are skipped.

    `bf16_rounding` (quirk `history_bf16_rounding`) rounds the 2-D sin-cos table through bf16
    even in an fp32 net, as the release does; the latent's rounding is the caller's (the net's).
    """

    def __init__(
        self,
        latent_channels: int,
        dim: int,
        conv_channels: int,
        pe_dim: int,
        pose_in: int,
        pose_hidden: int,
        gate_in: int,
        bf16_rounding: bool = True,
    ) -> None:
        super().__init__()
        self.bf16_rounding = bf16_rounding
        self.down = nn.Sequential(
            nn.Conv2d(latent_channels, conv_channels, 3, stride=2, padding=1),
            nn.SiLU(),
            nn.Conv2d(conv_channels, dim, 1),
        )
        self.pose_mlp = nn.Sequential(nn.Linear(pose_in, pose_hidden), nn.SiLU(), nn.Linear(pose_hidden, dim))
        self.gate = nn.Sequential(nn.Linear(gate_in, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.pe2d_proj = nn.Linear(pe_dim, dim)
        self.pe_dim = pe_dim

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """latent (B, C, F, h, w) -> tokens (B, F·(h/2)·(w/2), dim) ordered (frame, y, x)."""
        b, c, f, h, w = latent.shape
        frames = latent.transpose(1, 2).reshape(b * f, c, h, w)
        feat = self.down(frames)  # (B·F, dim, h/2, w/2)
        _, d, hh, ww = feat.shape
        tokens = feat.flatten(2).transpose(1, 2).reshape(b, f, hh * ww, d)
        pe = sincos_2d(hh, ww, self.pe_dim, latent.device)
        if self.bf16_rounding:
            pe = pe.to(torch.bfloat16)  # §4.3: the release casts the table to bf16 before projecting
        pe = pe.to(self.pe2d_proj.weight.dtype)
        tokens = tokens + self.pe2d_proj(pe)
        return tokens.reshape(b, f * hh * ww, d)


class ViewPairBias(nn.Module):
    """`vpb`: 22-D features -> per (query frame, history frame) logit bias (§4.4)."""

    def __init__(self, features: int, hidden: int, clamp: float) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(features, hidden), nn.SiLU(), nn.Linear(hidden, 1))
        self.clamp = clamp

    def forward(
        self,
        state: torch.Tensor,
        query_frames: int,
        history_frames: int,
        query_tokens_per_frame: int,
        history_tokens_per_frame: int,
        swapped_axes: bool = True,
    ) -> torch.Tensor:
        """state (B, Tf future targets, Ts history slots, F) -> bias (B, Tq·Sq, Th·Sh)."""
        if state.dim() != 4:
            raise ValueError(f"state must be (B, future, slots, features), got {tuple(state.shape)}")
        if swapped_axes:
            # §4.4 quirk: the history-slot axis lands on the query frames, future on history.
            grid = state.permute(0, 3, 2, 1)
        else:
            grid = state.permute(0, 3, 1, 2)
        grid = F.interpolate(
            grid, size=(query_frames, history_frames), mode="bilinear", align_corners=False
        )
        bias = self.mlp(grid.permute(0, 2, 3, 1)).squeeze(-1).clamp(-self.clamp, self.clamp)
        bias = bias.repeat_interleave(query_tokens_per_frame, dim=1)
        return bias.repeat_interleave(history_tokens_per_frame, dim=2)
