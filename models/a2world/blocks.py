"""One DiT block: self-attention -> cross-view attention -> cross-attention -> MLP (§1.5)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from a2world.attention import BiasedCrossAttention, CrossAttention, CrossViewAttention, SelfAttention
from a2world.conditioning import adaln_modulation
from a2world.config import DiTConfig


class FeedForward(nn.Module):
    """Bias-free MLP with exact (erf) GELU."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.layer1 = nn.Linear(dim, hidden, bias=False)
        self.layer2 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer2(F.gelu(self.layer1(x)))


class BlockInputs:
    """Everything a block needs besides x, computed once per forward by the DiT."""

    def __init__(
        self,
        t_emb: torch.Tensor,
        lora: torch.Tensor,
        angles: torch.Tensor,
        n_views: int,
        frames: int,
        context: torch.Tensor,
        context_bias: torch.Tensor | None = None,
        memory: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> None:
        self.t_emb = t_emb  # (B, V·T, D), constant over a frame's tokens
        self.lora = lora  # (B, V·T, 3D)
        self.angles = angles  # (V·T·S, head_dim)
        self.n_views = n_views
        self.frames = frames  # latent frames per view
        self.context = context  # (B, V, L, context_dim)
        self.context_bias = context_bias  # (V·B, Nq per view, L) or None
        self.memory = memory  # (mem_k, mem_v), each (B, V·M, D), or None


class DiTBlock(nn.Module):
    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        d, heads, eps = config.model_channels, config.num_heads, config.norm_eps
        self.norm = nn.LayerNorm(d, elementwise_affine=False, eps=eps)
        self.self_attn = SelfAttention(d, heads, eps=eps)
        self.layer_norm_cross_view_attn = nn.LayerNorm(d, eps=eps)
        self.cross_view_attn = CrossViewAttention(d, heads, eps=eps)
        self.use_history = config.use_history
        if config.use_history:
            self.cross_biased_attn = BiasedCrossAttention(d, heads, config.crossattn_emb_channels, eps)
        else:
            self.cross_attn = CrossAttention(d, heads, config.crossattn_emb_channels, eps=eps)
        self.mlp = FeedForward(d, config.mlp_hidden)
        lora = config.adaln_lora_dim
        self.adaln_modulation_self_attn = adaln_modulation(d, lora, 3)
        self.adaln_modulation_cross_attn = adaln_modulation(d, lora, 3)
        self.adaln_modulation_mlp = adaln_modulation(d, lora, 3)

    def modulate(
        self, x: torch.Tensor, path: nn.Module, inp: BlockInputs
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, F, S, D) -> (LN(x)·(1+scale)+shift, gate); modulation varies per frame only."""
        shift, scale, gate = (path(inp.t_emb) + inp.lora).chunk(3, dim=-1)
        x_mod = self.norm(x) * (1 + scale[:, :, None]) + shift[:, :, None]
        return x_mod, gate[:, :, None]

    def forward(self, x: torch.Tensor, inp: BlockInputs) -> torch.Tensor:
        b, f, s, d = x.shape

        def flat(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(b, f * s, d)

        def grid(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(b, f, s, d)

        h, gate = self.modulate(x, self.adaln_modulation_self_attn, inp)
        x = x + gate * grid(self.self_attn(flat(h), inp.angles, inp.n_views, inp.memory))

        h = self.layer_norm_cross_view_attn(x)
        x = x + grid(self.cross_view_attn(flat(h), inp.n_views, inp.frames))

        h, gate = self.modulate(x, self.adaln_modulation_cross_attn, inp)
        cross = self.cross_biased_attn if self.use_history else self.cross_attn
        x = x + gate * grid(cross(flat(h), inp.context, inp.context_bias))

        h, gate = self.modulate(x, self.adaln_modulation_mlp, inp)
        return x + gate * self.mlp(h)
