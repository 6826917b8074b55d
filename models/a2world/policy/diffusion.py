"""Joint video-action denoising and sampling for A2World-policy.

Preconditioning is A2World's rectified-flow scaling (σ_data = 1) applied per modality, with the
video's frame-replace conditioning (a2world_release_facts.md §1.7) mirrored for the action prefix:
prefix tokens enter clean at σ_cond and are replaced by the clean values in x0, so a prefix is held
exactly. Sampling walks the released Karras schedule in σ_v with σ_a = σ_v · m_a/m_v (the training
coupling, paper §6.2); the Euler and AB2 steps depend only on σ ratios, so both modalities take the
same steps (§3.2). Guidance is modality-wise, x̂ = x̂_c + (s_m − 1)(x̂_c − x̂_u) (paper eq. 12, written
so that s = 1 returns the conditional estimate bit for bit); the unconditional branch drops the
instruction (zero context).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np
import torch
from torch import nn

from a2world.policy.model import A2WorldPolicy
from a2world.sampler import SamplerConfig, ab2_step, euler_step, karras_sigmas, rf_scaling


@dataclass
class JointCondition:
    """What a chunk is conditioned on (batch B).

    clean_video: (B, C, V·T, h, w) holding the clean conditioning latents (others ignored);
    frame_mask: (B, V·T) 1 on conditioning latents; view_ids: (B, V) int64;
    prefix: (B, Ta, A) normalised clean actions, read where prefix_mask (B, Ta) is 1;
    context: (B, L, ctx) instruction embeddings.
    """

    clean_video: torch.Tensor
    frame_mask: torch.Tensor
    view_ids: torch.Tensor
    prefix: torch.Tensor
    prefix_mask: torch.Tensor
    context: torch.Tensor

    def doubled_unconditional(self) -> "JointCondition":
        """[conditional | unconditional] batch: the second half has a zero instruction."""

        def two(t: torch.Tensor) -> torch.Tensor:
            return torch.cat([t, t], dim=0)

        return JointCondition(
            two(self.clean_video),
            two(self.frame_mask),
            two(self.view_ids),
            two(self.prefix),
            two(self.prefix_mask),
            torch.cat([self.context, torch.zeros_like(self.context)], dim=0),
        )

    def tensors(self) -> tuple[torch.Tensor, ...]:
        return (self.clean_video, self.frame_mask, self.view_ids, self.prefix, self.prefix_mask, self.context)


def _per_sample(sigma: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B,) -> (B, 1, ..., 1) broadcastable against `like`."""
    return sigma.reshape(-1, *([1] * (like.dim() - 1)))


