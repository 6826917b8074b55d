"""Training A2World (pretrained action-to-video) on cached tokenizer latents.

Objective (a2world_release_facts.md §3.1): σ = √state_t · exp(N(p_mean, p_std)), for 5 % of the
samples log-uniform in [200, 1e5]; the rectified-flow denoiser with frame-replace conditioning
(latent 0 of every view clean at σ_cond, as ``a2world.sampler.denoise`` evaluates it); loss =
loss_scale · (1 + σ²)/σ² · MSE(x0) over the generated latents.

Actions are the 10 Hz chunk (one 14-D delta per predicted frame), normalised per dimension while
training because sim deltas are millimetres, which the action MLPs would barely see. At export
the normalisation is folded into the first linear layer of each action MLP (exact: they are
affine), so the saved net takes raw deltas like the released one and every existing consumer
(``WorldModelRollout``, ``a2w policy init``) reads it unchanged.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from a2world.checkpoint import save_checkpoint
from a2world.config import DiTConfig, tiny_config
from a2world.dit import A2WorldDiT, HistoryInputs, build_dit
from a2world.load_checks import JsonConfig
from a2world.sampler import first_frame_mask, rf_scaling
from a2world.tokenizer import WanTokenizer
from a2world.train.run import TrainError

log = logging.getLogger(__name__)

TOKENIZER_FILE = "tokenizer.safetensors"
SIGMA_COND = 1e-4
ACTION_MLPS = ("action_embedder_B_D_agi", "action_embedder_B_3D_agi", "action_to_crossattn_emb")
ACTION_STD_FLOOR = 1e-4


@dataclass(frozen=True)
class WorldModelConfig(JsonConfig):
    """A2World's size (``a2world.config.tiny_config("pretrained")`` plus these)."""

    state_t: int = 6  # latent frames per view: 1 + 4(T-1) pixel frames at 10 fps
    model_channels: int = 128
    num_blocks: int = 2
    num_heads: int = 2

    def __post_init__(self) -> None:
        if self.state_t < 2:
            raise ValueError(f"model.state_t must be >= 2, got {self.state_t}")
        if self.model_channels < 1 or self.num_blocks < 1 or self.num_heads < 1:
            raise ValueError("model.model_channels, num_blocks and num_heads must be >= 1")
        if self.model_channels % self.num_heads:
            raise ValueError(f"model.model_channels {self.model_channels} is not a multiple of num_heads "
                             f"{self.num_heads}")

    def build(self) -> DiTConfig:
        # one 10 Hz action per predicted frame (the release: 20 frames, 20 actions)
        return tiny_config("pretrained", state_t=self.state_t, action_chunk=4 * (self.state_t - 1),
                           model_channels=self.model_channels, num_blocks=self.num_blocks,
                           num_heads=self.num_heads)


@dataclass(frozen=True)
class WorldModelObjective(JsonConfig):
    p_mean: float = 0.0
    p_std: float = 1.0
    high_sigma_ratio: float = 0.05
    high_sigma_min: float = 200.0
    high_sigma_max: float = 1e5
    loss_scale: float = 10.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.high_sigma_ratio <= 1.0:
            raise ValueError(f"objective.high_sigma_ratio must be in [0, 1], got {self.high_sigma_ratio}")
        if not 0 < self.high_sigma_min < self.high_sigma_max or self.p_std <= 0 or self.loss_scale <= 0:
            raise ValueError("objective: need 0 < high_sigma_min < high_sigma_max, p_std > 0, loss_scale > 0")


@dataclass
class WorldModelData:
    """Clean latents (N, C, V·T, h, w) and raw 10 Hz action chunks (N, K, 14)."""

    video: Tensor
    actions: Tensor
    view_ids: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.video.shape[0] != self.actions.shape[0]:
            raise TrainError(f"world-model data: {self.video.shape[0]} latent clips, {self.actions.shape[0]} chunks")


