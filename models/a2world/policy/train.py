"""Training objective of A2World-policy (paper §3.3 eq. 11, supplement §6.2).

Per sample: one σ_base ~ log-normal(P_mean, P_std); σ_v = √6·σ_base, σ_a = 0.5·σ_base; for 5 % of
samples σ_v alone is redrawn log-uniform in [200, 1e5] (the video high-σ augmentation,
a2world_release_facts.md §3.1), σ_a stays coupled. Loss
10 · [w(σ_v)·mse_v + λ_a·w(σ_a)·mse_a], w(σ) = (σ² + σ_d²)/(σ·σ_d)², each mse averaged over the
elements that are generated (not the conditioning latents, not the action prefix).

Instruction dropout zeroes the context (the unconditional branch of guidance). Action-prefix
conditioning (training-time RTC, anchors_runtime.md §2d): a prefix length d ~ U{0..max_prefix} per
sample whose actions enter clean at σ_cond and are left out of the loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch

from a2world.policy.config import PolicyConfig
from a2world.policy.diffusion import JointDenoiser
from a2world.policy.model import A2WorldPolicy
from a2world.sampler import first_frame_mask


@dataclass(frozen=True)
class PolicyTrainConfig:
    p_mean: float = 0.0
    p_std: float = 1.0
    high_sigma_ratio: float = 0.05  # paper §6.2
    high_sigma_min: float = 200.0  # a2world_release_facts.md §3.1
    high_sigma_max: float = 1e5
    action_loss_weight: float = 1.0  # λ_a, paper §6.2
    loss_scale: float = 10.0  # paper §6.1/§6.2
    instruction_dropout: float = 0.1
    # Probability that a sample gets a prefix drawn from U{1..max_prefix} (else d = 0); None
    # draws d uniformly from 0..max_prefix as training-time RTC does.
    prefix_probability: float | None = None

    def __post_init__(self) -> None:
        for name in ("high_sigma_ratio", "instruction_dropout"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {v}")
        if self.prefix_probability is not None and not 0.0 <= self.prefix_probability <= 1.0:
            raise ValueError(f"prefix_probability must be in [0, 1], got {self.prefix_probability}")


@dataclass
class PolicyBatch:
    """Clean training data. video: (B, C, V·T, h, w) latents, view-major; view_ids: (B, V);
    actions: (B, Ta, A) normalised; context: (B, L, ctx) instruction embeddings."""

    video: torch.Tensor
    view_ids: torch.Tensor
    actions: torch.Tensor
    context: torch.Tensor


def loss_weight(sigma: torch.Tensor, sigma_data: float = 1.0) -> torch.Tensor:
    """w(σ) = (σ² + σ_d²)/(σ·σ_d)²."""
    return (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2


def sample_sigmas(
    batch: int, policy_scales: tuple[float, float], cfg: PolicyTrainConfig, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(σ_base, σ_v, σ_a), each (B,), with the high-σ augmentation on σ_v only."""
    m_v, m_a = policy_scales
    base = torch.exp(cfg.p_mean + cfg.p_std * torch.randn(batch, generator=generator, dtype=torch.float64))
    sigma_v = m_v * base
    high = torch.rand(batch, generator=generator, dtype=torch.float64) < cfg.high_sigma_ratio
    lo, hi = math.log(cfg.high_sigma_min), math.log(cfg.high_sigma_max)
    high_sigma = torch.exp(lo + (hi - lo) * torch.rand(batch, generator=generator, dtype=torch.float64))
    sigma_v = torch.where(high, high_sigma, sigma_v)
    return base, sigma_v, m_a * base


def sample_prefix_lengths(
    batch: int, max_prefix: int, cfg: PolicyTrainConfig, generator: torch.Generator | None = None
) -> torch.Tensor:
    """(B,) int64 prefix lengths in 0..max_prefix."""
    if max_prefix == 0:
        return torch.zeros(batch, dtype=torch.int64)
    if cfg.prefix_probability is None:
        return torch.randint(0, max_prefix + 1, (batch,), generator=generator)
    use = torch.rand(batch, generator=generator) < cfg.prefix_probability
    d = torch.randint(1, max_prefix + 1, (batch,), generator=generator)
    return torch.where(use, d, torch.zeros_like(d))


def prefix_mask_from_lengths(lengths: torch.Tensor, horizon: int) -> torch.Tensor:
    """(B,) lengths -> (B, horizon) float mask, 1 on the first `length` steps."""
    return (torch.arange(horizon)[None, :] < lengths[:, None]).float()


