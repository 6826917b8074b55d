"""Seconds per training step of the `a2w train` jobs at the project's tiny sizes, on synthetic
tensors (no dataset), to size runs for a machine: the tokenizer at two widths, A2World and
A2World-policy at 64² (8×8 latents) with 3 views and 6 latent frames. Each step is the loop's
(forward, backward, clip, AdamW). Printed with the ratio to the policy step measured in the same
run, the baseline issue 17 quotes (~0.3 s at batch 8 on 2 threads).

    .venv/bin/python bench/train_step.py [--steps 3] [--batch 8] [--threads 2]
"""

from __future__ import annotations

import argparse
import logging
import time

import torch

from a2world.policy.train import PolicyTrainConfig
from a2world.tokenizer import WanTokenizer
from a2world.train.policy import PolicyData, PolicyJob, PolicyModelConfig
from a2world.train.text import hashed_text_cache
from a2world.train.tokenizer import TokenizerJob, TokenizerTrainConfig
from a2world.train.worldmodel import WorldModelConfig, WorldModelData, WorldModelJob, WorldModelObjective

log = logging.getLogger("bench.train_step")


def step_seconds(job, steps: int, batch: int) -> float:
    module = job.module()
    opt = torch.optim.AdamW(module.parameters(), lr=1e-4)
    gen = torch.Generator().manual_seed(0)
    times = []
    for i in range(steps + 1):  # the first step warms up allocators and kernels
        idx = torch.randint(0, job.num_samples(), (batch,), generator=gen)
        t = time.perf_counter()
        loss, _ = module(*job.inputs(idx, gen, slice(0, batch), torch.device("cpu")))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
        opt.step()
        if i:
            times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    n, views = 32, (0, 1, 2)
    model = PolicyModelConfig(state_t=6)
    pc = model.build()
    instr = ["lift the box with both arms"]
    policy_data = PolicyData(torch.randn(n, 16, 3 * pc.latent_frames, 8, 8, generator=g),
                             0.01 * torch.randn(n, pc.action_horizon, 14, generator=g),
                             torch.zeros(n, dtype=torch.long), instr, views, (64, 64))
    text = hashed_text_cache(instr, pc.text_tokens, pc.context_dim)
    tok = WanTokenizer.tiny(dim=8)
    wm = WorldModelConfig(state_t=6)
    wm_data = WorldModelData(policy_data.video, 0.01 * torch.randn(n, wm.build().action_chunk, 14, generator=g), views)
    frames = [torch.randint(0, 256, (40, 64, 64, 3), dtype=torch.uint8, generator=g) for _ in range(3)]
    jobs = {
        "policy (width 128, 2 blocks)": PolicyJob(policy_data, model, PolicyTrainConfig(), tok, text),
        "worldmodel (width 128, 2 blocks)": WorldModelJob(wm_data, wm, WorldModelObjective(), tok),
        "tokenizer dim 8": TokenizerJob(frames, TokenizerTrainConfig(dim=8)),
        "tokenizer dim 16": TokenizerJob(frames, TokenizerTrainConfig(dim=16)),
    }
    results = {name: step_seconds(job, args.steps, args.batch) for name, job in jobs.items()}
    base = results["policy (width 128, 2 blocks)"]
    print(f"batch {args.batch}, {args.threads} threads, median of {args.steps} steps, 64x64, 3 views")  # noqa: T201
    for name, s in results.items():
        print(f"  {name:34s} {s:7.2f} s/step  {s / base:6.1f}x policy")  # noqa: T201


if __name__ == "__main__":
    main()
