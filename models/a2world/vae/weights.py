"""Weights of the Wan2.1 VAE: strict loading of the released checkpoint, our safetensors format.

The released ``tokenizer.pth`` / ``Wan2.1_VAE.pth`` is a flat dict of 194 tensors with no
prefix (wan_vae_facts.md §1.3). Our own format is a safetensors file whose metadata carries the
configuration, so tiny and full models load the same way. Every load error is a
``CheckpointLoadError`` naming the file; NaN/Inf weights are refused unless ``allow_nonfinite``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import Tensor, nn

from a2world.load_checks import (
    CheckpointLoadError,
    check_tensors,
    crc_metadata,
    parse_config,
    read_safetensors_file,
    read_torch_file,
)
from a2world.vae.config import VAEConfig
from a2world.vae.model import WanVAE

log = logging.getLogger(__name__)

SAFETENSORS_FORMAT = "a2world.wan_vae"
SAFETENSORS_VERSION = "1"


class CheckpointMismatchError(CheckpointLoadError):
    """A state dict that does not fit the model, with every offending key listed."""

    def __init__(
        self,
        source: str,
        missing: list[str],
        unexpected: list[str],
        mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]],
    ) -> None:
        self.source = source
        self.missing = missing
        self.unexpected = unexpected
        self.mismatched = mismatched
        parts = []
        if missing:
            parts.append(f"missing keys ({len(missing)}): " + ", ".join(missing))
        if unexpected:
            parts.append(f"unexpected keys ({len(unexpected)}): " + ", ".join(unexpected))
        parts += [f"shape mismatch {key}: model {want}, checkpoint {got}" for key, want, got in mismatched]
        super().__init__(source, "checkpoint does not match the VAE: " + "; ".join(parts))


def check_state_dict(model: nn.Module, state: Mapping[str, Tensor], source: str = "<state dict>") -> None:
    """Raise :class:`CheckpointMismatchError` unless keys and shapes match exactly."""
    expected = model.state_dict()
    error = CheckpointMismatchError(
        source=source,
        missing=[k for k in expected if k not in state],
        unexpected=[k for k in state if k not in expected],
        mismatched=[
            (k, tuple(v.shape), tuple(state[k].shape))
            for k, v in expected.items()
            if k in state and tuple(state[k].shape) != tuple(v.shape)
        ],
    )
    if error.missing or error.unexpected or error.mismatched:
        raise error


def read_released_checkpoint(path: str | Path) -> dict[str, Tensor]:
    """Tensors of a released ``.pth`` VAE file (memory-mapped, no code execution)."""
    obj = read_torch_file(path, "VAE checkpoint")
    if not isinstance(obj, Mapping) or not all(isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items()):
        top = sorted(map(str, obj))[:8] if isinstance(obj, Mapping) else type(obj).__name__
        raise CheckpointLoadError(path, f"expected a flat dict of tensors (wan_vae_facts.md §1.3), got {top}")
    return dict(obj)


def save_vae(vae: WanVAE, path: str | Path) -> None:
    """Write weights (in their current dtype) and configuration as one safetensors file."""
    state = {k: v.detach().contiguous().cpu() for k, v in vae.state_dict().items()}
    metadata = {
        "format": SAFETENSORS_FORMAT,
        "version": SAFETENSORS_VERSION,
        "config": vae.config.to_json(),
        **crc_metadata(state),
    }
    save_file(state, str(path), metadata=metadata)


def _read_safetensors(path: Path) -> tuple[VAEConfig, dict[str, Tensor]]:
    meta, state = read_safetensors_file(path, "VAE weights file")
    if meta.get("format") != SAFETENSORS_FORMAT:
        raise CheckpointLoadError(path, f"not an a2world VAE file (metadata format={meta.get('format')!r})")
    if meta.get("version") != SAFETENSORS_VERSION:
        raise CheckpointLoadError(path, f"unsupported VAE file version {meta.get('version')!r}")
    if "config" not in meta:
        raise CheckpointLoadError(path, "VAE file metadata has no 'config' entry")
    config = parse_config(path, lambda: VAEConfig.from_json(meta["config"]), "VAE config (file metadata)")
    return config, state


def load_vae(
    path: str | Path,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str = "cpu",
    config: VAEConfig | None = None,
    allow_nonfinite: bool = False,
) -> WanVAE:
    """Load a VAE from our safetensors file or a released ``.pth``, then cast to ``dtype``.

    ``.pth`` files use ``config`` (default: the released one). The model is built on ``meta`` and
    takes the loaded tensors directly, so the weights are never held twice. ``dtype=None`` keeps
    the stored dtype.
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        stored_config, state = _read_safetensors(path)
        if config is not None and config != stored_config:
            raise CheckpointLoadError(path, f"stored config {stored_config} differs from the requested {config}")
        config = stored_config
    else:
        state = read_released_checkpoint(path)
        config = config or VAEConfig.released()
    with torch.device("meta"):
        vae = WanVAE(config)
    check_state_dict(vae, state, str(path))
    check_tensors(path, state, allow_nonfinite=allow_nonfinite)
    dtypes = sorted({str(v.dtype) for v in state.values()})
    log.info("loaded VAE %s: %d tensors, stored dtype %s", path, len(state), ",".join(dtypes))
    vae.load_state_dict(state, strict=True, assign=True)
    # load, then cast (wan_vae_facts.md §1.3)
    vae = vae.to(device=device, dtype=dtype) if dtype is not None else vae.to(device=device)
    return vae.eval()
