"""Build A2World-policy from A2World weights (paper §4.1).

Key mapping (policy key <- A2World key, both without `net.`):
- every video-path key <- the same key (patch embed, RoPE, timestep MLP and norm, view embeddings,
  all 28 keys of each block, final layer);
- `blocks.i.action_adaln_modulation_{self_attn,cross_attn,mlp}.*` <- `blocks.i.adaln_modulation_*`;
- `blocks.i.action_mlp.layer{1,2}.weight` <- `blocks.i.mlp.layer{1,2}.weight` (first hidden units
  when the action MLP is narrower);
- `action_final_layer.adaln_modulation.*` <- `final_layer.adaln_modulation.*`;
- `t_embedding_offset` / `adaln_lora_offset` <- `action_embedder_B_D_agi` / `_B_3D_agi` evaluated at a
  zero action chunk;
- `blocks.i.cross_attn.*` <- the same key (pretrained file), `blocks.i.cross_biased_attn.core.*` with
  `out_proj` -> `output_proj` (A2World-sim file), or a separate checkpoint's `blocks.i.cross_attn.*`
  (the paper takes them from Cosmos-Predict2-2B, since A2World pretraining used a zero text context);
- fresh: `action_x_embedder.weight` (small normal), `action_final_layer.linear.weight` (zeros),
  `action_mean` / `action_std` (0 / 1);
- dropped: `action_embedder_*`, `action_to_crossattn_emb.*`, `black_to_crossattn_emb.*`, the sim
  history modules.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

from a2world.checkpoint import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    CheckpointMismatchError,
    compare_keys,
    model_layout,
    read_dit_config,
    rope_buffer_names,
    strip_prefix,
)
from a2world.config import DiTConfig, released_config
from a2world.dit import build_dit
from a2world.load_checks import (
    CheckpointLoadError,
    CheckpointNotFoundError,
    check_tensors,
    read_safetensors_file,
    read_torch_file,
)
from a2world.policy.blocks import SUBLAYERS
from a2world.policy.config import PolicyConfig
from a2world.policy.model import A2WorldPolicy, build_policy, init_action_head_
from a2world.release_layout import detect_variant

log = logging.getLogger(__name__)

CROSS_ATTN_PARTS: tuple[str, ...] = (
    "q_proj.weight",
    "q_norm.weight",
    "k_proj.weight",
    "k_norm.weight",
    "v_proj.weight",
    "output_proj.weight",
)
DROPPED_PREFIXES: tuple[str, ...] = (
    "action_embedder_B_D_agi.",
    "action_embedder_B_3D_agi.",
    "action_to_crossattn_emb.",
    "black_to_crossattn_emb.",
    "history_tokenizer.",
    "mem_to_k.",
    "mem_to_v.",
    "vpb.",
)
FRESH_KEYS: tuple[str, ...] = (
    "action_x_embedder.weight",
    "action_final_layer.linear.weight",
    "action_mean",
    "action_std",
)
DERIVED_KEYS: dict[str, str] = {
    "t_embedding_offset": "action_embedder_B_D_agi",
    "adaln_lora_offset": "action_embedder_B_3D_agi",
}


@dataclass
class InitReport:
    source_variant: str
    copied: dict[str, str] = field(default_factory=dict)  # policy key -> A2World key
    derived: dict[str, str] = field(default_factory=dict)  # policy key -> A2World module
    fresh: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    cross_attention_from: str = "a2world"

    def summary(self) -> str:
        return (
            f"source {self.source_variant}: {len(self.copied)} copied, {len(self.derived)} derived, "
            f"{len(self.fresh)} fresh, {len(self.dropped)} A2World keys dropped; "
            f"cross-attention from {self.cross_attention_from}"
        )


def _source_key(policy_key: str, variant: str) -> str:
    """The A2World key a copied policy key comes from (see the module docstring)."""
    m = re.match(r"blocks\.(\d+)\.(.*)$", policy_key)
    if m:
        i, rest = m.groups()
        for s in SUBLAYERS:
            if rest.startswith(f"action_adaln_modulation_{s}."):
                return f"blocks.{i}.adaln_modulation_{s}." + rest.split(".", 1)[1]
        if rest.startswith("action_mlp."):
            return f"blocks.{i}.mlp." + rest.split(".", 1)[1]
        if rest.startswith("cross_attn.") and variant == "sim":
            part = rest.split(".", 1)[1].replace("output_proj", "out_proj")
            return f"blocks.{i}.cross_biased_attn.core.{part}"
        return policy_key
    if policy_key.startswith("action_final_layer.adaln_modulation."):
        return "final_layer." + policy_key.split(".", 1)[1]
    return policy_key


def zero_action_embedding(state: Mapping[str, torch.Tensor], prefix: str) -> torch.Tensor:
    """Output of an A2World action MLP (fc1 -> tanh-GELU -> fc2) for an all-zero chunk."""
    b1 = state[f"{prefix}.fc1.bias"].float()
    w2, b2 = state[f"{prefix}.fc2.weight"].float(), state[f"{prefix}.fc2.bias"].float()
    return w2 @ torch.nn.functional.gelu(b1, approximate="tanh") + b2


def cross_attention_subset(state: Mapping[str, torch.Tensor], num_blocks: int) -> dict[str, torch.Tensor]:
    """`blocks.i.cross_attn.*` from another checkpoint (with or without `net.`); all must exist."""
    state = strip_prefix(state)
    wanted = [f"blocks.{i}.cross_attn.{p}" for i in range(num_blocks) for p in CROSS_ATTN_PARTS]
    missing = [k for k in wanted if k not in state]
    if missing:
        shown = ", ".join(missing[:6])
        raise ValueError(f"cross-attention checkpoint lacks {len(missing)} of {len(wanted)} keys: {shown} …")
    return {k: state[k] for k in wanted}


def init_policy_from_state(
    state: Mapping[str, torch.Tensor],
    config: PolicyConfig,
    cross_attention: Mapping[str, torch.Tensor] | None = None,
    seed: int = 0,
    cross_attention_name: str = "checkpoint",
) -> tuple[A2WorldPolicy, InitReport]:
    """Policy initialised from an A2World state dict (keys with or without `net.`).

    The state is first checked strictly against the A2World layout for `config.backbone` (in the
    variant its keys say), so a wrong or truncated file fails with every offending key listed.
    """
    state = strip_prefix(state)
    variant = detect_variant(list(state))
    expected = model_layout(build_dit(config.backbone.with_updates(variant=variant), "meta"))
    report_keys = compare_keys(state, expected)
    if not report_keys.ok:
        raise CheckpointMismatchError(report_keys)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        policy = build_policy(config)
        init_action_head_(policy)
    target = policy.state_dict()
    report = InitReport(source_variant=variant)
    rope = rope_buffer_names(policy)
    cross = cross_attention_subset(cross_attention, config.backbone.num_blocks) if cross_attention else None

    new_state: dict[str, torch.Tensor] = {}
    for key, current in target.items():
        if key in rope or key in FRESH_KEYS:
            new_state[key] = current
            if key in FRESH_KEYS:
                report.fresh.append(key)
            continue
        if key in DERIVED_KEYS:
            new_state[key] = zero_action_embedding(state, DERIVED_KEYS[key])
            report.derived[key] = DERIVED_KEYS[key]
            continue
        if cross is not None and key in cross:
            value, src = cross[key], f"{cross_attention_name}:{key}"
        else:
            src = _source_key(key, variant)
            value = state[src]
        if key.endswith("action_mlp.layer1.weight"):
            value = value[: current.shape[0]]
        elif key.endswith("action_mlp.layer2.weight"):
            value = value[:, : current.shape[1]]
        if tuple(value.shape) != tuple(current.shape):
            raise ValueError(f"{key}: source {src} has shape {tuple(value.shape)}, policy needs {tuple(current.shape)}")
        new_state[key] = value
        report.copied[key] = src
    new_state = {k: v.detach().to(target[k].dtype).clone() for k, v in new_state.items()}
    policy.load_state_dict(new_state, strict=True)
    used = set(report.copied.values())
    report.dropped = sorted(k for k in state if k not in used and k.startswith(DROPPED_PREFIXES))
    if cross is not None:
        report.cross_attention_from = cross_attention_name
    log.info("policy init: %s", report.summary())
    return policy.eval(), report


# ------------------------------------------------------------------------------------- files
def read_state_dict(path: str | Path, *, allow_nonfinite: bool = False) -> dict[str, torch.Tensor]:
    """Tensors from our checkpoint directory, a .safetensors file, or a .pt/.pth dict (nested
    `model`/`state_dict` entries are unwrapped). Errors name the file; float tensors of another
    dtype than bf16/fp16/fp32 and (unless allowed) NaN/Inf are refused."""
    p = Path(path)
    if p.is_dir():
        p = p / WEIGHTS_FILE
    if p.suffix == ".safetensors":
        _, state = read_safetensors_file(p, "checkpoint")
    elif p.suffix in (".pt", ".pth"):
        raw: Any = read_torch_file(p, "checkpoint")
        for key in ("model", "state_dict", "net_ema"):
            if isinstance(raw, Mapping) and isinstance(raw.get(key), Mapping):
                raw = raw[key]
        if not isinstance(raw, Mapping):
            raise CheckpointLoadError(p, f"expected a dict of tensors, got {type(raw).__name__}")
        # training checkpoints also hold counters and other non-tensor entries
        state = {k: v for k, v in raw.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    elif not p.exists():
        raise CheckpointNotFoundError(p, "checkpoint not found")
    else:
        raise CheckpointLoadError(p, "expected a checkpoint directory, .safetensors, .pt or .pth file")
    weights = {k: v for k, v in state.items() if v.is_floating_point()}
    check_tensors(p, weights, allow_nonfinite=allow_nonfinite)
    return state


def backbone_config_of(path: str | Path, state: Mapping[str, torch.Tensor]) -> DiTConfig:
    """The A2World config of a checkpoint: our directory's config.json, else the released 2B."""
    p = Path(path)
    if p.is_dir() and (p / CONFIG_FILE).exists():
        return read_dit_config(p / CONFIG_FILE)
    return released_config(detect_variant(list(state)))


def init_policy_from_files(
    source: str | Path,
    cross_attention: str | Path | None = None,
    seed: int = 0,
    *,
    allow_nonfinite: bool = False,
    **policy_overrides: Any,
) -> tuple[A2WorldPolicy, InitReport]:
    """`a2w policy init`: A2World checkpoint (official .pt or our directory) -> policy."""
    state = read_state_dict(source, allow_nonfinite=allow_nonfinite)
    backbone = backbone_config_of(source, strip_prefix(state)).with_updates(variant="pretrained")
    config = PolicyConfig(backbone=backbone, **policy_overrides)
    cross = read_state_dict(cross_attention, allow_nonfinite=allow_nonfinite) if cross_attention is not None else None
    return init_policy_from_state(state, config, cross, seed, str(cross_attention) if cross_attention else "a2world")
