"""Checkpoint import (the released `.pt` files) and our own format (safetensors + config.json).

Loading is strict: a missing, unexpected or mis-shaped key is an error that lists them all. The
RoPE buffers are regenerated rather than taken from the file (a2world_release_facts.md §2.1).
Every load error is an `a2world.load_checks.CheckpointLoadError` naming the file and the problem;
tensors of another dtype than bf16/fp16/fp32 and (unless `allow_nonfinite`) NaN/Inf are refused.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, TypeVar

import torch
from safetensors.torch import save_file
from torch import nn

from a2world.config import DiTConfig, released_config
from a2world.dit import A2WorldDiT, build_dit
from a2world.load_checks import (
    CheckpointLoadError,
    CheckpointNotFoundError,
    check_tensors,
    crc_metadata,
    parse_config,
    read_json_file,
    read_safetensors_file,
    read_torch_file,
    tensor_dict,
)
from a2world.release_layout import CHECKPOINT_PREFIX, detect_variant
from a2world.rope import RotaryPosition3D

log = logging.getLogger(__name__)

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"

M = TypeVar("M", bound=nn.Module)


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


class CheckpointMismatchError(CheckpointLoadError):
    def __init__(self, report: KeyReport, source: str | Path = "<state dict>") -> None:
        super().__init__(source, f"checkpoint does not match the model: {report.describe()}")
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


def model_layout(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def strip_prefix(state: Mapping[str, torch.Tensor], prefix: str = CHECKPOINT_PREFIX) -> dict[str, torch.Tensor]:
    """Drop `net.` from every key; keys without it are kept (they will show up as unexpected)."""
    return {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state.items()}


def rope_buffer_names(model: nn.Module) -> dict[str, RotaryPosition3D]:
    """State-dict keys of the RoPE buffers (checked and regenerated, never loaded) -> their module."""
    out = {}
    for name, module in model.named_modules():
        if isinstance(module, RotaryPosition3D):
            for buf in ("seq", "dim_spatial_range", "dim_temporal_range"):
                out[f"{name}.{buf}"] = module
    return out


def check_rope_buffers(state: Mapping[str, torch.Tensor], model: nn.Module) -> list[str]:
    """Names of stored RoPE buffers that differ from what a bf16 build of our formula stores."""
    bad = []
    for key, module in rope_buffer_names(model).items():
        if key not in state:
            continue
        ref = module.reference_buffers(torch.bfloat16)[key.rsplit(".", 1)[1]]
        stored = state[key].detach().to("cpu", torch.bfloat16)
        if stored.shape != ref.shape or not torch.equal(stored, ref):
            bad.append(key)
    return bad


def load_into(
    model: M,
    state: Mapping[str, torch.Tensor],
    device: torch.device | str = "cpu",
    *,
    source: str | Path = "<state dict>",
    allow_nonfinite: bool = False,
) -> M:
    """Strictly load `state` (read from `source`) into a (possibly `meta`) model; RoPE buffers
    are regenerated. Keys, shapes, dtypes and (unless allowed) finiteness are checked first."""
    report = compare_keys(state, model_layout(model))
    if not report.ok:
        raise CheckpointMismatchError(report, source)
    check_tensors(source, state, allow_nonfinite=allow_nonfinite)
    differing = check_rope_buffers(state, model)
    if differing:
        log.warning("stored RoPE buffers differ from the formula (ignored, regenerated): %s", differing)
    rope = rope_buffer_names(model)
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
    *,
    allow_nonfinite: bool = False,
) -> A2WorldDiT:
    """Load an official `a2world-*.pt` (plain dict of bf16 tensors with `net.` keys).

    The variant comes from the keys; `config` defaults to the released 2B configuration of it.
    """
    state = strip_prefix(tensor_dict(path, read_torch_file(path, "A2World checkpoint"), "A2World checkpoint"))
    variant = detect_variant(list(state))
    if config is None:
        config = released_config(variant)
    elif config.variant != variant:
        raise CheckpointLoadError(path, f"keys say variant {variant!r}, config says {config.variant!r}")
    model = load_into(build_dit(config, "meta"), state, device, source=path, allow_nonfinite=allow_nonfinite)
    if dtype is not None:
        model.to(dtype)
    return model.eval()


def write_directory(model: nn.Module, directory: str | Path, metadata: dict[str, str], config_json: str) -> Path:
    """Write `model.safetensors` (`metadata` plus CRC-32s) and `config.json` into `directory`
    (created if needed): our format for every net."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(out / WEIGHTS_FILE), metadata={**metadata, **crc_metadata(state)})
    (out / CONFIG_FILE).write_text(config_json + "\n")
    return out


def load_directory_weights(
    model: M,
    directory: Path,
    what: str,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
    *,
    allow_nonfinite: bool = False,
) -> M:
    """Strictly load `directory`'s weights file into `model` (built on `meta`), cast to `dtype`,
    in eval mode; errors name the file as `what` weights file."""
    weights = directory / WEIGHTS_FILE
    _, state = read_safetensors_file(weights, f"{what} weights file")
    load_into(model, state, device, source=weights, allow_nonfinite=allow_nonfinite)
    if dtype is not None:
        model.to(dtype)
    return model.eval()


def save_checkpoint(model: A2WorldDiT, directory: str | Path) -> Path:
    """Write `model.safetensors` and `config.json` into `directory` (created if needed)."""
    metadata = {"format": "a2world", "variant": model.config.variant}
    return write_directory(model, directory, metadata, model.config.to_json())


def read_dit_config(path: str | Path) -> DiTConfig:
    """A DiTConfig from a `config.json`; errors name the file and the field."""
    data = read_json_file(path, "A2World config")
    return parse_config(path, lambda: DiTConfig.from_dict(data), "A2World config")


def load_checkpoint(
    directory: str | Path,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
    *,
    allow_nonfinite: bool = False,
) -> A2WorldDiT:
    """Load a directory written by `save_checkpoint` (strict, like the reference import)."""
    d = Path(directory)
    if not d.is_dir():
        raise CheckpointNotFoundError(d, "checkpoint directory not found")
    config = read_dit_config(d / CONFIG_FILE)
    model = build_dit(config, "meta")
    return load_directory_weights(model, d, "A2World", device, dtype, allow_nonfinite=allow_nonfinite)


def load_any(
    path: str | Path,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
    *,
    allow_nonfinite: bool = False,
) -> A2WorldDiT:
    """A directory in our format, or an official `.pt` file."""
    p = Path(path)
    if p.is_dir():
        return load_checkpoint(p, device, dtype, allow_nonfinite=allow_nonfinite)
    if p.suffix == ".pt":
        return load_reference_checkpoint(p, device=device, dtype=dtype, allow_nonfinite=allow_nonfinite)
    if not p.exists():
        raise CheckpointNotFoundError(p, "checkpoint not found")
    raise CheckpointLoadError(p, "expected a checkpoint directory or a .pt file")