class JointDenoiser(nn.Module):
    """One denoiser evaluation: noisy (x_v, x_a) at (σ_v, σ_a) -> x0 estimates (float32).

    This is the unit the ONNX backend exports; the RoPE angles are fixed at construction for one
    token geometry, so the exported graph holds them as constants.
    """

    def __init__(self, policy: A2WorldPolicy, n_views: int, grid_h: int, grid_w: int) -> None:
        super().__init__()
        self.policy = policy
        device = next(policy.parameters()).device
        angles = policy.angles(n_views, policy.config.latent_frames, grid_h, grid_w, device=device)
        self.register_buffer("angles", angles, persistent=False)
        self.t_cond = float(rf_scaling(policy.config.sigma_cond)[3])

    def forward(
        self,
        x_video: torch.Tensor,
        x_action: torch.Tensor,
        sigma_video: torch.Tensor,
        sigma_action: torch.Tensor,
        clean_video: torch.Tensor,
        frame_mask: torch.Tensor,
        view_ids: torch.Tensor,
        prefix: torch.Tensor,
        prefix_mask: torch.Tensor,
        context: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        xv, xa = x_video.float(), x_action.float()
        sv, sa = sigma_video.float(), sigma_action.float()
        skip_v, out_v, in_v, noise_v = rf_scaling(_per_sample(sv, xv))
        skip_a, out_a, in_a, noise_a = rf_scaling(_per_sample(sa, xa))
        fm = frame_mask.float()
        pm = prefix_mask.float()
        keep_v = fm[:, None, :, None, None] > 0.5
        keep_a = pm[..., None] > 0.5
        clean_v, clean_a = clean_video.float(), prefix.float()
        # Conditioning latents and prefix actions enter clean (÷ σ_data = 1), not scaled by c_in.
        net_v = torch.where(keep_v, clean_v, in_v * xv)
        net_a = torch.where(keep_a, clean_a, in_a * xa)
        t_v = torch.where(fm > 0.5, torch.full_like(fm, self.t_cond), noise_v.reshape(-1, 1).expand_as(fm))
        t_a = torch.where(pm > 0.5, torch.full_like(pm, self.t_cond), noise_a.reshape(-1, 1).expand_as(pm))
        dtype = self.policy.dtype
        vel_v, vel_a = self.policy(
            net_v.to(dtype), t_v, view_ids, fm, net_a.to(dtype), t_a, pm, context, angles=self.angles
        )
        x0_v = skip_v * xv + out_v * vel_v.float()
        x0_a = skip_a * xa + out_a * vel_a.float()
        return torch.where(keep_v, clean_v, x0_v), torch.where(keep_a, clean_a, x0_a)


class DenoiseCall(Protocol):
    """A backend's denoiser: the same arguments and results as `JointDenoiser.forward`."""

    def __call__(self, *args: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


def cfg_combine(cond: torch.Tensor, uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """Paper eq. 12 in the form x̂_c + (s − 1)(x̂_c − x̂_u); s = 1 gives x̂_c exactly."""
    if scale == 1.0:
        return cond
    return cond + (scale - 1.0) * (cond - uncond)


@dataclass(frozen=True)
class Guidance:
    """Modality-wise guidance scales (s_v, s_a); 1.0 = conditional only."""

    video: float = 1.0
    action: float = 1.0
    # Run the unconditional branch even when both scales are 1 (tests, timing).
    always_run_unconditional: bool = False

    @property
    def needs_unconditional(self) -> bool:
        return self.always_run_unconditional or self.video != 1.0 or self.action != 1.0


def guided_x0(
    call: DenoiseCall,
    x_v: torch.Tensor,
    x_a: torch.Tensor,
    sigma_v: float,
    sigma_a: float,
    cond: JointCondition,
    guidance: Guidance,
    doubled: JointCondition | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """x0 estimates with modality-wise guidance; cond and uncond share one batched call."""
    b = x_v.shape[0]
    if not guidance.needs_unconditional:
        sv = torch.full((b,), sigma_v, dtype=torch.float32, device=x_v.device)
        sa = torch.full((b,), sigma_a, dtype=torch.float32, device=x_v.device)
        return call(x_v.float(), x_a.float(), sv, sa, *cond.tensors())
    doubled = doubled if doubled is not None else cond.doubled_unconditional()
    sv = torch.full((2 * b,), sigma_v, dtype=torch.float32, device=x_v.device)
    sa = torch.full((2 * b,), sigma_a, dtype=torch.float32, device=x_v.device)
    xv2 = torch.cat([x_v, x_v]).float()
    xa2 = torch.cat([x_a, x_a]).float()
    x0_v, x0_a = call(xv2, xa2, sv, sa, *doubled.tensors())
    return cfg_combine(x0_v[:b], x0_v[b:], guidance.video), cfg_combine(x0_a[:b], x0_a[b:], guidance.action)


def initial_joint_noise(
    video_shape: tuple[int, ...], action_shape: tuple[int, ...], seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit noise from one numpy RandomState: video first (as A2World draws it), then actions."""
    rng = np.random.RandomState(seed)
    v = rng.standard_normal(video_shape).astype(np.float32)
    a = rng.standard_normal(action_shape).astype(np.float32)
    return torch.from_numpy(v), torch.from_numpy(a)


def sample_joint(
    call: DenoiseCall,
    cond: JointCondition,
    action_shape: tuple[int, ...],
    action_sigma_ratio: float,
    seed: int,
    config: SamplerConfig = SamplerConfig(),
    guidance: Guidance = Guidance(),
    progress: Callable[[int, int], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """num_steps sampler steps plus a final x0 at σ_min; returns float32 (x0_video, x0_action)."""
    sig_v = karras_sigmas(config.num_steps, config.sigma_min, config.sigma_max, config.rho)
    sig_a = sig_v * action_sigma_ratio
    device = cond.clean_video.device
    nv, na = initial_joint_noise(tuple(cond.clean_video.shape), action_shape, seed)
    x_v = nv.to(device, torch.float64) * sig_v[0]
    x_a = na.to(device, torch.float64) * sig_a[0]
    doubled = cond.doubled_unconditional() if guidance.needs_unconditional else None
    prev: tuple[torch.Tensor, torch.Tensor] | None = None
    total = config.num_steps + 1
    with torch.no_grad():
        for i in range(config.num_steps):
            x0_v, x0_a = guided_x0(call, x_v, x_a, float(sig_v[i]), float(sig_a[i]), cond, guidance, doubled)
            x0_v, x0_a = x0_v.double(), x0_a.double()
            if prev is None:
                x_v = euler_step(x_v, x0_v, float(sig_v[i]), float(sig_v[i + 1]))
                x_a = euler_step(x_a, x0_a, float(sig_a[i]), float(sig_a[i + 1]))
            else:
                x_v = ab2_step(x_v, x0_v, prev[0], float(sig_v[i - 1]), float(sig_v[i]), float(sig_v[i + 1]))
                x_a = ab2_step(x_a, x0_a, prev[1], float(sig_a[i - 1]), float(sig_a[i]), float(sig_a[i + 1]))
            prev = (x0_v, x0_a)
            if progress is not None:
                progress(i + 1, total)
        out = guided_x0(call, x_v, x_a, float(sig_v[-1]), float(sig_a[-1]), cond, guidance, doubled)
        if progress is not None:
            progress(total, total)
    return out[0].float(), out[1].float()
