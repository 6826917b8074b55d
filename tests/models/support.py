"""Helpers for the a2world model tests: tiny nets, policies and their inputs, seeded."""

from __future__ import annotations

import numpy as np
import torch

from a2world.config import tiny_config
from a2world.dit import A2WorldDiT, HistoryInputs, build_dit
from a2world.policy.config import PolicyConfig, tiny_policy_config
from a2world.policy.model import A2WorldPolicy, build_policy
from a2world.text_embeddings import TextEmbeddingCache

LATENT_HW = 8  # 8×8 latents -> 4×4 tokens per frame
INSTRUCTION = "put the chain in the box"


def make_net(variant: str, seed: int = 0, **overrides) -> A2WorldDiT:
    torch.manual_seed(seed)
    return build_dit(tiny_config(variant, **overrides)).eval()


def make_dit_inputs(variant: str, batch: int = 1, views: tuple[int, ...] = (2, 0), seed: int = 1) -> dict:
    g = torch.Generator().manual_seed(seed)
    v, t = len(views), 6
    mask = torch.zeros(batch, v, t)
    mask[:, :, 0] = 1
    inputs = dict(
        x=torch.randn(batch, 16, v * t, LATENT_HW, LATENT_HW, generator=g),
        timesteps=torch.rand(batch, v * t, generator=g),
        view_ids=torch.tensor([list(views)] * batch),
        condition_mask=mask.reshape(batch, v * t),
        actions=torch.randn(batch, 20, 14, generator=g) * 0.05,
    )
    if variant == "sim":
        inputs["history"] = HistoryInputs(
            latent=torch.randn(batch, 16, v * 5, LATENT_HW, LATENT_HW, generator=g),
            state=torch.randn(batch, 20, 20, 22, generator=g),
        )
    return inputs


def make_policy(seed: int = 0, config: PolicyConfig | None = None, **overrides) -> A2WorldPolicy:
    torch.manual_seed(seed)
    return build_policy(config or tiny_policy_config(**overrides)).eval()


def make_policy_inputs(cfg: PolicyConfig, batch: int = 2, views: tuple[int, ...] = (0, 1, 2), seed: int = 1) -> dict:
    g = torch.Generator().manual_seed(seed)
    vt = len(views) * cfg.latent_frames
    ta = cfg.action_horizon
    frame_mask = torch.zeros(batch, len(views), cfg.latent_frames)
    frame_mask[:, :, 0] = 1
    return dict(
        x_video=torch.randn(batch, cfg.backbone.latent_channels, vt, LATENT_HW, LATENT_HW, generator=g),
        t_video=torch.rand(batch, vt, generator=g),
        view_ids=torch.tensor([list(views)] * batch),
        frame_mask=frame_mask.reshape(batch, vt),
        x_action=torch.randn(batch, ta, cfg.action_width, generator=g),
        t_action=torch.rand(batch, ta, generator=g),
        prefix_mask=(torch.arange(ta) < 3).float().expand(batch, ta).contiguous(),
        context=torch.randn(batch, cfg.text_tokens, cfg.context_dim, generator=g),
    )


def make_cache(cfg: PolicyConfig, seed: int = 2) -> TextEmbeddingCache:
    g = torch.Generator().manual_seed(seed)
    cache = TextEmbeddingCache(max_length=cfg.text_tokens, dim=cfg.context_dim)
    cache.add(INSTRUCTION, torch.randn(5, cfg.context_dim, generator=g))
    return cache


def random_views(n: int, size: tuple[int, int], seed: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (*size, 3), dtype=np.uint8) for _ in range(n)]
