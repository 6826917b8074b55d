"""A2World-policy checkpoints: a directory with `model.safetensors` and `config.json`.

Loading is strict in the same way as the backbone's (`a2world.checkpoint.load_into`): every
missing, unexpected or mis-shaped key is listed; RoPE buffers are regenerated.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from a2world.checkpoint import CONFIG_FILE, WEIGHTS_FILE, load_into
from a2world.policy import A2WorldPolicy, build_policy
from a2world.policy_config import PolicyConfig

POLICY_FORMAT = "a2world-policy"


def save_policy(policy: A2WorldPolicy, directory: str | Path) -> Path:
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in policy.state_dict().items()}
    save_file(state, str(out / WEIGHTS_FILE), metadata={"format": POLICY_FORMAT})
    payload = {"format": POLICY_FORMAT, "config": policy.config.to_dict()}
    (out / CONFIG_FILE).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return out


def read_policy_config(directory: str | Path) -> PolicyConfig:
    path = Path(directory) / CONFIG_FILE
    payload = json.loads(path.read_text())
    if payload.get("format") != POLICY_FORMAT:
        raise ValueError(f"{path}: not an A2World-policy checkpoint (format={payload.get('format')!r})")
    return PolicyConfig.from_dict(payload["config"])


def load_policy(
    directory: str | Path, device: torch.device | str = "cpu", dtype: torch.dtype | None = None
) -> A2WorldPolicy:
    config = read_policy_config(directory)
    state = load_file(str(Path(directory) / WEIGHTS_FILE))
    policy = load_into(build_policy(config, "meta"), state, device)  # type: ignore[arg-type]
    if dtype is not None:
        policy.to(dtype)
    return policy.eval()
