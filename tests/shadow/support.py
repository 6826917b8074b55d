"""A tiny random A2World-sim checkpoint for the shadow node's tests (the trained one is issue 17's)."""

from __future__ import annotations

from pathlib import Path

import torch

from a2w.shadow.predictor import TOKENIZER_FILE
from a2world.checkpoint import save_checkpoint
from a2world.config import tiny_config
from a2world.dit import build_dit
from a2world.tokenizer import WanTokenizer


def tiny_worldmodel(directory: Path, seed: int = 0) -> Path:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build_dit(tiny_config("sim")).eval()
    save_checkpoint(net, directory)
    WanTokenizer.tiny(seed=seed).save(directory / TOKENIZER_FILE)
    return directory