def _masked_mse(err2: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Per-sample mean of err2 over positions where keep == 1 (keep broadcast to err2)."""
    keep = keep.expand_as(err2)
    dims = tuple(range(1, err2.dim()))
    return (err2 * keep).sum(dims) / keep.sum(dims).clamp(min=1.0)


@dataclass
class PolicyNoise:
    """Every random draw of one loss evaluation, per sample (B leading): σ_v, σ_a (B,), prefix lengths
    (B,), instruction drop flags (B,) bool, video and action noise shaped like the batch.

    Drawn for a whole global batch and sliced per rank, one step of data-parallel training equals
    the single-process step on the same batch (`a2world.train`)."""

    sigma_video: torch.Tensor
    sigma_action: torch.Tensor
    prefix_lengths: torch.Tensor
    drop: torch.Tensor
    video: torch.Tensor
    action: torch.Tensor

    def slice(self, start: int, stop: int) -> PolicyNoise:
        return PolicyNoise(*(getattr(self, f.name)[start:stop] for f in fields(self)))


def sample_noise(
    policy_config: PolicyConfig,
    video_shape: tuple[int, ...],
    action_shape: tuple[int, ...],
    cfg: PolicyTrainConfig = PolicyTrainConfig(),
    generator: torch.Generator | None = None,
) -> PolicyNoise:
    """The draws `policy_loss` makes, in its order, for a batch of the given shapes."""
    pc = policy_config
    b = video_shape[0]
    _, sigma_v, sigma_a = sample_sigmas(b, (pc.sigma_scale_video, pc.sigma_scale_action), cfg, generator)
    lengths = sample_prefix_lengths(b, pc.max_prefix, cfg, generator)
    drop = torch.rand(b, generator=generator) < cfg.instruction_dropout
    noise_v = torch.randn(video_shape, generator=generator)
    noise_a = torch.randn(action_shape, generator=generator)
    return PolicyNoise(sigma_v.float(), sigma_a.float(), lengths, drop, noise_v, noise_a)


def policy_loss(
    policy: A2WorldPolicy,
    batch: PolicyBatch,
    cfg: PolicyTrainConfig = PolicyTrainConfig(),
    generator: torch.Generator | None = None,
    denoiser: JointDenoiser | None = None,
    noise: PolicyNoise | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Scaled joint loss (scalar) and per-term statistics (detached).

    The random draws come from `noise` when given (see `sample_noise`), else from `generator`."""
    pc = policy.config
    b, _, vt, h, w = batch.video.shape
    n_views = batch.view_ids.shape[1]
    if vt != n_views * pc.latent_frames:
        raise ValueError(f"video has {vt} latent frames, expected V·T = {n_views}·{pc.latent_frames}")
    if denoiser is None:
        p = pc.backbone.patch_spatial
        denoiser = JointDenoiser(policy, n_views, h // p, w // p)
    device = batch.video.device

    if noise is None:
        noise = sample_noise(pc, tuple(batch.video.shape), tuple(batch.actions.shape), cfg, generator)
    if noise.video.shape != batch.video.shape or noise.action.shape != batch.actions.shape:
        raise ValueError(f"noise shapes {tuple(noise.video.shape)}, {tuple(noise.action.shape)} do not match the "
                         f"batch {tuple(batch.video.shape)}, {tuple(batch.actions.shape)}")
    sigma_v, sigma_a = noise.sigma_video.float().to(device), noise.sigma_action.float().to(device)
    frame_mask = first_frame_mask(b, n_views, pc.latent_frames, device)
    prefix_mask = prefix_mask_from_lengths(noise.prefix_lengths, pc.action_horizon).to(device)
    drop = noise.drop.to(device)
    context = torch.where(drop[:, None, None], torch.zeros_like(batch.context), batch.context)

    x_v = batch.video + sigma_v[:, None, None, None, None] * noise.video.to(device)
    x_a = batch.actions + sigma_a[:, None, None] * noise.action.to(device)
    x0_v, x0_a = denoiser(
        x_v, x_a, sigma_v, sigma_a, batch.video, frame_mask, batch.view_ids, batch.actions, prefix_mask, context
    )
    mse_v = _masked_mse((x0_v - batch.video.float()) ** 2, (1 - frame_mask)[:, None, :, None, None])
    mse_a = _masked_mse((x0_a - batch.actions.float()) ** 2, (1 - prefix_mask)[..., None])
    term_v = loss_weight(sigma_v, pc.sigma_data) * mse_v
    term_a = cfg.action_loss_weight * loss_weight(sigma_a, pc.sigma_data) * mse_a
    loss = cfg.loss_scale * (term_v + term_a).mean()
    stats = {"mse_video": mse_v.detach(), "mse_action": mse_a.detach(), "sigma_video": sigma_v, "sigma_action": sigma_a}
    return loss, stats


def train_step(
    policy: A2WorldPolicy,
    optimizer: torch.optim.Optimizer,
    batch: PolicyBatch,
    cfg: PolicyTrainConfig = PolicyTrainConfig(),
    generator: torch.Generator | None = None,
    denoiser: JointDenoiser | None = None,
    max_grad_norm: float | None = 1.0,
) -> float:
    """One optimiser step on the joint loss; returns the loss value."""
    policy.train()
    optimizer.zero_grad(set_to_none=True)
    loss, _ = policy_loss(policy, batch, cfg, generator, denoiser)
    if not torch.isfinite(loss):
        raise FloatingPointError(f"non-finite policy loss {loss.item()}")
    loss.backward()
    if max_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(policy.parameters(), max_grad_norm)
    optimizer.step()
    return float(loss.detach())
