"""Fixtures of the training tests: a tiny synthetic dataset, a trained tiny tokenizer, config files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import yaml

from a2w.cli import main as a2w_main
from tests.train.support import write_dataset

TOKENIZER_CONFIG = {
    "data": {"image_size": [16, 16]},
    "tokenizer": {"dim": 4, "calibration_clips": 4},
    "loop": {"steps": 12, "batch_size": 2, "lr": 3e-3, "warmup_steps": 0, "min_lr_ratio": 1.0,
             "log_every": 4, "checkpoint_every": 6, "threads": 1},
}
WORLDMODEL_CONFIG = {
    "data": {"image_size": [16, 16], "clip_stride": 4},
    "model": {"state_t": 2, "model_channels": 32, "num_blocks": 1, "num_heads": 1},
    "loop": {"steps": 20, "batch_size": 4, "lr": 2e-3, "warmup_steps": 0, "min_lr_ratio": 1.0,
             "log_every": 5, "checkpoint_every": 20, "threads": 1},
}
POLICY_CONFIG = {
    "data": {"image_size": [16, 16], "clip_stride": 4},
    "model": {"state_t": 2, "model_channels": 32, "num_blocks": 1, "num_heads": 1},
    "loop": {"steps": 6, "batch_size": 4, "lr": 2e-3, "warmup_steps": 0, "min_lr_ratio": 1.0,
             "log_every": 2, "checkpoint_every": 3, "threads": 1},
}


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("train") / "ds")


@pytest.fixture(scope="session")
def tokenizer_run(tmp_path_factory: pytest.TempPathFactory, tiny_dataset: Path) -> Path:
    """A tokenizer trained for a few steps (its run directory)."""
    root = tmp_path_factory.mktemp("tok")
    cfg = write_config(root / "tok.yaml", TOKENIZER_CONFIG)
    out = root / "run"
    assert a2w_main(["train", "tokenizer", "--dataset", str(tiny_dataset), "--config", str(cfg),
                     "--out", str(out), "--no-progress"]) == 0
    return out


@pytest.fixture
def policy_config(tmp_path: Path, tokenizer_run: Path) -> dict:
    return {**POLICY_CONFIG, "tokenizer_checkpoint": str(tokenizer_run / "tokenizer.safetensors"),
            "latent_cache": str(tmp_path / "cache")}


@pytest.fixture(scope="session")
def worldmodel_run(tmp_path_factory: pytest.TempPathFactory, tiny_dataset: Path, tokenizer_run: Path) -> Path:
    """A world model trained for a few steps on the tokenizer's latents (its run directory)."""
    root = tmp_path_factory.mktemp("wm")
    cfg = write_config(root / "wm.yaml", {**WORLDMODEL_CONFIG, "latent_cache": str(root / "cache"),
                                          "tokenizer_checkpoint": str(tokenizer_run / "tokenizer.safetensors")})
    out = root / "run"
    assert a2w_main(["train", "worldmodel", "--dataset", str(tiny_dataset), "--config", str(cfg),
                     "--out", str(out), "--no-progress"]) == 0
    return out
