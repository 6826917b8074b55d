"""Shared helpers for the a2world model tests: tiny nets and inputs, seeded."""

from __future__ import annotations

import pytest
import torch

from a2world.config import tiny_config
from a2world.dit import A2WorldDiT, HistoryInputs, build_dit

LATENT_HW = 8  # 8×8 latents -> 4×4 tokens per frame


def make_net(variant: str, seed: int = 0, **overrides) -> A2WorldDiT:
    torch.manual_seed(seed)
    return build_dit(tiny_config(variant, **overrides)).eval()


def make_inputs(variant: str, batch: int = 1, views: tuple[int, ...] = (2, 0), seed: int = 1) -> dict:
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


@pytest.fixture(params=["pretrained", "sim"])
def variant(request) -> str:
    return request.param


@pytest.fixture
def tiny_net():
    return make_net


@pytest.fixture
def tiny_inputs():
    return make_inputs
