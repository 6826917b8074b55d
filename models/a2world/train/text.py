"""Deterministic instruction embeddings for models trained without a text encoder.

The stack's small models are trained where no T5 is available, on a handful of sim instructions.
Each instruction becomes one token per word (lower-cased, punctuation stripped, at most
``max_length``); a word's vector is a unit-RMS Gaussian drawn from a generator seeded by the
SHA-256 of the word, plus a small sinusoidal position code. The same word gives the same vector
on every machine and in every instruction, so instructions that share words share tokens, and any
new instruction can be embedded later without retraining the cache. The result is an ordinary
``TextEmbeddingCache`` file (encoder name ``HASHED_ENCODER``) that the runtime loads like a T5 cache.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable

import torch

from a2world.text_embeddings import TextEmbeddingCache, normalize_instruction

HASHED_ENCODER = "a2w-hashed-words-v1"
POSITION_SCALE = 0.1


def words(instruction: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", normalize_instruction(instruction).lower())


def word_vector(word: str, dim: int) -> torch.Tensor:
    seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
    return torch.randn(dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float32)


def position_code(n: int, dim: int) -> torch.Tensor:
    pos = torch.arange(n, dtype=torch.float32)[:, None]
    freq = torch.exp(-math.log(100.0) * torch.arange(0, dim, 2, dtype=torch.float32) / dim)
    code = torch.zeros(n, dim)
    code[:, 0::2] = torch.sin(pos * freq)
    code[:, 1::2] = torch.cos(pos * freq)[:, : dim // 2]
    return code


def hashed_embedding(instruction: str, max_length: int, dim: int) -> torch.Tensor:
    """(n_words, dim) tokens of ``instruction`` (n_words <= max_length)."""
    ws = words(instruction)[:max_length]
    if not ws:
        raise ValueError(f"instruction {instruction!r} has no words")
    tokens = torch.stack([word_vector(w, dim) for w in ws])
    return tokens + POSITION_SCALE * position_code(len(ws), dim)


def hashed_text_cache(instructions: Iterable[str], max_length: int, dim: int) -> TextEmbeddingCache:
    cache = TextEmbeddingCache(max_length=max_length, dim=dim, encoder=HASHED_ENCODER)
    for text in instructions:
        cache.add(text, hashed_embedding(text, max_length, dim))
    return cache
