"""Fine-tuning A2World into A2World-sim, the history-aware world model (paper §3.2, release facts §4.6).

The net is the sim variant at the pretrained run's widths, initialised from that run's exported
A2World: every shared weight is copied, the pretrained cross-attention (``blocks.i.cross_attn``)
becomes the sim net's ``blocks.i.cross_biased_attn.core`` (same shapes, ``output_proj`` named
``out_proj``), the pretrained-only ``black_to_crossattn_emb`` is dropped, and the history modules
(``history_tokenizer``, ``mem_to_k``/``mem_to_v``, ``vpb``) start fresh with PyTorch's default
initialisation (the facts do not say how the release initialises them; the release fine-tunes
every parameter from a2world-pretrained, and so does this job).

Each training sample carries its history as inference builds it (``a2world.history.HistoryBuffer``
filled with the episode's frames and executed actions up to the clip's first frame, then
``select`` and ``a2world.rollout.encode_history_frames``); the runtime core computes those tensors
(``a2w.train.sim_history``) and caches them next to the clip latents. The objective is the world
model's (``WorldModelLossModule``) with the history passed to the net. The release's self-forcing
schedule (§4.6: some targets conditioned on the model's own few-step generations) is not
implemented: every sample is conditioned on real frames.

Batches: the release's view-pair-bias batch bug (quirk ``vpb_batch_mixing``, §4.4) would give each
sample another sample's bias whenever the batch is larger than one, so the sim config turns it off;
at batch 1 (every rollout and the shadow) both settings compute the same thing.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from a2world.config import DiTConfig
from a2world.dit import A2WorldDiT, build_dit
from a2world.history import HistoryBuffer
from a2world.load_checks import JsonConfig
from a2world.tokenizer import WanTokenizer
from a2world.train.run import TrainError
from a2world.train.worldmodel import (
    ACTION_STD_FLOOR,
    WorldModelData,
    WorldModelJob,
    WorldModelLossModule,
    WorldModelObjective,
    unfold_action_normalisation,
)

log = logging.getLogger(__name__)

FRESH_PREFIXES = ("history_tokenizer.", "mem_to_k.", "mem_to_v.", "vpb.")
_CROSS = re.compile(r"^blocks\.(\d+)\.cross_attn\.(.+)$")


@dataclass(frozen=True)
class SimModelConfig(JsonConfig):
    """``model`` section of the worldmodel-sim job: where it starts and the history budget."""

    init: str = ""  # a `worldmodel` run directory (its exported A2World, same widths)
    # Th, history frames per view (§4.1), kept in the exported config as history_frames_per_view. A
    # history starts from RolloutConfig's 20 copies of the first frame whatever Th is, as inference does.
    history_length: int = 20

    def __post_init__(self) -> None:
        if not self.init:
            raise ValueError("model.init must name a worldmodel run directory (its exported A2World)")
        if self.history_length < 2:
            raise ValueError(f"model.history_length must be >= 2, got {self.history_length}")


def sim_config(pretrained: DiTConfig, history_length: int = 20) -> DiTConfig:
    """The A2World-sim config at a pretrained config's widths and clip geometry."""
    if pretrained.variant != "pretrained":
        raise TrainError(f"model.init: a {pretrained.variant!r} checkpoint; A2World-sim starts from a pretrained one")
    quirks = dataclasses.replace(pretrained.quirks, vpb_batch_mixing=False)
    return dataclasses.replace(pretrained, variant="sim", history_frames_per_view=history_length, quirks=quirks)


def history_latents_per_view(n_views: int, history_length: int, temporal: int, single_video: bool) -> int:
    """Latent frames per view of a history (``encode_history_frames``); TrainError when the views'
    latents do not split evenly (the release's single-video encoding, §4.2)."""
    if not single_video:
        return 1 + (history_length - 1) // temporal
    latents = 1 + (n_views * history_length - 1) // temporal
    if latents % n_views:
        raise TrainError(f"model.history_length {history_length}: {n_views} views' history encoded as one video "
                         f"gives {latents} latents, not a multiple of {n_views} (20 gives 5 per view)")
    return latents // n_views


