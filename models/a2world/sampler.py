"""Rectified-flow denoiser with frame-replace conditioning and the AB2 multistep sampler.

a2world_release_facts.md §1.7 (conditioning), §3.1 (scaling), §3.2 (schedule and steps), §3.3 (one
forward per step: the reference's guidance branch equals the conditional one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from a2world.dit import A2WorldDiT, HistoryInputs


@dataclass(frozen=True)
class SamplerConfig:
    num_steps: int = 35
    sigma_min: float = 0.01
    sigma_max: float = 200.0
    rho: float = 7.0
    sigma_cond: float = 1e-4

    def __post_init__(self) -> None:
        if self.num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {self.num_steps}")
        if not 0 < self.sigma_min < self.sigma_max:
            raise ValueError(f"need 0 < sigma_min < sigma_max, got {self.sigma_min}, {self.sigma_max}")


def karras_sigmas(num_steps: int, sigma_min: float, sigma_max: float, rho: float) -> np.ndarray:
    """num_steps + 1 noise levels from sigma_max down to sigma_min (float64)."""
    ramp = np.linspace(0.0, 1.0, num_steps + 1, dtype=np.float64)
    lo, hi = sigma_min ** (1.0 / rho), sigma_max ** (1.0 / rho)
    return (hi + ramp * (lo - hi)) ** rho


def rf_scaling(sigma: float | torch.Tensor) -> tuple:
    """(c_skip, c_out, c_in, c_noise) for rectified flow with sigma_data = 1 (§3.1)."""
    t = sigma / (1 + sigma)
    return 1 - t, -t, 1 - t, t


def phi1(z: float) -> float:
    return math.expm1(z) / z


def phi2(z: float) -> float:
    return (phi1(z) - 1.0) / z


def euler_step(x: torch.Tensor, x0: torch.Tensor, sigma: float, sigma_next: float) -> torch.Tensor:
    """First step, in x0 form: x' = ((σ-σ')/σ)·x0 + (σ'/σ)·x."""
    return ((sigma - sigma_next) / sigma) * x0 + (sigma_next / sigma) * x


def ab2_step(
    x: torch.Tensor,
    x0: torch.Tensor,
    x0_prev: torch.Tensor,
    sigma_prev: float,
    sigma: float,
    sigma_next: float,
) -> torch.Tensor:
    """2-step Adams-Bashforth exponential integrator in λ = -log σ (§3.2), float64 scalars."""
    h = math.log(sigma / sigma_next)
    c2 = (-math.log(sigma_prev) + math.log(sigma)) / h  # (λ_prev - λ) / h, negative
    b2 = phi2(-h) / c2
    b1 = phi1(-h) - b2
    return math.exp(-h) * x + h * (b1 * x0 + b2 * x0_prev)


def initial_noise(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """Unit noise drawn as the reference does (`arch_invariant_rand`): numpy RandomState, fp32."""
    rng = np.random.RandomState(seed)
    return torch.from_numpy(rng.standard_normal(shape).astype(np.float32))


@dataclass
class FrameCondition:
    """What the denoiser is conditioned on.

    clean: (B, C, V·T, h, w) latents whose conditioning frames hold the ground truth;
    frame_mask: (B, V·T) 1.0 on conditioning frames (latent 0 of each view).
    """

    clean: torch.Tensor
    frame_mask: torch.Tensor
    view_ids: torch.Tensor
    actions: torch.Tensor
    history: HistoryInputs | None = None


def first_frame_mask(batch: int, n_views: int, frames: int, device: torch.device | str | None = None) -> torch.Tensor:
    """(B, V·T) mask that is 1 on latent 0 of every view (§1.7: one frame per view)."""
    mask = torch.zeros(batch, n_views, frames, device=device)
    mask[:, :, 0] = 1.0
    return mask.reshape(batch, n_views * frames)


def denoise(
    net: A2WorldDiT, x_sigma: torch.Tensor, sigma: float, cond: FrameCondition, sigma_cond: float = 1e-4
) -> torch.Tensor:
    """x0 estimate (float32) with the conditioning frames replaced by the clean latent (§1.7)."""
    c_skip, c_out, c_in, c_noise = rf_scaling(sigma)
    mask = cond.frame_mask.to(device=x_sigma.device, dtype=torch.float32)
    m = mask[:, None, :, None, None]
    clean = cond.clean.to(torch.float32)
    x32 = x_sigma.to(torch.float32)
    # Conditioning frames enter clean (divided by σ_data = 1), not scaled by c_in.
    net_in = clean * m + (c_in * x32) * (1 - m)
    t_cond = rf_scaling(sigma_cond)[3]
    timesteps = t_cond * mask + c_noise * (1 - mask)
    velocity = net(net_in.to(net.dtype), timesteps, cond.view_ids, mask, cond.actions, cond.history)
    x0 = c_skip * x32 + c_out * velocity.to(torch.float32)
    return clean * m + x0 * (1 - m)


def sample(
    net: A2WorldDiT,
    cond: FrameCondition,
    seed: int,
    config: SamplerConfig = SamplerConfig(),
    progress: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Draw one latent sample: num_steps sampler steps plus a final x0 at σ_min (float32)."""
    sigmas = karras_sigmas(config.num_steps, config.sigma_min, config.sigma_max, config.rho)
    shape = tuple(cond.clean.shape)
    # §3.2: fp32 noise times σ_max (in fp32), then the sampler state is float64.
    x = (initial_noise(shape, seed) * np.float32(sigmas[0])).to(cond.clean.device, torch.float64)
    x0_prev: torch.Tensor | None = None
    total = config.num_steps + 1
    with torch.no_grad():
        for i in range(config.num_steps):
            s, s_next = float(sigmas[i]), float(sigmas[i + 1])
            x0 = denoise(net, x, s, cond, config.sigma_cond).to(torch.float64)
            if x0_prev is None:
                x = euler_step(x, x0, s, s_next)
            else:
                x = ab2_step(x, x0, x0_prev, float(sigmas[i - 1]), s, s_next)
            x0_prev = x0
            if progress is not None:
                progress(i + 1, total)
        out = denoise(net, x, float(sigmas[-1]), cond, config.sigma_cond)
        if progress is not None:
            progress(total, total)
    return out
