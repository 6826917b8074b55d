"""Training A2World-policy on cached tokenizer latents with the joint loss (paper §3.3, eq. 11).

Initialisation: from an A2World checkpoint (``model.init``: our directory or the release file) as
paper §3.3 says, video path copied and action branches fresh (``a2world.policy.init``); without
one the policy starts from scratch (random backbone, fresh action head), which the run logs. A
policy checkpoint as ``model.init`` is fine-tuned as it is: every weight and its action statistics
(its outputs are in those units), so a user's own demonstrations continue a shipped policy.

Output: a checkpoint directory the policy node loads (``checkpoint:=DIR``): ``model.safetensors`` +
``config.json``, ``tokenizer.safetensors``, ``text_embeddings.safetensors`` and ``runtime.json``
(image size, view ids, default instruction; see ``a2world.policy.bundle``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from a2world.load_checks import JsonConfig
from a2world.policy.bundle import RuntimeInfo, save_bundle
from a2world.policy.checkpoint import is_policy_checkpoint, load_policy
from a2world.policy.config import PolicyConfig, tiny_policy_config
from a2world.policy.diffusion import JointDenoiser
from a2world.policy.model import A2WorldPolicy, build_policy, init_action_head_
from a2world.policy.train import PolicyBatch, PolicyNoise, PolicyTrainConfig, policy_loss, sample_noise
from a2world.text_embeddings import TextEmbeddingCache
from a2world.tokenizer import WanTokenizer
from a2world.train.run import TrainError

log = logging.getLogger(__name__)

ACTION_STD_FLOOR = 1e-4  # a dimension that never moves (an idle arm) is not blown up by 1/std


@dataclass(frozen=True)
class PolicyModelConfig(JsonConfig):
    """The policy's size (``a2world.policy.config.tiny_policy_config`` plus these overrides)."""

    state_t: int = 6  # latent frames per view: 1 + 4(T-1) pixel frames at 10 fps
    action_horizon: int | None = None  # default: 3 actions per pixel frame (30 Hz)
    model_channels: int = 128
    num_blocks: int = 2
    num_heads: int = 2
    action_mlp_ratio: float | None = None
    max_prefix: int | None = None
    init: str | None = None  # A2World checkpoint to start from (paper §3.3); None: from scratch

    def __post_init__(self) -> None:
        if self.state_t < 2:
            raise ValueError(f"model.state_t must be >= 2, got {self.state_t}")
        if self.model_channels < 1 or self.num_blocks < 1 or self.num_heads < 1:
            raise ValueError("model.model_channels, num_blocks and num_heads must be >= 1")
        if self.model_channels % self.num_heads:
            raise ValueError(f"model.model_channels {self.model_channels} is not a multiple of num_heads "
                             f"{self.num_heads}")

    def policy_overrides(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.action_mlp_ratio is not None:
            out["action_mlp_ratio"] = self.action_mlp_ratio
        if self.max_prefix is not None:
            out["max_prefix"] = self.max_prefix
        return out

    def build(self) -> PolicyConfig:
        return tiny_policy_config(
            self.state_t, self.action_horizon,
            backbone_overrides={"model_channels": self.model_channels, "num_blocks": self.num_blocks,
                                "num_heads": self.num_heads},
            **self.policy_overrides())


@dataclass
class PolicyData:
    """Training samples: clean latents (N, C, V·T, h, w), raw 14-D delta chunks (N, Ta, 14) and
    each sample's instruction (index into ``instructions``)."""

    video: Tensor
    actions: Tensor
    instruction: Tensor
    instructions: list[str]
    view_ids: tuple[int, ...]
    image_size: tuple[int, int]
    weights: Tensor | None = None  # (N,) relative draw weights; None: uniform

    def __post_init__(self) -> None:
        n = self.video.shape[0]
        if self.actions.shape[0] != n or self.instruction.shape[0] != n:
            raise TrainError(f"policy data: {n} latent clips, {self.actions.shape[0]} action chunks, "
                             f"{self.instruction.shape[0]} instructions")
        w = self.weights
        if w is not None and (tuple(w.shape) != (n,) or not bool(torch.isfinite(w).all()) or bool((w <= 0).any())):
            raise TrainError(f"policy data: sample weights must be {n} finite numbers > 0")


def _continue_policy(directory: str, sizes: dict[str, Any]) -> A2WorldPolicy:
    """The policy in ``directory``, refused when its action stream differs from what the data and
    config ask for (a mismatch would silently retrain the head from the wrong shapes)."""
    try:
        policy = load_policy(directory)
    except (OSError, ValueError) as exc:
        raise TrainError(f"model.init {directory}: {str(exc).splitlines()[0]}") from None
    differ = [f"{k} {getattr(policy.config, k)} (wanted {v})" for k, v in sizes.items()
              if getattr(policy.config, k) != v]
    if differ:
        raise TrainError(f"model.init {directory}: the policy does not fit this run: {', '.join(differ)}")
    return policy


class PolicyLossModule(nn.Module):
    """The policy (reached as ``denoiser.policy``) and its joint loss as one forward."""

    def __init__(self, denoiser: JointDenoiser, cfg: PolicyTrainConfig) -> None:
        super().__init__()
        self.denoiser = denoiser
        self.cfg = cfg

    def forward(self, video: Tensor, view_ids: Tensor, actions: Tensor, context: Tensor, sigma_v: Tensor,
                sigma_a: Tensor, lengths: Tensor, drop: Tensor, noise_v: Tensor,
                noise_a: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        policy = self.denoiser.policy
        noise = PolicyNoise(sigma_v, sigma_a, lengths.cpu(), drop, noise_v, noise_a)
        batch = PolicyBatch(video, view_ids, policy.normalize_actions(actions), context)
        loss, stats = policy_loss(policy, batch, self.cfg, denoiser=self.denoiser, noise=noise)
        return loss, {"mse_video": stats["mse_video"].mean(), "mse_action": stats["mse_action"].mean()}


class PolicyJob:
    name = "policy"
    metric_names = ("mse_video", "mse_action")

    def __init__(self, data: PolicyData, model: PolicyModelConfig, objective: PolicyTrainConfig,
                 tokenizer: WanTokenizer, text_cache: TextEmbeddingCache, seed: int = 0) -> None:
        self.data, self.objective = data, objective
        self.tokenizer, self.text_cache = tokenizer, text_cache
        horizon = data.actions.shape[1]
        # the same action-stream sizes as a policy built from scratch (tiny_policy_config)
        overrides = {"action_horizon": horizon, "text_tokens": text_cache.max_length,
                     "max_prefix": min(20, horizon // 3), **model.policy_overrides()}
        continued = bool(model.init) and is_policy_checkpoint(model.init)
        if continued:
            policy = _continue_policy(model.init, overrides)
            self.init_note = f"continued from the policy {model.init} (all weights, its action statistics)"
        elif model.init:
            from a2world.policy.init import init_policy_from_files

            try:
                policy, report = init_policy_from_files(model.init, seed=seed, **overrides)
            except (OSError, ValueError) as exc:
                raise TrainError(f"model.init {model.init}: {str(exc).splitlines()[0]}") from None
            self.init_note = f"initialised from A2World {model.init} ({report.summary()})"
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                policy = build_policy(model.build())
                init_action_head_(policy)
            self.init_note = "from scratch: no pretrained A2World given (model.init), backbone random"
        log.info("policy: %s", self.init_note)
        self.config = pc = policy.config
        self._check(pc)
        if not continued:
            flat = data.actions.reshape(-1, pc.action_width).double()
            policy.set_action_stats(flat.mean(0).float(), flat.std(0).clamp(min=ACTION_STD_FLOOR).float())
        self.policy = policy
        h, w = data.video.shape[-2:]
        p = pc.backbone.patch_spatial
        self._module = PolicyLossModule(JointDenoiser(policy, len(data.view_ids), h // p, w // p), objective)
        self.context = torch.stack([text_cache.get(t) for t in data.instructions])  # (I, L, ctx)

    def _check(self, pc: PolicyConfig) -> None:
        d = self.data
        v = len(d.view_ids)
        if d.video.shape[1] != pc.backbone.latent_channels or d.video.shape[2] != v * pc.latent_frames:
            raise TrainError(f"policy data: latents {tuple(d.video.shape)} do not fit the policy "
                             f"({pc.backbone.latent_channels} channels, {v}·{pc.latent_frames} latent frames)")
        if tuple(d.actions.shape[1:]) != (pc.action_horizon, pc.action_width):
            raise TrainError(f"policy data: action chunks {tuple(d.actions.shape[1:])}, the policy predicts "
                             f"{(pc.action_horizon, pc.action_width)}")
        if max(d.view_ids) >= pc.backbone.n_cameras_emb:
            raise TrainError(f"policy data: view ids {d.view_ids} exceed the model's {pc.backbone.n_cameras_emb}")
        if self.text_cache.dim != pc.context_dim or self.text_cache.max_length != pc.text_tokens:
            raise TrainError(f"text embeddings are ({self.text_cache.max_length}, {self.text_cache.dim}), the policy "
                             f"reads ({pc.text_tokens}, {pc.context_dim})")
        if self.tokenizer.latent_channels != pc.backbone.latent_channels:
            raise TrainError(f"tokenizer has {self.tokenizer.latent_channels} latent channels, the policy "
                             f"{pc.backbone.latent_channels}")

    def module(self) -> nn.Module:
        return self._module

    def shard_units(self) -> tuple[nn.ModuleList | None, str]:
        return self.policy.blocks, "forward_joint"

    def num_samples(self) -> int:
        return int(self.data.video.shape[0])

    def sample_weights(self) -> Tensor | None:
        return None if self.data.weights is None else self.data.weights.double()

    def inputs(self, indices: Tensor, generator: torch.Generator, part: slice,
               device: torch.device) -> tuple[Tensor, ...]:
        d = self.data
        video, actions = d.video[indices], d.actions[indices]
        noise = sample_noise(self.config, tuple(video.shape), tuple(actions.shape), self.objective, generator)
        noise = noise.slice(part.start, part.stop)
        local = indices[part]
        view_ids = torch.tensor([list(d.view_ids)] * len(local), dtype=torch.long)
        tensors = (d.video[local], view_ids, d.actions[local], self.context[d.instruction[local]],
                   noise.sigma_video, noise.sigma_action, noise.prefix_lengths, noise.drop, noise.video,
                   noise.action)
        return tuple(t.to(device) for t in tensors)

    def export(self, directory: Path, state: dict[str, Tensor]) -> None:
        prefix = "denoiser.policy."
        policy = build_policy(self.config)
        policy.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}, strict=True)
        directory.mkdir(parents=True, exist_ok=True)
        runtime = RuntimeInfo(tuple(self.data.image_size), tuple(self.data.view_ids), self.data.instructions[0])
        save_bundle(directory, policy.eval(), self.tokenizer, self.text_cache, runtime)
