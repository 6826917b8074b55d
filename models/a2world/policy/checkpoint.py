"""A2World-policy checkpoints: a directory with `model.safetensors` and `config.json`.

Loading is strict in the same way as the backbone's (`a2world.checkpoint.load_into`): every
missing, unexpected or mis-shaped key is listed; RoPE buffers are regenerated; every load error is a
`CheckpointLoadError` naming the file; NaN/Inf weights are refused unless `allow_nonfinite`.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from a2world.checkpoint import CONFIG_FILE, WEIGHTS_FILE, load_into
from a2world.load_checks import (
    CheckpointLoadError,
    CheckpointNotFoundError,
    crc_metadata,
    parse_config,
    read_json_file,
    read_safetensors_file,
)
from a2world.policy.model import A2WorldPolicy, build_policy
from a2world.policy.config import PolicyConfig

POLICY_FORMAT = "a2world-policy"


def save_policy(policy: A2WorldPolicy, directory: str | Path) -> Path:
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in policy.state_dict().items()}
    save_file(state, str(out / WEIGHTS_FILE), metadata={"format": POLICY_FORMAT, **crc_metadata(state)})
    payload = {"format": POLICY_FORMAT, "config": policy.config.to_dict()}
    (out / CONFIG_FILE).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return out


def read_policy_config(directory: str | Path) -> PolicyConfig:
    if not Path(directory).is_dir():
        raise CheckpointNotFoundError(directory, "policy checkpoint directory not found")
    path = Path(directory) / CONFIG_FILE
    payload = read_json_file(path, "policy config")
    if payload.get("format") != POLICY_FORMAT:
        raise CheckpointLoadError(path, f"not an A2World-policy checkpoint (format={payload.get('format')!r})")
    if "config" not in payload:
        raise CheckpointLoadError(path, "policy config has no 'config' entry")
    return parse_config(path, lambda: PolicyConfig.from_dict(payload["config"]), "policy config")


def load_policy(
    directory: str | Path,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
    *,
    allow_nonfinite: bool = False,
) -> A2WorldPolicy:
    config = read_policy_config(directory)
    weights = Path(directory) / WEIGHTS_FILE
    _, state = read_safetensors_file(weights, "policy weights file")
    policy = build_policy(config, "meta")
    load_into(policy, state, device, source=weights, allow_nonfinite=allow_nonfinite)  # type: ignore[arg-type]
    if dtype is not None:
        policy.to(dtype)
    return policy.eval()
