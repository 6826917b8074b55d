"""Checkpoint import (the released `.pt` files) and our own format (safetensors + config.json).

Loading is strict: a missing, unexpected or mis-shaped key is an error that lists them all. The
RoPE buffers are regenerated rather than taken from the file (a2world_release_facts.md §2.1).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import torch
from safetensors.torch import load_file, save_file

from a2world.config import DiTConfig, released_config
from a2world.dit import A2WorldDiT, build_dit
from a2world.release_layout import CHECKPOINT_PREFIX, detect_variant
from a2world.rope import RotaryPosition3D

log = logging.getLogger(__name__)

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


@dataclass
class KeyReport:
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mis_shaped: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mis_shaped)

    def describe(self, limit: int = 20) -> str:
        lines = []
        for title, items in (
            ("missing", self.missing),
            ("unexpected", self.unexpected),
            ("mis-shaped (key, file, expected)", self.mis_shaped),
        ):
            if items:
                shown = ", ".join(str(i) for i in items[:limit])
                more = f" … and {len(items) - limit} more" if len(items) > limit else ""
                lines.append(f"{len(items)} {title}: {shown}{more}")
        return "; ".join(lines) if lines else "all keys match"


class CheckpointMismatchError(ValueError):
    def __init__(self, report: KeyReport) -> None:
        super().__init__(f"checkpoint does not match the model: {report.describe()}")
        self.report = report


def compare_keys(
    state: Mapping[str, torch.Tensor], expected: Mapping[str, tuple[int, ...]]
) -> KeyReport:
    """Compare a state dict's keys and shapes with an expected layout."""
    report = KeyReport()
    report.missing = sorted(k for k in expected if k not in state)
    report.unexpected = sorted(k for k in state if k not in expected)
    for k in sorted(set(state) & set(expected)):
        got = tuple(state[k].shape)
        if got != tuple(expected[k]):
            report.mis_shaped.append((k, got, tuple(expected[k])))
    return report


def model_layout(model: A2WorldDiT) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def strip_prefix(state: Mapping[str, torch.Tensor], prefix: str = CHECKPOINT_PREFIX) -> dict[str, torch.Tensor]:
    """Drop `net.` from every key; keys without it are kept (they will show up as unexpected)."""
    return {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state.items()}


def _rope_buffer_names(model: A2WorldDiT) -> dict[str, RotaryPosition3D]:
    out = {}
    for name, module in model.named_modules():
        if isinstance(module, RotaryPosition3D):
            for buf in ("seq", "dim_spatial_range", "dim_temporal_range"):
                out[f"{name}.{buf}"] = module
    return out


def check_rope_buffers(state: Mapping[str, torch.Tensor], model: A2WorldDiT) -> list[str]:
    """Names of stored RoPE buffers that differ from what a bf16 build of our formula stores."""
    bad = []
    for key, module in _rope_buffer_names(model).items():
        if key not in state:
            continue
        ref = module.reference_buffers(torch.bfloat16)[key.rsplit(".", 1)[1]]
        stored = state[key].detach().to("cpu", torch.bfloat16)
        if stored.shape != ref.shape or not torch.equal(stored, ref):
            bad.append(key)
    return bad


def load_into(
    model: A2WorldDiT, state: Mapping[str, torch.Tensor], device: torch.device | str = "cpu"
) -> A2WorldDiT:
    """Strictly load `state` into a (possibly `meta`) model; RoPE buffers are regenerated."""
    report = compare_keys(state, model_layout(model))
    if not report.ok:
        raise CheckpointMismatchError(report)
    differing = check_rope_buffers(state, model)
    if differing:
        log.warning("stored RoPE buffers differ from the formula (ignored, regenerated): %s", differing)
    rope = _rope_buffer_names(model)
    weights = {k: v.to(device) for k, v in state.items() if k not in rope}
    model.load_state_dict(weights, strict=False, assign=True)
    for key, module in rope.items():
        name = key.rsplit(".", 1)[1]
        fresh = {
            "seq": torch.arange(module.seq.numel(), dtype=torch.float32),
            "dim_spatial_range": module.spatial_range(),
            "dim_temporal_range": module.temporal_range(),
        }[name]
        setattr(module, name, fresh.to(device))
    return model


def load_reference_checkpoint(
    path: str | Path,
    config: DiTConfig | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
) -> A2WorldDiT:
    """Load an official `a2world-*.pt` (plain dict of bf16 tensors with `net.` keys).

    The variant comes from the keys; `config` defaults to the released 2B configuration of it.
    """
    raw = torch.load(Path(path), map_location="cpu", weights_only=True, mmap=True)
    if not isinstance(raw, Mapping):
        raise ValueError(f"{path}: expected a dict of tensors, got {type(raw).__name__}")
    state = strip_prefix(raw)
    variant = detect_variant(list(state))
    if config is None:
        config = released_config(variant)
    elif config.variant != variant:
        raise ValueError(f"{path}: keys say variant {variant!r}, config says {config.variant!r}")
    model = load_into(build_dit(config, "meta"), state, device)
    if dtype is not None:
        model.to(dtype)
    return model.eval()


def save_checkpoint(model: A2WorldDiT, directory: str | Path) -> Path:
    """Write `model.safetensors` and `config.json` into `directory` (created if needed)."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(out / WEIGHTS_FILE), metadata={"format": "a2world", "variant": model.config.variant})
    (out / CONFIG_FILE).write_text(model.config.to_json() + "\n")
    return out


def load_checkpoint(
    directory: str | Path, device: torch.device | str = "cpu", dtype: torch.dtype | None = None
) -> A2WorldDiT:
    """Load a directory written by `save_checkpoint` (strict, like the reference import)."""
    d = Path(directory)
    config = DiTConfig.from_dict(json.loads((d / CONFIG_FILE).read_text()))
    state = load_file(str(d / WEIGHTS_FILE))
    model = load_into(build_dit(config, "meta"), state, device)
    if dtype is not None:
        model.to(dtype)
    return model.eval()


def load_any(
    path: str | Path, device: torch.device | str = "cpu", dtype: torch.dtype | None = None
) -> A2WorldDiT:
    """A directory in our format, or an official `.pt` file."""
    p = Path(path)
    if p.is_dir():
        return load_checkpoint(p, device, dtype)
    if p.suffix == ".pt":
        return load_reference_checkpoint(p, device=device, dtype=dtype)
    raise ValueError(f"{path}: expected a checkpoint directory or a .pt file")
