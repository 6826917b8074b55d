"""torch.distributed for training: one process per device, DDP by default, FSDP2 for big configs.

Under ``torchrun`` the environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT) starts a
process group: NCCL when CUDA is available, gloo on CPU. Without it the run is one process and
nothing is wrapped.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Callable

import torch
import torch.distributed as torch_dist
from torch import nn

log = logging.getLogger(__name__)

SHARDING = ("ddp", "fsdp")


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def local_slice(self, global_batch: int) -> slice:
        """This rank's part of a global batch (equal parts; the loop checks divisibility)."""
        per = global_batch // self.world
        return slice(self.rank * per, (self.rank + 1) * per)

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """Average scalar metrics over ranks (identity in one process)."""
        if not self.distributed or not values:
            return values
        keys = sorted(values)
        t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=self._comm_device())
        torch_dist.all_reduce(t)
        return {k: float(v) / self.world for k, v in zip(keys, t.tolist())}

    def barrier(self) -> None:
        if self.distributed:
            torch_dist.barrier()

    def _comm_device(self) -> torch.device:
        return self.device if torch_dist.get_backend() == "nccl" else torch.device("cpu")


def context_from_env(device: str | None = None) -> DistContext:
    """Join the process group that ``torchrun`` describes, or a single-process context."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        return DistContext(0, 1, dev)
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and (device is None or device.startswith("cuda"))
    if use_cuda:
        torch.cuda.set_device(local)
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    dev = torch.device(f"cuda:{local}") if use_cuda else torch.device("cpu")
    log.info("rank %d of %d on %s (%s)", rank, world, dev, torch_dist.get_backend())
    return DistContext(rank, world, dev)


def apply_activation_checkpointing(blocks: nn.ModuleList, method: str = "forward") -> None:
    """Recompute each block's activations in backward (memory for compute; big configs on GPUs)."""
    from torch.utils.checkpoint import checkpoint

    for block in blocks:
        inner: Callable = getattr(block, method)

        def wrapped(*args, _inner=inner, **kwargs):  # default arg binds this block's method
            return checkpoint(_inner, *args, use_reentrant=False, **kwargs)

        setattr(block, method, wrapped)


def wrap(module: nn.Module, ctx: DistContext, sharding: str = "ddp",
         shard_units: nn.ModuleList | None = None, unit_method: str = "forward") -> nn.Module:
    """DDP (every rank holds the model, gradients are averaged) or FSDP2 ``fully_shard``
    (parameters, gradients and optimizer state sharded; each of ``shard_units`` is gathered on
    its own around calls of ``unit_method``). Returns the module to call in the training step."""
    if sharding not in SHARDING:
        raise ValueError(f"sharding must be one of {SHARDING}, got {sharding!r}")
    if not ctx.distributed:
        return module
    if sharding == "ddp":
        ids = [ctx.device.index] if ctx.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=ids)
    from torch.distributed.fsdp import fully_shard, register_fsdp_forward_method

    for unit in shard_units or ():
        fully_shard(unit)
        if unit_method != "forward":
            # FSDP gathers a unit's parameters in forward hooks; another entry point needs its own
            register_fsdp_forward_method(unit, unit_method)
    fully_shard(module)
    return module