class WorldModelLossModule(nn.Module):
    def __init__(self, net: A2WorldDiT, objective: WorldModelObjective, action_mean: Tensor,
                 action_std: Tensor) -> None:
        super().__init__()
        self.net = net
        self.objective = objective
        self.register_buffer("action_mean", action_mean)
        self.register_buffer("action_std", action_std)

    def forward(self, video: Tensor, view_ids: Tensor, actions: Tensor, sigma: Tensor, noise: Tensor,
                history_latent: Tensor | None = None,
                history_state: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """The loss of a batch; A2World-sim also takes its history latents (B, C, V·L, h, w) and
        action-path features (B, K, Th, 22), as ``a2world.dit.HistoryInputs`` holds them."""
        b, _, vt, _, _ = video.shape
        n_views = view_ids.shape[1]
        mask = first_frame_mask(b, n_views, vt // n_views, video.device)
        m = mask[:, None, :, None, None]
        s = sigma[:, None, None, None, None]
        x = video + s * noise
        c_skip, c_out, c_in, c_noise = rf_scaling(s)
        net_in = video * m + (c_in * x) * (1 - m)
        t_cond = rf_scaling(SIGMA_COND)[3]
        timesteps = t_cond * mask + c_noise.reshape(b, 1) * (1 - mask)
        act = (actions - self.action_mean) / self.action_std
        history = None if history_latent is None else HistoryInputs(history_latent, history_state)
        velocity = self.net(net_in.to(self.net.dtype), timesteps, view_ids, mask, act, history)
        x0 = c_skip * x + c_out * velocity.float()
        keep = (1 - m).expand_as(x0)
        mse = (((x0 - video) ** 2) * keep).flatten(1).sum(1) / keep.flatten(1).sum(1)
        weight = (1 + sigma**2) / sigma**2
        loss = self.objective.loss_scale * (weight * mse).mean()
        return loss, {"mse_video": mse.mean().detach()}


class WorldModelJob:
    name = "worldmodel"
    metric_names = ("mse_video",)

    def __init__(self, data: WorldModelData, model: WorldModelConfig, objective: WorldModelObjective,
                 tokenizer: WanTokenizer, seed: int = 0) -> None:
        self.data, self.objective, self.tokenizer = data, objective, tokenizer
        self.config = cfg = model.build()
        v = len(data.view_ids)
        if data.video.shape[1] != cfg.latent_channels or data.video.shape[2] != v * cfg.state_t:
            raise TrainError(f"world-model data: latents {tuple(data.video.shape)} do not fit the model "
                             f"({cfg.latent_channels} channels, {v}·{cfg.state_t} latent frames)")
        if tuple(data.actions.shape[1:]) != (cfg.action_chunk, cfg.action_width):
            raise TrainError(f"world-model data: action chunks {tuple(data.actions.shape[1:])}, the model reads "
                             f"{(cfg.action_chunk, cfg.action_width)}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net = build_dit(cfg)
        flat = data.actions.reshape(-1, cfg.action_width).double()
        mean, std = flat.mean(0).float(), flat.std(0).clamp(min=ACTION_STD_FLOOR).float()
        self._module = WorldModelLossModule(self.net, objective, mean, std)

    def module(self) -> nn.Module:
        return self._module

    def shard_units(self) -> tuple[nn.ModuleList | None, str]:
        return self.net.blocks, "forward"

    def num_samples(self) -> int:
        return int(self.data.video.shape[0])

    def inputs(self, indices: Tensor, generator: torch.Generator, part: slice,
               device: torch.device) -> tuple[Tensor, ...]:
        d = self.data
        b = len(indices)
        sigma = draw_sigma(self.objective, self.config.state_t, b, generator)
        noise = torch.randn((b, *d.video.shape[1:]), generator=generator)
        local = indices[part]
        view_ids = torch.tensor([list(d.view_ids)] * len(local), dtype=torch.long)
        tensors = (d.video[local], view_ids, d.actions[local], sigma[part], noise[part])
        return tuple(t.to(device) for t in tensors)

    def export(self, directory: Path, state: dict[str, Tensor]) -> None:
        net = build_dit(self.config)
        net.load_state_dict({k[len("net."):]: v for k, v in state.items() if k.startswith("net.")}, strict=True)
        fold_action_normalisation(net, state["action_mean"], state["action_std"])
        save_checkpoint(net.eval(), directory)
        self.tokenizer.save(directory / TOKENIZER_FILE)


def draw_sigma(o: WorldModelObjective, state_t: int, b: int, generator: torch.Generator) -> Tensor:
    """(b,) training noise levels: √state_t · log-normal, a ``high_sigma_ratio`` share log-uniform (§3.1)."""
    base = torch.exp(o.p_mean + o.p_std * torch.randn(b, generator=generator, dtype=torch.float64))
    sigma = math.sqrt(state_t) * base
    high = torch.rand(b, generator=generator, dtype=torch.float64) < o.high_sigma_ratio
    lo, hi = math.log(o.high_sigma_min), math.log(o.high_sigma_max)
    high_sigma = torch.exp(lo + (hi - lo) * torch.rand(b, generator=generator, dtype=torch.float64))
    return torch.where(high, high_sigma, sigma).float()


@torch.no_grad()
def fold_action_normalisation(net: A2WorldDiT, mean: Tensor, std: Tensor) -> None:
    """Make ``net`` on raw actions compute what it computed on (a - mean)/std: each action MLP's
    first layer W·((a - μ)/s) + b becomes (W/s)·a + (b - W·(μ/s)), with μ, s tiled over the chunk."""
    k = net.config.action_chunk
    mu, s = mean.double().repeat(k), std.double().repeat(k)  # the chunk is flattened time-major (§1.4)
    for name in ACTION_MLPS:
        fc1 = getattr(net, name).fc1
        w = fc1.weight.double()
        fc1.bias.copy_((fc1.bias.double() - w @ (mu / s)).to(fc1.bias.dtype))
        fc1.weight.copy_((w / s).to(fc1.weight.dtype))


@torch.no_grad()
def unfold_action_normalisation(net: A2WorldDiT, mean: Tensor, std: Tensor) -> None:
    """The inverse of :func:`fold_action_normalisation`: a net on raw actions (an exported checkpoint)
    becomes one on (a - mean)/std, W·a + b = (W·s)·((a - μ)/s) + (b + W·μ)."""
    k = net.config.action_chunk
    mu, s = mean.double().repeat(k), std.double().repeat(k)
    for name in ACTION_MLPS:
        fc1 = getattr(net, name).fc1
        w = fc1.weight.double()
        fc1.bias.copy_((fc1.bias.double() + w @ mu).to(fc1.bias.dtype))
        fc1.weight.copy_((w * s).to(fc1.weight.dtype))
