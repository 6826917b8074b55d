"""RoPE positions of the policy's tokens: video on the backbone's grid, actions on the same time axis.

Action step k (1-based, at `action_rate_hz`) happens k/rate seconds after the observation; latent
frame j covers pixel frames up to 4j, i.e. it ends 4j/fps seconds after it. An action therefore sits
at the fractional latent index k / actions_per_latent (k/12 on the real rig), so action 12 shares
latent 1's temporal angle exactly, action 60 latent 5's. The temporal position then goes through
the backbone's fps modulation like every video position (a2world_release_facts.md §1.3).
Spatially, action tokens sit at the centre of the latent token grid.
"""

from __future__ import annotations

import torch

from a2world.rope import RotaryPosition3D, ntk_theta


def action_latent_positions(horizon: int, actions_per_latent: float) -> torch.Tensor:
    """(horizon,) fractional latent indices k / actions_per_latent for k = 1..horizon (float64)."""
    k = torch.arange(1, horizon + 1, dtype=torch.float64)
    return k / actions_per_latent


def rope_angles_at(
    rope: RotaryPosition3D,
    pos_t: torch.Tensor,
    pos_h: torch.Tensor,
    pos_w: torch.Tensor,
    device: torch.device | str | None = None,
    bf16: bool | None = None,
) -> torch.Tensor:
    """Angles (N, head_dim) for arbitrary (possibly fractional) positions of N tokens.

    Mirrors `RotaryPosition3D.angles` step for step (same frequencies, same bf16 arithmetic when
    the quirk is on), so integer positions give bit-identical angles to the video table.
    """
    cfg = rope.config
    bf16 = cfg.quirks.rope_bf16_angles if bf16 is None else bf16
    dtype = torch.bfloat16 if bf16 else torch.float32
    spatial = rope.spatial_range().to(device=device, dtype=dtype)
    temporal = rope.temporal_range().to(device=device, dtype=dtype)
    freqs_h = 1.0 / (ntk_theta(cfg.rope_h_extrapolation_ratio, rope.dim_hw) ** spatial)
    freqs_w = 1.0 / (ntk_theta(cfg.rope_w_extrapolation_ratio, rope.dim_hw) ** spatial)
    freqs_t = 1.0 / (ntk_theta(cfg.rope_t_extrapolation_ratio, rope.dim_t) ** temporal)
    # Positions are rounded to float32 first, as the video's integer table is built in float32.
    pt = pos_t.to(torch.float32).to(device=device, dtype=dtype)
    if cfg.quirks.rope_fps_modulation:
        pt = pt / cfg.fps * cfg.rope_base_fps  # §1.3: divided first, as the reference does
    ph = pos_h.to(torch.float32).to(device=device, dtype=dtype)
    pw = pos_w.to(torch.float32).to(device=device, dtype=dtype)
    halves = [torch.outer(pt, freqs_t), torch.outer(ph, freqs_h), torch.outer(pw, freqs_w)]
    return torch.cat(halves * 2, dim=-1).float()


def action_angles(
    rope: RotaryPosition3D,
    horizon: int,
    actions_per_latent: float,
    grid_h: int,
    grid_w: int,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """(horizon, head_dim) angles of the action tokens (see the module docstring)."""
    pos_t = action_latent_positions(horizon, actions_per_latent)
    centre_h = torch.full((horizon,), (grid_h - 1) / 2.0, dtype=torch.float64)
    centre_w = torch.full((horizon,), (grid_w - 1) / 2.0, dtype=torch.float64)
    return rope_angles_at(rope, pos_t, centre_h, centre_w, device=device)
