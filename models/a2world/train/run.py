"""The training loop every job shares: run directory, metrics, resumable state, schedule, DDP.

A run directory holds ``train_config.yaml`` (written by the caller), ``metrics.csv`` (one row per
step: step, loss and its parts, lr, samples/s, wall time), ``state.pt`` (model, optimizer,
scheduler, step, every RNG state; replaced atomically at each checkpoint) and
``checkpoints/step_NNNNNNN/`` (the job's exported model at that step). The job's final export
lands in the run directory itself.

Randomness: the global batch's sample indices and every noise draw come from two generators
seeded from the run seed, drawn for the whole global batch on every rank, and each rank keeps its
slice. So a resumed run repeats the uninterrupted one exactly, and N data-parallel ranks take the
same step as one process on the same global batch.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from a2world.load_checks import JsonConfig
from a2world.train.dist import SHARDING, DistContext, wrap

log = logging.getLogger(__name__)

STATE_FILE = "state.pt"
METRICS_FILE = "metrics.csv"
EVAL_FILE = "eval.csv"
EVAL_SEED = 12345
CONFIG_FILE = "train_config.yaml"
CHECKPOINTS_DIR = "checkpoints"
STATE_VERSION = 1


class TrainError(ValueError):
    """A problem with the inputs of a run (data, config, run directory), said in one line."""


@dataclass(frozen=True)
class LoopConfig(JsonConfig):
    steps: int = 1000
    batch_size: int = 8  # global: split evenly over the ranks
    lr: float = 2e-4
    weight_decay: float = 0.0
    warmup_steps: int = 50
    # cosine decay from lr to lr·min_lr_ratio over the steps after warm-up; 1.0 keeps lr constant
    min_lr_ratio: float = 0.1
    grad_clip: float | None = 1.0
    log_every: int = 10
    checkpoint_every: int = 200
    seed: int = 0
    threads: int | None = None  # torch intra-op threads (None: torch's default)
    sharding: str = "ddp"  # under torchrun: "ddp" or "fsdp" (FSDP2 fully_shard)
    activation_checkpointing: bool = False
    bf16: bool = False  # autocast the forward in bfloat16 (GPUs)
    # fixed samples and noise on which the loss is measured before training and at every checkpoint
    # (eval.csv): a comparable number, unlike the per-step loss on random batches and noise levels
    eval_samples: int = 16

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "log_every", "checkpoint_every", "eval_samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"loop.{name} must be >= 1, got {getattr(self, name)}")
        if self.warmup_steps < 0:
            raise ValueError(f"loop.warmup_steps must be >= 0, got {self.warmup_steps}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"loop.lr must be a positive number, got {self.lr}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"loop.weight_decay must be >= 0, got {self.weight_decay}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"loop.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if self.grad_clip is not None and not (math.isfinite(self.grad_clip) and self.grad_clip > 0):
            raise ValueError(f"loop.grad_clip must be positive or null, got {self.grad_clip}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"loop.threads must be >= 1 or null, got {self.threads}")
        if self.sharding not in SHARDING:
            raise ValueError(f"loop.sharding must be one of {list(SHARDING)}, got {self.sharding!r}")

    def lr_factor(self, step: int) -> float:
        """Multiplier of lr at optimizer step ``step`` (0-based)."""
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        span = max(1, self.steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        return self.min_lr_ratio + (1 - self.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


class Job(Protocol):
    """What the loop needs from a training job."""

    name: str
    metric_names: tuple[str, ...]  # loss parts, in CSV column order

    def module(self) -> nn.Module:
        """The trainable module; ``forward(*inputs)`` returns (loss, {part: scalar tensor})."""
        ...

    def shard_units(self) -> tuple[nn.ModuleList | None, str]:
        """Sub-modules FSDP shards one by one (e.g. the transformer blocks) and the method that runs them."""
        ...

    def num_samples(self) -> int: ...

    def inputs(self, indices: torch.Tensor, generator: torch.Generator, part: slice,
               device: torch.device) -> tuple[Any, ...]:
        """Forward inputs of the samples ``indices[part]``; every random draw is made for the whole
        global batch ``indices`` (then sliced) so that the partition does not change the step."""
        ...

    def export(self, directory: Path, state: dict[str, torch.Tensor]) -> None:
        """Write the job's deliverable (model files) from a full CPU state dict of ``module()``."""
        ...

    # Optional: ``sample_weights() -> Tensor | None``, relative draw weights of the samples (None or
    # absent: uniform). Indices are drawn for the global batch, so every rank draws the same.


@dataclass
class TrainResult:
    steps: int
    final_loss: float
    wall_s: float
    history: list[dict[str, float]] = field(default_factory=list)
    evals: list[dict[str, float]] = field(default_factory=list)  # step 0 (fresh runs) and checkpoints


