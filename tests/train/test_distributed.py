"""Data-parallel training: two gloo processes on 127.0.0.1 take the same step as one process on the
same global batch (DDP averages the two halves' gradients; FSDP2 shards the parameters too)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file

from a2world.policy.train import PolicyTrainConfig
from a2world.tokenizer import WanTokenizer
from a2world.train import LoopConfig, RunDir, train
from a2world.train.dist import context_from_env
from a2world.train.policy import PolicyData, PolicyJob, PolicyModelConfig
from a2world.train.text import hashed_text_cache

MODEL = PolicyModelConfig(state_t=2, model_channels=32, num_blocks=2, num_heads=1)
INSTRUCTIONS = ["lift the box with both arms", "pick up the cube"]


def _job() -> PolicyJob:
    pc = MODEL.build()
    g = torch.Generator().manual_seed(0)
    n, v = 12, 3
    data = PolicyData(
        video=torch.randn(n, 16, v * pc.latent_frames, 2, 2, generator=g),
        actions=0.01 * torch.randn(n, pc.action_horizon, 14, generator=g),
        instruction=torch.arange(n) % 2,
        instructions=INSTRUCTIONS,
        view_ids=(0, 1, 2),
        image_size=(16, 16),
    )
    text = hashed_text_cache(INSTRUCTIONS, pc.text_tokens, pc.context_dim)
    return PolicyJob(data, MODEL, PolicyTrainConfig(), WanTokenizer.tiny(dim=4), text, seed=0)


def _loop(sharding: str) -> LoopConfig:
    return LoopConfig(steps=2, batch_size=4, lr=1e-3, warmup_steps=0, min_lr_ratio=1.0, checkpoint_every=2,
                      eval_samples=2, threads=1, sharding=sharding)


SHARDINGS = ("ddp", "fsdp")


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), GLOO_SOCKET_IFNAME="lo")
    torch.set_num_threads(1)
    ctx = context_from_env(device="cpu")
    try:
        for sharding in SHARDINGS:  # one process group for both: starting processes is the slow part
            train(_job(), _loop(sharding), RunDir(Path(out) / sharding), ctx, progress=False)
    finally:
        torch.distributed.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_ranks_take_the_single_process_steps(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    single = tmp_path / "single"
    train(_job(), _loop("ddp"), RunDir(single), progress=False)
    multi = tmp_path / "multi"
    mp.start_processes(_worker, args=(2, _free_port(), str(multi)), nprocs=2, join=True, start_method="spawn")
    a = load_file(str(single / "model.safetensors"))
    init = _job().policy.state_dict()
    moved = [k for k in a if not torch.equal(a[k], init[k])]
    assert len(moved) > len(a) // 2, "the steps changed the weights"
    for sharding in SHARDINGS:
        b = load_file(str(multi / sharding / "model.safetensors"))
        assert a.keys() == b.keys()
        for k in a:
            assert torch.allclose(a[k], b[k], rtol=1e-4, atol=1e-6), (sharding, k)
        # the logged metrics are the global batch's, averaged over the ranks
        la = (single / "metrics.csv").read_text().splitlines()[1].split(",")[1]
        lb = (multi / sharding / "metrics.csv").read_text().splitlines()[1].split(",")[1]
        assert abs(float(la) - float(lb)) < 1e-4 * abs(float(la)), sharding
