"""Input and conditioning modules outside the blocks (a2world_release_facts.md §1.2, §1.4, §2.2).

Patch embedding of the 25-channel input, the timestep sinusoid and its AdaLN-LoRA MLP, the action
MLPs, the final layer with unpatchify, and the (unused by the release rollout) "blacks" encoder.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Patchify(nn.Module):
    """(B, C, T, H, W) -> (B, T/pt, H/p, W/p, C·pt·p·p), channel outermost, then t, row, column."""

    def __init__(self, spatial: int, temporal: int) -> None:
        super().__init__()
        self.p, self.pt = spatial, temporal

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        p, pt = self.p, self.pt
        if h % p or w % p or t % pt:
            raise ValueError(f"latent (t, h, w) = {(t, h, w)} not divisible by patch ({pt}, {p}, {p})")
        x = x.reshape(b, c, t // pt, pt, h // p, p, w // p, p)
        # b c t r h m w n -> b t h w (c r m n): input feature index = c·4 + dy·2 + dx (§1.2)
        x = x.permute(0, 2, 4, 6, 1, 3, 5, 7)
        return x.reshape(b, t // pt, h // p, w // p, c * pt * p * p)


class PatchEmbed(nn.Module):
    """`x_embedder_multiview`: `proj.0` is the parameter-free patchify, `proj.1` the linear."""

    def __init__(self, in_features: int, dim: int, spatial: int, temporal: int) -> None:
        super().__init__()
        self.proj = nn.Sequential(Patchify(spatial, temporal), nn.Linear(in_features, dim, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


def unpatchify(x: torch.Tensor, spatial: int, temporal: int, channels: int) -> torch.Tensor:
    """(B, T, h, w, p·p·pt·C) -> (B, C, T·pt, h·p, w·p); features ordered (dy, dx, t, C) (§1.4)."""
    b, t, h, w, _ = x.shape
    p, pt = spatial, temporal
    x = x.reshape(b, t, h, w, p, p, pt, channels)
    # b t h w m n r c -> b c (t r) (h m) (w n)
    x = x.permute(0, 7, 1, 6, 2, 4, 3, 5)
    return x.reshape(b, channels, t * pt, h * p, w * p)


def timestep_sinusoid(t: torch.Tensor, dim: int) -> torch.Tensor:
    """[cos | sin] over dim/2 frequencies exp(-ln(1e4)·k/(dim/2)); fp32 (`Timesteps`, §1.4)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.float()[..., None] * freqs
    return torch.cat([angles.cos(), angles.sin()], dim=-1)


class Timesteps(nn.Module):
    """`t_embedder.0`: the parameter-free sinusoid."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return timestep_sinusoid(t, self.dim)


class TimestepEmbedding(nn.Module):
    """`t_embedder.1` in AdaLN-LoRA mode: returns (raw sinusoid, LoRA vector of size 3·D)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(dim, dim, bias=False)
        self.activation = nn.SiLU()
        self.linear_2 = nn.Linear(dim, 3 * dim, bias=False)

    def forward(self, sinusoid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lora = self.linear_2(self.activation(self.linear_1(sinusoid)))
        return sinusoid, lora


class Mlp(nn.Module):
    """Two linears with biases and tanh-approximated GELU (the action MLPs, §1.4)."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_dim, hidden)
        self.fc2 = nn.Linear(hidden, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


def adaln_modulation(dim: int, lora_dim: int, chunks: int) -> nn.Sequential:
    """SiLU -> Linear(dim, lora_dim) -> Linear(lora_dim, chunks·dim), no biases."""
    return nn.Sequential(
        nn.SiLU(), nn.Linear(dim, lora_dim, bias=False), nn.Linear(lora_dim, chunks * dim, bias=False)
    )


class FinalLayer(nn.Module):
    """AdaLN (shift, scale) from its own path plus the first 2·D LoRA entries, then linear."""

    def __init__(self, dim: int, lora_dim: int, out_features: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=eps)
        self.adaln_modulation = adaln_modulation(dim, lora_dim, 2)
        self.linear = nn.Linear(dim, out_features, bias=False)

    def forward(self, x: torch.Tensor, t_emb: torch.Tensor, lora: torch.Tensor) -> torch.Tensor:
        # x: (B, T, S, D); t_emb: (B, T, D); lora: (B, T, 3D)
        d = x.shape[-1]
        shift, scale = (self.adaln_modulation(t_emb) + lora[..., : 2 * d]).chunk(2, dim=-1)
        x = self.norm(x) * (1 + scale[:, :, None]) + shift[:, :, None]
        return self.linear(x)


class BlackEncoder(nn.Module):
    """`black_to_crossattn_emb` (`LatentToCrossAttEmb`, §2.2): stored in the pretrained
    checkpoint, never called by the release rollout (what "blacks" are is open, §1.6)."""

    def __init__(self, latent_channels: int, context_dim: int, pool: tuple[int, int, int]) -> None:
        super().__init__()
        self.conv_in = nn.Sequential(
            nn.Conv3d(latent_channels, context_dim // 2, 3, padding=1),
            nn.GELU(),
            nn.Conv3d(context_dim // 2, context_dim, 3, padding=1),
            nn.GELU(),
            nn.AdaptiveAvgPool3d(pool),
        )
        self.token_norm = nn.LayerNorm(context_dim)
        self.token_mlp = nn.Sequential(
            nn.Linear(context_dim, 2 * context_dim), nn.GELU(), nn.Linear(2 * context_dim, context_dim)
        )

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        tokens = self.conv_in(latent).flatten(2).transpose(1, 2)
        tokens = self.token_norm(tokens)
        return tokens + self.token_mlp(tokens)
