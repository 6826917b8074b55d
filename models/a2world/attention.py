"""Attention layers of a DiT block (a2world_release_facts.md §1.5).

All four share one shape: bias-free q/k/v/out projections, an RMSNorm over each head's channels on
q and k (before RoPE, when RoPE applies), and `F.scaled_dot_product_attention` with the default
1/sqrt(head_dim) scale. They differ in which tokens attend to which.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from a2world.rope import apply_rope


class RMSNorm(nn.Module):
    """RMSNorm with a learnable weight. `upcast=False` keeps the input dtype (§1.5 SDPA core)."""

    def __init__(self, dim: int, eps: float = 1e-6, upcast: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps
        self.upcast = upcast

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        if self.upcast:
            x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return (x * self.weight.to(x.dtype)).to(dtype)


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(..., N, heads·d) -> (..., heads, N, d)"""
    *lead, n, c = x.shape
    return x.reshape(*lead, n, heads, c // heads).transpose(-3, -2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(..., heads, N, d) -> (..., N, heads·d)"""
    x = x.transpose(-3, -2)
    return x.reshape(*x.shape[:-2], -1)


class Attention(nn.Module):
    """Projections and QK-norm shared by every attention flavour."""

    def __init__(
        self,
        dim: int,
        heads: int,
        context_dim: int | None = None,
        out_name: str = "output_proj",
        eps: float = 1e-6,
        upcast_norm: bool = True,
    ) -> None:
        super().__init__()
        head_dim = dim // heads
        context_dim = dim if context_dim is None else context_dim
        self.heads = heads
        self.q_proj = nn.Linear(dim, dim, bias=False)
        self.k_proj = nn.Linear(context_dim, dim, bias=False)
        self.v_proj = nn.Linear(context_dim, dim, bias=False)
        self.q_norm = RMSNorm(head_dim, eps, upcast_norm)
        self.k_norm = RMSNorm(head_dim, eps, upcast_norm)
        # The released checkpoints call the output projection `output_proj` or `out_proj`.
        self.out_name = out_name
        setattr(self, out_name, nn.Linear(dim, dim, bias=False))

    def out(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, self.out_name)(x)

    def queries(self, x: torch.Tensor) -> torch.Tensor:
        return self.q_norm(split_heads(self.q_proj(x), self.heads))

    def keys_values(self, ctx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k = self.k_norm(split_heads(self.k_proj(ctx), self.heads))
        v = split_heads(self.v_proj(ctx), self.heads)
        return k, v


class SelfAttention(Attention):
    """Joint attention over all views and frames; RoPE on q and k after the norm.

    A2World-sim prepends per-view history memory (already mapped by `mem_to_k`/`mem_to_v`) to the
    keys and values; the memory goes through this block's own k/v projections and k-norm, with
    no RoPE (§4.3).
    """

    def forward(
        self,
        x: torch.Tensor,
        angles: torch.Tensor,
        n_views: int,
        memory: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        # x: (B, N, D) with N = V·T·S in (view, t, h, w) order
        q = apply_rope(self.queries(x), angles)
        k, v = self.keys_values(x)
        k = apply_rope(k, angles)
        if memory is not None:
            mem_k = self.k_norm(split_heads(self.k_proj(memory[0]), self.heads))
            mem_v = split_heads(self.v_proj(memory[1]), self.heads)
            # Per view: [memory of view v | current tokens of view v], then views concatenated.
            k = _interleave_views(mem_k, k, n_views)
            v = _interleave_views(mem_v, v, n_views)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.out(merge_heads(out))


def _interleave_views(mem: torch.Tensor, cur: torch.Tensor, n_views: int) -> torch.Tensor:
    """mem (B, H, V·M, d), cur (B, H, V·N, d) -> (B, H, V·(M+N), d) as [mem_v | cur_v] per view."""
    b, h, _, d = cur.shape
    mem = mem.reshape(b, h, n_views, -1, d)
    cur = cur.reshape(b, h, n_views, -1, d)
    return torch.cat([mem, cur], dim=3).reshape(b, h, -1, d)


class CrossViewAttention(Attention):
    """Per latent frame, each view's tokens attend to the other views' tokens at that frame.

    No RoPE, no AdaLN, no gate (§1.5 step 2). With one view there is nothing to attend to and the
    output is zero, as the reference's padding-masked attention gives.
    """

    def forward(self, x: torch.Tensor, n_views: int, frames: int) -> torch.Tensor:
        b, n, d = x.shape
        if n_views == 1:
            return torch.zeros_like(x)
        s = n // (n_views * frames)
        # (B, V, T, S, D) -> (B·T, V·S, D): one attention problem per latent frame.
        xt = x.reshape(b, n_views, frames, s, d).transpose(1, 2).reshape(b * frames, n_views * s, d)
        q = self.queries(xt)
        k, v = self.keys_values(xt)
        view_of = torch.arange(n_views, device=x.device).repeat_interleave(s)
        other_view = view_of[:, None] != view_of[None, :]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=other_view)
        out = self.out(merge_heads(out))
        return out.reshape(b, frames, n_views, s, d).transpose(1, 2).reshape(b, n, d)


class CrossAttention(Attention):
    """Each view's queries attend only to that view's context tokens (§1.5 step 3).

    `context` is (B, V, L, context_dim). `bias` (B·V, Lq, L) is added to the logits, rows
    ordered view-major (v·B + b) as the reference's SDPA path orders them.
    """

    def forward(
        self, x: torch.Tensor, context: torch.Tensor, bias: torch.Tensor | None = None
    ) -> torch.Tensor:
        b, n, d = x.shape
        v_count = context.shape[1]
        # View-major rows: (B, V, Nv, D) -> (V·B, Nv, D)
        xq = x.reshape(b, v_count, n // v_count, d).transpose(0, 1).reshape(v_count * b, -1, d)
        ctx = context.transpose(0, 1).reshape(v_count * b, context.shape[2], context.shape[3])
        q = self.queries(xq)
        k, v = self.keys_values(ctx)
        mask = None if bias is None else bias[:, None].to(q.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        out = self.out(merge_heads(out))
        return out.reshape(v_count, b, n // v_count, d).transpose(0, 1).reshape(b, n, d)


class BiasedCrossAttention(nn.Module):
    """`cross_biased_attn`: A2World-sim's cross-attention, one extra `core.` level (§2.4)."""

    def __init__(self, dim: int, heads: int, context_dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        # §1.5: this core's RMSNorm runs in the input dtype without an fp32 upcast.
        self.core = CrossAttention(dim, heads, context_dim, "out_proj", eps, upcast_norm=False)

    def forward(
        self, x: torch.Tensor, context: torch.Tensor, bias: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.core(x, context, bias)