def sim_from_pretrained(pretrained: A2WorldDiT, config: DiTConfig, seed: int = 0) -> tuple[A2WorldDiT, list[str]]:
    """A sim net holding ``pretrained``'s weights (module docstring) and the names of its fresh tensors."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build_dit(config)
    own = net.state_dict()
    mapped: dict[str, Tensor] = {}
    for key, value in pretrained.state_dict().items():
        m = _CROSS.match(key)
        name = f"blocks.{m[1]}.cross_biased_attn.core.{m[2].replace('output_proj', 'out_proj')}" if m else key
        if name not in own:
            continue  # black_to_crossattn_emb: the pretrained class only
        if own[name].shape != value.shape:
            raise TrainError(f"model.init: {key} is {tuple(value.shape)}, the sim net's {name} is "
                             f"{tuple(own[name].shape)}")
        mapped[name] = value
    fresh = sorted(set(own) - set(mapped))
    unexpected = [k for k in fresh if not k.startswith(FRESH_PREFIXES)]
    if unexpected:
        raise TrainError(f"model.init: no pretrained weights for {', '.join(unexpected[:5])}")
    net.load_state_dict({**own, **mapped}, strict=True)
    return net, fresh


@dataclass
class WorldModelSimData(WorldModelData):
    """The world model's clips plus each clip's history: latents (N, C, V·L, h, w) and action-path
    features (N, K, Th, 22), as ``HistoryInputs`` holds them for one sample."""

    history_latent: Tensor
    history_state: Tensor

    def __post_init__(self) -> None:
        super().__post_init__()
        n = self.video.shape[0]
        if self.history_latent.shape[0] != n or self.history_state.shape[0] != n:
            raise TrainError(f"world-model-sim data: {n} clips, {self.history_latent.shape[0]} history latents, "
                             f"{self.history_state.shape[0]} history features")


class WorldModelSimJob(WorldModelJob):
    """The world-model job on the sim net, each sample with its history."""

    name = "worldmodel-sim"

    def __init__(self, data: WorldModelSimData, pretrained: A2WorldDiT, model: SimModelConfig,
                 objective: WorldModelObjective, tokenizer: WanTokenizer, seed: int = 0) -> None:
        self.data, self.objective, self.tokenizer = data, objective, tokenizer
        self.config = cfg = sim_config(pretrained.config, model.history_length)
        v = len(data.view_ids)
        if data.video.shape[1] != cfg.latent_channels or data.video.shape[2] != v * cfg.state_t:
            raise TrainError(f"world-model-sim data: latents {tuple(data.video.shape)} do not fit the model "
                             f"({cfg.latent_channels} channels, {v}·{cfg.state_t} latent frames)")
        if tuple(data.actions.shape[1:]) != (cfg.action_chunk, cfg.action_width):
            raise TrainError(f"world-model-sim data: action chunks {tuple(data.actions.shape[1:])}, the model reads "
                             f"{(cfg.action_chunk, cfg.action_width)}")
        if tuple(data.history_state.shape[1:3]) != (cfg.action_chunk, model.history_length):
            raise TrainError(f"world-model-sim data: history features {tuple(data.history_state.shape[1:])} for "
                             f"{cfg.action_chunk} future steps and {model.history_length} history slots")
        self.net, fresh = sim_from_pretrained(pretrained.float(), cfg, seed)
        log.info("A2World-sim initialised from A2World; fresh: %s", ", ".join(sorted({k.split(".")[0] for k in fresh})))
        flat = data.actions.reshape(-1, cfg.action_width).double()
        mean, std = flat.mean(0).float(), flat.std(0).clamp(min=ACTION_STD_FLOOR).float()
        # the exported A2World reads raw deltas; training reads normalised ones (folded back at export)
        unfold_action_normalisation(self.net, mean, std)
        self._module = WorldModelLossModule(self.net, objective, mean, std)

    def inputs(self, indices: Tensor, generator: torch.Generator, part: slice,
               device: torch.device) -> tuple[Tensor, ...]:
        local = indices[part]
        d = self.data
        assert isinstance(d, WorldModelSimData)
        return (*super().inputs(indices, generator, part, device), d.history_latent[local].to(device),
                d.history_state[local].to(device))


def history_from_past(frames: list[np.ndarray], actions: np.ndarray, history_length: int = 20,
                      initial_copies: int = 20) -> HistoryBuffer:
    """The history an A2World-sim rollout holds after starting at node 0 and seeing nodes 1..n.

    ``frames``: per view (n + 1, H, W, 3) uint8, one frame per 10 Hz node; ``actions``: (n, 14), action
    i moving node i to node i + 1. Built with ``HistoryBuffer`` itself (its start, then one append),
    so training and inference cannot drift apart.
    """
    n = len(actions)
    if any(len(f) != n + 1 for f in frames):
        raise ValueError(f"each view needs {n + 1} frames for {n} actions, got {[len(f) for f in frames]}")
    buf = HistoryBuffer([f[0] for f in frames], history_length, initial_copies)
    if n:
        buf.append([f[1:] for f in frames], actions)
    return buf