class RunDir:
    """Paths and files of one run (see the module docstring)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def state_path(self) -> Path:
        return self.root / STATE_FILE

    @property
    def metrics_path(self) -> Path:
        return self.root / METRICS_FILE

    @property
    def eval_path(self) -> Path:
        return self.root / EVAL_FILE

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_FILE

    def checkpoint_dir(self, step: int) -> Path:
        return self.root / CHECKPOINTS_DIR / f"step_{step:07d}"

    def has_state(self) -> bool:
        return self.state_path.is_file()

    def save_state(self, state: dict[str, Any]) -> None:
        """Write ``state.pt`` so that a crash at any moment leaves the previous one or this one."""
        tmp = self.state_path.with_name(STATE_FILE + ".tmp")
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(self.state_path)

    def load_state(self) -> dict[str, Any]:
        try:
            state = torch.load(self.state_path, map_location="cpu", weights_only=False)
        except FileNotFoundError:
            raise TrainError(f"{self.root}: nothing to resume (no {STATE_FILE})") from None
        except Exception as exc:  # noqa: BLE001 - a torn or foreign file, said in one line
            raise TrainError(f"{self.state_path}: unreadable training state ({type(exc).__name__}: {exc})") from None
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise TrainError(f"{self.state_path}: not a training state of version {STATE_VERSION}")
        return state

    def open_metrics(self, columns: list[str], keep_through: int, path: Path | None = None) -> tuple[Any, Any]:
        """CSV writer appending to ``metrics.csv`` (or ``path``); rows after step ``keep_through``
        (written after the last saved state by an interrupted run) are dropped first."""
        path = path or self.metrics_path
        rows: list[dict[str, str]] = []
        if keep_through > 0 and path.exists():
            with open(path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= keep_through]
        f = open(path, "w", newline="")
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
        f.flush()
        return f, writer


def rng_state(generators: dict[str, torch.Generator]) -> dict[str, Any]:
    return {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
        **{f"gen.{k}": g.get_state() for k, g in generators.items()},
    }


def set_rng_state(state: dict[str, Any], generators: dict[str, torch.Generator]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    for k, g in generators.items():
        g.set_state(state[f"gen.{k}"])


def _full_state(model: nn.Module, optimizer: torch.optim.Optimizer, sharded: bool) -> tuple[dict, dict]:
    """CPU state dicts of the (unwrapped) model and the optimizer; gathered under FSDP."""
    if sharded:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

        opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
        return get_state_dict(model, optimizer, options=opts)
    return ({k: v.detach().cpu() for k, v in model.state_dict().items()}, optimizer.state_dict())


def _load_full_state(model: nn.Module, optimizer: torch.optim.Optimizer, sharded: bool,
                     model_state: dict, optim_state: dict) -> None:
    if sharded:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

        opts = StateDictOptions(full_state_dict=True, broadcast_from_rank0=False)
        set_state_dict(model, optimizer, model_state_dict=model_state, optim_state_dict=optim_state, options=opts)
        return
    model.load_state_dict(model_state, strict=True)
    optimizer.load_state_dict(optim_state)


def train(job: Job, loop: LoopConfig, run: RunDir, ctx: DistContext | None = None, *,
          resume: bool = False, stop_at: int | None = None, progress: bool = True) -> TrainResult:
    """Run (or resume) ``job`` for ``loop.steps`` optimizer steps; ``stop_at`` ends early after
    that step with the state saved there (a time-boxed run to resume later)."""
    ctx = ctx or DistContext()
    if loop.batch_size % ctx.world:
        raise TrainError(f"loop.batch_size {loop.batch_size} does not split evenly over {ctx.world} ranks")
    n = job.num_samples()
    if n < 1:
        raise TrainError(f"{job.name}: the dataset yields no training samples")
    if loop.threads is not None:
        torch.set_num_threads(loop.threads)
    run.root.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(loop.seed)
    np.random.seed(loop.seed % 2**32)
    random.seed(loop.seed)
    gens = {"data": torch.Generator().manual_seed(loop.seed), "noise": torch.Generator().manual_seed(loop.seed + 1)}

    model = job.module().to(ctx.device)
    sharded = ctx.distributed and loop.sharding == "fsdp"
    units, method = job.shard_units()
    if loop.activation_checkpointing and units is not None:
        from a2world.train.dist import apply_activation_checkpointing

        apply_activation_checkpointing(units, method)
    net = wrap(model, ctx, loop.sharding, units, method)
    # frozen parameters (a decoder-only tokenizer fine-tune) are neither updated nor decayed
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=loop.lr, weight_decay=loop.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, loop.lr_factor)

    step, wall_before = 0, 0.0
    if resume:
        state = run.load_state()
        if state["job"] != job.name:
            raise TrainError(f"{run.state_path}: a {state['job']!r} run, not {job.name!r}")
        _load_full_state(model, optimizer, sharded, state["model"], state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"], gens)
        step, wall_before = int(state["step"]), float(state["wall_s"])
        log.info("%s: resuming at step %d of %d", job.name, step, loop.steps)
    elif run.has_state():
        raise TrainError(f"{run.root} already holds a run ({STATE_FILE}); pass --resume or choose another --out")

    columns = ["step", "loss", *job.metric_names, "lr", "samples_per_s", "wall_s"]
    csv_file, writer = run.open_metrics(columns, step) if ctx.is_main else (None, None)
    eval_file, eval_writer = (run.open_metrics(["step", "loss", *job.metric_names], step, run.eval_path)
                              if ctx.is_main else (None, None))
    evals: list[dict[str, float]] = []

    def evaluate() -> None:
        row = {"step": step, **_evaluate(job, model, loop, ctx)}
        evals.append(row)
        if eval_writer is not None:
            eval_writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
            eval_file.flush()
            log.info("%s eval at step %d: loss %.5f %s", job.name, step, row["loss"],
                     " ".join(f"{k} {row[k]:.4f}" for k in job.metric_names))

    if step == 0:
        evaluate()
    last = min(loop.steps, stop_at) if stop_at is not None else loop.steps
    history: list[dict[str, float]] = []
    bar = None
    if progress and ctx.is_main:
        from tqdm import tqdm

        bar = tqdm(total=loop.steps, initial=step, desc=job.name, unit="step", mininterval=1.0, leave=False)
    weights = getattr(job, "sample_weights", lambda: None)()
    start = time.perf_counter()
    loss_value = math.nan
    try:
        while step < last:
            t0 = time.perf_counter()
            net.train()
            if weights is None:
                indices = torch.randint(0, n, (loop.batch_size,), generator=gens["data"])
            else:
                indices = torch.multinomial(weights, loop.batch_size, replacement=True, generator=gens["data"])
            inputs = job.inputs(indices, gens["noise"], ctx.local_slice(loop.batch_size), ctx.device)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(ctx.device.type, dtype=torch.bfloat16, enabled=loop.bf16):
                loss, parts = net(*inputs)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{job.name}: non-finite loss {loss.item()} at step {step + 1}")
            loss.backward()
            if loop.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), loop.grad_clip)
            lr = optimizer.param_groups[0]["lr"]
            optimizer.step()
            scheduler.step()
            step += 1
            values = ctx.mean({"loss": float(loss.detach()), **{k: float(v) for k, v in parts.items()}})
            loss_value = values["loss"]
            dt = time.perf_counter() - t0
            wall = wall_before + time.perf_counter() - start
            row = {"step": step, **values, "lr": lr, "samples_per_s": loop.batch_size / dt, "wall_s": wall}
            history.append(row)
            if writer is not None:
                writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
                csv_file.flush()
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss_value:.4f}", sps=f"{row['samples_per_s']:.1f}")
            if ctx.is_main and (step % loop.log_every == 0 or step == last):
                log.info("%s step %d/%d loss %.5f %s lr %.3g %.1f samples/s wall %.0f s", job.name, step,
                         loop.steps, loss_value, " ".join(f"{k} {values[k]:.4f}" for k in job.metric_names),
                         lr, row["samples_per_s"], wall)
            if step % loop.checkpoint_every == 0 or step == last:
                evaluate()
                _checkpoint(job, run, model, optimizer, scheduler, gens, step, wall, sharded, ctx,
                            export=step % loop.checkpoint_every == 0 or step == loop.steps)
    finally:
        if bar is not None:
            bar.close()
        for f in (csv_file, eval_file):
            if f is not None:
                f.close()
    if step >= loop.steps:
        model_state, _ = _full_state(model, optimizer, sharded)
        if ctx.is_main:
            job.export(run.root, model_state)
        ctx.barrier()
    return TrainResult(step, loss_value, wall_before + time.perf_counter() - start, history, evals)


@torch.no_grad()
def _evaluate(job: Job, model: nn.Module, loop: LoopConfig, ctx: DistContext) -> dict[str, float]:
    """Loss and parts on ``loop.eval_samples`` fixed samples with fixed noise (every rank computes
    the same numbers on its replica; under FSDP the forward needs them all anyway). The global
    RNGs are left as they were, so evaluating does not change the training run."""
    n = job.num_samples()
    m = min(n, loop.eval_samples)
    indices = torch.linspace(0, n - 1, m).round().long()
    was_training = model.training
    model.eval()
    with torch.random.fork_rng(devices=[]):
        inputs = job.inputs(indices, torch.Generator().manual_seed(EVAL_SEED), slice(0, m), ctx.device)
        with torch.autocast(ctx.device.type, dtype=torch.bfloat16, enabled=loop.bf16):
            loss, parts = model(*inputs)
    model.train(was_training)
    return {"loss": float(loss), **{k: float(v) for k, v in parts.items()}}


def _checkpoint(job: Job, run: RunDir, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                gens: dict[str, torch.Generator], step: int, wall: float, sharded: bool, ctx: DistContext,
                export: bool) -> None:
    model_state, optim_state = _full_state(model, optimizer, sharded)
    if ctx.is_main:
        if export:
            job.export(run.checkpoint_dir(step), model_state)
        run.save_state({
            "version": STATE_VERSION, "job": job.name, "step": step, "wall_s": wall, "model": model_state,
            "optimizer": optim_state, "scheduler": scheduler.state_dict(), "rng": rng_state(gens),
        })
        log.info("%s: state saved at step %d (%s)", job.name, step, run.state_path)
    ctx.barrier()
