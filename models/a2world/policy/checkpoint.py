"""A2World-policy checkpoints: a directory with `model.safetensors` and `config.json`.

Loading is strict in the same way as the backbone's (`a2world.checkpoint.load_into`): every
missing, unexpected or mis-shaped key is listed; RoPE buffers are regenerated; every load error is a
`CheckpointLoadError` naming the file; NaN/Inf weights are refused unless `allow_nonfinite`.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from a2world.checkpoint import CONFIG_FILE, load_directory_weights, write_directory
from a2world.load_checks import CheckpointLoadError, CheckpointNotFoundError, parse_config, read_json_file
from a2world.policy.config import PolicyConfig
from a2world.policy.model import A2WorldPolicy, build_policy

POLICY_FORMAT = "a2world-policy"


def save_policy(policy: A2WorldPolicy, directory: str | Path) -> Path:
    payload = {"format": POLICY_FORMAT, "config": policy.config.to_dict()}
    return write_directory(policy, directory, {"format": POLICY_FORMAT}, json.dumps(payload, indent=2, sort_keys=True))


def is_policy_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` is a policy checkpoint directory (its config.json says so), as opposed to an
    A2World backbone directory or release file. Unreadable configs count as not a policy."""
    config = Path(path) / CONFIG_FILE
    try:
        return json.loads(config.read_text()).get("format") == POLICY_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


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
    policy = build_policy(config, "meta")
    return load_directory_weights(policy, Path(directory), "policy", device, dtype, allow_nonfinite=allow_nonfinite)
