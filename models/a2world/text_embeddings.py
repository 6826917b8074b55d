"""Instruction embeddings: a cache file of T5 token embeddings, loadable without any text model.

A2World-policy conditions on T5 token embeddings, 512 tokens × 1024 channels per instruction,
zero after the instruction's tokens (a2world_release_facts.md §8). A deployment uses a handful
of instructions, so they are encoded once (with :func:`build_text_embeddings`, which needs
``transformers`` and local T5 weights) and stored in a safetensors file that runtime nodes read
with :class:`TextEmbeddingCache`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import Tensor

from a2world.load_checks import (
    NONFINITE_HINT,
    CheckpointLoadError,
    check_tensors,
    crc_metadata,
    read_safetensors_file,
)

log = logging.getLogger(__name__)

TEXT_MAX_LENGTH = 512
TEXT_DIM = 1024
CACHE_FORMAT = "a2world.text_embeddings"
CACHE_VERSION = "1"


class MissingInstructionError(KeyError):
    """An instruction that the embedding cache does not hold."""

    def __init__(self, instruction: str, cache_path: str | Path | None, available: Sequence[str]) -> None:
        self.instruction = instruction
        self.cache_path = str(cache_path) if cache_path is not None else "<in-memory cache>"
        self.available = list(available)
        super().__init__(instruction)

    def __str__(self) -> str:
        shown = ", ".join(repr(a) for a in self.available[:10])
        more = f" and {len(self.available) - 10} more" if len(self.available) > 10 else ""
        return (
            f"instruction {self.instruction!r} is not in the text-embedding cache {self.cache_path} "
            f"({len(self.available)} instructions: {shown}{more}); add it with "
            f"`a2w text-cache build --append --out {self.cache_path} --t5 <T5 dir> --instruction ...`"
        )


def normalize_instruction(text: str) -> str:
    """The cache key of an instruction: surrounding whitespace is not part of it."""
    key = text.strip()
    if not key:
        raise ValueError("instruction must be a non-empty string")
    return key


class TextEmbeddingCache:
    """Instruction → token embeddings (stored unpadded; served as (max_length, dim), zero-padded)."""

    def __init__(
        self,
        *,
        max_length: int = TEXT_MAX_LENGTH,
        dim: int = TEXT_DIM,
        encoder: str = "",
        path: str | Path | None = None,
    ) -> None:
        if max_length < 1 or dim < 1:
            raise ValueError(f"max_length and dim must be positive, got {max_length}, {dim}")
        self.max_length = max_length
        self.dim = dim
        self.encoder = encoder
        self.path = Path(path) if path is not None else None
        self._tokens: dict[str, Tensor] = {}

    # ---- contents ------------------------------------------------------------------------
    @property
    def instructions(self) -> list[str]:
        return list(self._tokens)

    def __len__(self) -> int:
        return len(self._tokens)

    def __contains__(self, instruction: object) -> bool:
        return isinstance(instruction, str) and instruction.strip() in self._tokens

    def add(self, instruction: str, tokens: Tensor, *, allow_nonfinite: bool = False) -> None:
        """Store the embeddings of the instruction's real tokens, shape (n, dim), n <= max_length.

        NaN/Inf (e.g. an fp16 T5 overflow) are refused unless `allow_nonfinite`."""
        key = normalize_instruction(instruction)
        if tokens.dim() != 2 or tokens.shape[1] != self.dim:
            raise ValueError(f"embedding for {key!r} must be (n_tokens, {self.dim}), got {tuple(tokens.shape)}")
        if not 1 <= tokens.shape[0] <= self.max_length:
            raise ValueError(f"embedding for {key!r} has {tokens.shape[0]} tokens, outside 1..{self.max_length}")
        if not tokens.is_floating_point():
            raise ValueError(f"embedding for {key!r} must be floating point, got {tokens.dtype}")
        if not allow_nonfinite and not bool(torch.isfinite(tokens).all()):
            n = int((~torch.isfinite(tokens)).sum())
            raise ValueError(f"embedding for {key!r} has {n} NaN/Inf values; {NONFINITE_HINT}")
        self._tokens[key] = tokens.detach().to("cpu").contiguous()

    def _lookup(self, instruction: str) -> Tensor:
        key = instruction.strip()
        if key not in self._tokens:
            raise MissingInstructionError(instruction, self.path, self.instructions)
        return self._tokens[key]

    def num_tokens(self, instruction: str) -> int:
        return self._lookup(instruction).shape[0]

    def get(
        self, instruction: str, *, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu"
    ) -> Tensor:
        """(max_length, dim) embeddings, zero after the instruction's tokens."""
        tokens = self._lookup(instruction)
        out = torch.zeros(self.max_length, self.dim, dtype=dtype, device=device)
        out[: tokens.shape[0]] = tokens.to(device=device, dtype=dtype)
        return out

    def mask(self, instruction: str, *, device: torch.device | str = "cpu") -> Tensor:
        """(max_length,) bool, True at the instruction's real tokens."""
        mask = torch.zeros(self.max_length, dtype=torch.bool, device=device)
        mask[: self.num_tokens(instruction)] = True
        return mask

    def merge(self, other: TextEmbeddingCache) -> None:
        """Add (or replace) every instruction of ``other``; both must have the same layout."""
        if (other.max_length, other.dim) != (self.max_length, self.dim):
            raise ValueError(
                f"cannot merge caches of layout (max_length={other.max_length}, dim={other.dim}) into "
                f"(max_length={self.max_length}, dim={self.dim})"
            )
        if self.encoder and other.encoder and self.encoder != other.encoder:
            raise ValueError(f"cannot merge embeddings of encoder {other.encoder!r} into {self.encoder!r}")
        self.encoder = self.encoder or other.encoder
        for key in other.instructions:
            self._tokens[key] = other._tokens[key]

    # ---- file ------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        path = Path(path)
        keys = self.instructions
        tensors = {f"tokens.{i}": self._tokens[k] for i, k in enumerate(keys)}
        metadata = {
            "format": CACHE_FORMAT,
            "version": CACHE_VERSION,
            "max_length": str(self.max_length),
            "dim": str(self.dim),
            "encoder": self.encoder,
            "instructions": json.dumps(keys),
            **crc_metadata(tensors),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        save_file(tensors, str(tmp), metadata=metadata)
        tmp.replace(path)  # a reader never sees a half-written cache
        self.path = path

    @classmethod
    def load(cls, path: str | Path, *, allow_nonfinite: bool = False) -> TextEmbeddingCache:
        """Read a cache file. Every problem is a CheckpointLoadError naming the file; NaN/Inf
        embeddings are refused unless `allow_nonfinite`."""
        path = Path(path)
        meta, tensors = read_safetensors_file(path, "text-embedding cache")
        if meta.get("format") != CACHE_FORMAT:
            raise CheckpointLoadError(path, f"not a text-embedding cache (metadata format={meta.get('format')!r})")
        if meta.get("version") != CACHE_VERSION:
            raise CheckpointLoadError(path, f"unsupported text-embedding cache version {meta.get('version')!r}")
        missing = [k for k in ("max_length", "dim", "instructions") if k not in meta]
        if missing:
            raise CheckpointLoadError(path, f"cache metadata lacks {missing}")
        sizes = {}
        for name in ("max_length", "dim"):
            try:
                sizes[name] = int(meta[name])
            except ValueError:
                raise CheckpointLoadError(
                    path, f"cache metadata {name} must be an integer, got {meta[name]!r}") from None
        try:
            cache = cls(**sizes, encoder=meta.get("encoder", ""), path=path)
            keys = json.loads(meta["instructions"])
            if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
                raise ValueError("must be a JSON list of strings")
        except ValueError as exc:
            raise CheckpointLoadError(path, f"bad cache metadata (max_length, dim, instructions): {exc}") from exc
        expected = {f"tokens.{i}" for i in range(len(keys))}
        if set(tensors) != expected:
            missing, extra = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
            raise CheckpointLoadError(
                path, f"tensors do not match the {len(keys)} listed instructions: missing {missing}, unexpected {extra}"
            )
        check_tensors(path, tensors, allow_nonfinite=allow_nonfinite)
        for i, key in enumerate(keys):
            try:
                cache.add(key, tensors[f"tokens.{i}"], allow_nonfinite=allow_nonfinite)
            except ValueError as exc:
                raise CheckpointLoadError(path, f"tokens.{i}: {exc}") from exc
        return cache


def read_instruction_lines(lines: Iterable[str]) -> list[str]:
    """Instructions from a text file's lines: one per line; blank lines and '#' comments skipped."""
    out: list[str] = []
    for line in lines:
        text = line.strip()
        if text and not text.startswith("#") and text not in out:
            out.append(text)
    return out


def build_text_embeddings(
    t5_dir: str | Path,
    instructions: Sequence[str],
    *,
    max_length: int = TEXT_MAX_LENGTH,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    batch_size: int = 8,
    allow_nonfinite: bool = False,
) -> TextEmbeddingCache:
    """Encode ``instructions`` with the T5 encoder saved in ``t5_dir`` (local files only).

    Tokens are padded to ``max_length`` and masked; the stored embeddings are the encoder's last
    hidden states at the real tokens (the rest is zero when served).
    """
    try:
        from transformers import AutoTokenizer, T5EncoderModel
    except ImportError as exc:  # the runtime never needs it; only building a cache does
        raise ImportError(
            "building a text-embedding cache needs the `transformers` package "
            "(see requirements/dev.txt); loading an existing cache does not"
        ) from exc
    t5_dir = Path(t5_dir)
    if not t5_dir.is_dir():
        raise FileNotFoundError(f"T5 directory not found: {t5_dir}")
    keys = [normalize_instruction(i) for i in instructions]
    if not keys:
        raise ValueError("no instructions to encode")
    tokenizer = AutoTokenizer.from_pretrained(str(t5_dir), local_files_only=True)
    model = T5EncoderModel.from_pretrained(str(t5_dir), local_files_only=True, dtype=dtype).to(device).eval()
    dim = int(model.config.d_model)
    if dim != TEXT_DIM:
        log.warning("T5 at %s has d_model=%d; A2World-policy expects %d", t5_dir, dim, TEXT_DIM)
    cache = TextEmbeddingCache(max_length=max_length, dim=dim, encoder=t5_dir.name)
    with torch.no_grad():
        for start in range(0, len(keys), batch_size):
            batch = keys[start : start + batch_size]
            enc = tokenizer(
                batch, padding="max_length", max_length=max_length, truncation=True, return_tensors="pt"
            )
            ids = enc["input_ids"].to(device)
            attention = enc["attention_mask"].to(device)
            hidden = model(input_ids=ids, attention_mask=attention).last_hidden_state
            for key, row, n in zip(batch, hidden, attention.sum(dim=1).tolist()):
                if n >= max_length:
                    log.warning("instruction %r was truncated to %d tokens", key, max_length)
                cache.add(key, row[: int(n)].float().cpu(), allow_nonfinite=allow_nonfinite)
    return cache
