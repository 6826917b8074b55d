"""Tokenizer latents of training clips, computed once per dataset and tokenizer and cached.

A cache file is a safetensors file named by a key: a fingerprint of the tokenizer's encoder (what
fixes the latents; a decoder-only fine-tune keeps the caches), the image size, the clip geometry
and a fingerprint of the dataset, so another encoder, size or dataset gets its own file and a
stale one is never read. Written atomically (temporary file, rename).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from a2world.tokenizer import VideoTokenizer, WanTokenizer, frames_to_unit

log = logging.getLogger(__name__)

CACHE_VERSION = "2"  # 2: keyed by the encoder's tensors instead of the tokenizer file's bytes
ENCODER_PREFIXES = ("encoder.", "conv1.")  # WanVAE: the encoder and its 1×1 posterior conv


def encoder_fingerprint(tokenizer: WanTokenizer) -> str:
    """SHA-256 of what decides a tokenizer's latents: the encoder-side tensors (names, dtypes,
    shapes, bytes), the latent normalisation and the encode chunking. Not the decoder, and not
    the file: the same weights saved twice can differ in metadata order."""
    h = hashlib.sha256()
    cfg = tokenizer.vae.config
    h.update(json.dumps({"latent_mean": list(cfg.latent_mean), "latent_std": list(cfg.latent_std),
                         "temporal_window": tokenizer.temporal_window}, sort_keys=True).encode())
    for name, t in sorted(tokenizer.vae.state_dict().items()):
        if name.startswith(ENCODER_PREFIXES):
            t = t.detach().cpu().contiguous()
            h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def cache_key(parts: dict[str, Any]) -> str:
    """A short stable key of JSON-able ``parts`` (tokenizer checksum, sizes, dataset fingerprint)."""
    blob = json.dumps({"version": CACHE_VERSION, **parts}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


@torch.no_grad()
def encode_clips(tokenizer: VideoTokenizer, clips: Iterable[Tensor], batch: int = 8,
                 progress: Callable[[int], None] | None = None) -> Tensor:
    """uint8 clips (V, F, H, W, 3), one per sample, -> latents (N, C, V·T, h, w), view-major,
    every view encoded as its own causal clip (frame 0 alone gives latent 0, as at inference).
    ``progress(n)`` after each batch with the clips encoded so far (a one-off of tens of minutes on
    two CPU cores for a few thousand clips)."""
    out: list[Tensor] = []
    pending: list[Tensor] = []
    done = 0

    def flush() -> None:
        nonlocal done
        if not pending:
            return
        x = torch.stack(pending)  # (B, V, F, H, W, 3)
        b, v = x.shape[:2]
        unit = frames_to_unit(x.flatten(0, 1)).permute(0, 4, 1, 2, 3)  # (B·V, 3, F, H, W)
        dtype = getattr(tokenizer, "dtype", torch.float32)
        device = getattr(tokenizer, "device", torch.device("cpu"))
        lat = tokenizer.encode(unit.to(device, dtype)).float().cpu()  # (B·V, C, T, h, w)
        lat = lat.unflatten(0, (b, v)).permute(0, 2, 1, 3, 4, 5).flatten(2, 3)  # (B, C, V·T, h, w)
        out.append(lat)
        pending.clear()
        done += b
        if progress is not None:
            progress(done)

    for clip in clips:
        pending.append(clip)
        if len(pending) >= batch:
            flush()
    flush()
    if not out:
        raise ValueError("no clips to encode")
    return torch.cat(out)


def cached(cache_dir: str | Path, key: str, build: Callable[[], dict[str, Tensor]],
           metadata: dict[str, str] | None = None) -> dict[str, Tensor]:
    """The tensors stored under ``key``, built and written first if absent."""
    path = Path(cache_dir) / f"latents-{key}.safetensors"
    if path.is_file():
        log.info("latent cache hit: %s", path)
        return load_file(str(path))
    log.info("latent cache miss: encoding into %s", path)
    tensors = {k: v.contiguous() for k, v in build().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={"key": key, **(metadata or {})})
    tmp.replace(path)
    return tensors
