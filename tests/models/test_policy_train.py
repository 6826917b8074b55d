"""A2World-policy training objective: σ coupling, augmentation, dropout, prefix, overfitting."""

from __future__ import annotations

import math

import pytest
import torch

from a2world.policy.config import tiny_policy_config
from a2world.policy.diffusion import JointCondition, JointDenoiser, sample_joint
from a2world.policy.train import (
    PolicyBatch,
    PolicyTrainConfig,
    loss_weight,
    policy_loss,
    sample_prefix_lengths,
    sample_sigmas,
    train_step,
)
from a2world.sampler import SamplerConfig, first_frame_mask
from tests.models.support import make_policy

pytestmark = pytest.mark.usefixtures("one_thread")


def test_sigma_coupling_and_high_sigma_augmentation():
    cfg = PolicyTrainConfig()
    n = 20000
    base, sv, sa = sample_sigmas(n, (math.sqrt(6.0), 0.5), cfg, torch.Generator().manual_seed(0))
    assert torch.allclose(sa, 0.5 * base, rtol=0, atol=0)
    coupled = torch.isclose(sv, math.sqrt(6.0) * base, rtol=1e-12, atol=0)
    high = ~coupled
    # 5 % of samples, binomial 4-sigma band
    frac = high.double().mean().item()
    assert abs(frac - 0.05) < 4 * math.sqrt(0.05 * 0.95 / n)
    assert sv[high].min() >= 200.0 and sv[high].max() <= 1e5
    # log σ_base ~ N(0, 1)
    logb = base.log()
    assert abs(logb.mean().item()) < 0.05 and abs(logb.std().item() - 1.0) < 0.05


def test_loss_weight_and_prefix_lengths():
    s = torch.tensor([0.1, 1.0, 10.0], dtype=torch.float64)
    assert torch.allclose(loss_weight(s), 1.0 + 1.0 / s**2)
    d = sample_prefix_lengths(5000, 20, PolicyTrainConfig(), torch.Generator().manual_seed(1))
    assert d.min() == 0 and d.max() == 20
    assert set(d.tolist()) == set(range(21))
    d = sample_prefix_lengths(5000, 20, PolicyTrainConfig(prefix_probability=0.0), torch.Generator().manual_seed(1))
    assert d.max() == 0


def _batch(cfg, n: int = 3, seed: int = 0) -> PolicyBatch:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(1, cfg.action_horizon + 1) / cfg.action_horizon
    j = torch.arange(cfg.action_width) / cfg.action_width
    actions = torch.stack([torch.sin(2 * math.pi * ((i + 1) * t[:, None] / 2 + j[None])) for i in range(n)])
    return PolicyBatch(
        video=torch.randn(n, 16, cfg.latent_frames, 8, 8, generator=g),
        view_ids=torch.full((n, 1), 2, dtype=torch.long),
        actions=actions,
        context=torch.randn(n, cfg.text_tokens, cfg.context_dim, generator=g),
    )


def test_instruction_dropout_removes_the_instruction():
    cfg = tiny_policy_config(state_t=2)
    policy = make_policy(config=cfg)
    batch = _batch(cfg)
    other = PolicyBatch(batch.video, batch.view_ids, batch.actions, torch.randn_like(batch.context))
    losses = []
    for drop in (1.0, 0.0):
        tc = PolicyTrainConfig(instruction_dropout=drop)
        with torch.no_grad():
            a, _ = policy_loss(policy, batch, tc, torch.Generator().manual_seed(3))
            b, _ = policy_loss(policy, other, tc, torch.Generator().manual_seed(3))
        losses.append((a, b))
    assert torch.equal(*losses[0])  # context fully dropped: the loss cannot see it
    assert not torch.equal(*losses[1])


def test_prefix_actions_are_not_in_the_loss():
    """The action head's outputs on prefix steps get no gradient (their x0 is the clean prefix and
    the mean runs over the other steps); every other step does."""
    cfg = tiny_policy_config(state_t=2, max_prefix=3)
    policy = make_policy(config=cfg).train()
    batch = _batch(cfg)

    class Recording(JointDenoiser):
        def forward(self, *args):
            self.prefix_mask = args[8]
            return super().forward(*args)

    den = Recording(policy, 1, 4, 4)
    head = {}

    def keep(_module, _inp, out):
        out.retain_grad()
        head["out"] = out

    handle = policy.action_final_layer.register_forward_hook(keep)
    loss, _ = policy_loss(policy, batch, PolicyTrainConfig(prefix_probability=1.0), torch.Generator().manual_seed(5),
                          den)
    loss.backward()
    handle.remove()
    grad = head["out"].grad[:, :, 0].abs().sum(-1)  # (B, Ta)
    prefix = den.prefix_mask > 0.5
    assert prefix.any(1).all()  # every sample got a prefix
    assert torch.equal(grad[prefix], torch.zeros_like(grad[prefix]))
    assert (grad[~prefix] > 0).all()


def test_tiny_policy_overfits_and_samples_the_targets():
    """Three synthetic sequences (distinct instruction, frame and 12-step sine actions)."""
    cfg = tiny_policy_config(state_t=2)
    policy = make_policy(seed=0, config=cfg)
    batch = _batch(cfg)
    n = batch.actions.shape[0]
    den = JointDenoiser(policy, 1, 4, 4)
    opt = torch.optim.AdamW(policy.parameters(), lr=2e-3, weight_decay=0.0)
    # σ_base shifted up (log-mean 1.5) so that a few hundred steps also cover the high-σ_a
    # starts of sampling; the σ coupling and everything else is the paper's recipe.
    tc = PolicyTrainConfig(instruction_dropout=0.0, p_mean=1.5, p_std=1.0)
    g = torch.Generator().manual_seed(0)
    losses = [train_step(policy, opt, batch, tc, g, den) for _ in range(400)]
    start, end = sum(losses[:10]) / 10, sum(losses[-50:]) / 50
    assert end < 0.25 * start, (start, end)

    policy.eval()
    cond = JointCondition(
        clean_video=batch.video,
        frame_mask=first_frame_mask(n, 1, cfg.latent_frames),
        view_ids=batch.view_ids,
        prefix=torch.zeros_like(batch.actions),
        prefix_mask=torch.zeros(n, cfg.action_horizon),
        context=batch.context,
    )
    _, x0_a = sample_joint(den, cond, tuple(batch.actions.shape), cfg.action_sigma_ratio, 0,
                           SamplerConfig(num_steps=10))
    rmse = (x0_a - batch.actions).pow(2).mean().sqrt().item()
    zero_rmse = batch.actions.pow(2).mean().sqrt().item()
    assert rmse < 0.6 * zero_rmse, (rmse, zero_rmse)
