"""One denoiser forward of the A2World DiT: tokens/s and achieved FLOP/s.

The baseline is the eager fp32 forward measured in the same run; bf16 and torch.compile variants
are printed as ratios against it (machines are noisy; absolute times are for orientation only).

    .venv/bin/python bench/worldmodel.py                      # tiny width, released token count, CPU
    .venv/bin/python bench/worldmodel.py --config released --blocks 1   # one 2B-width block on CPU
    .venv/bin/python bench/worldmodel.py --config released --device cuda  # the full 2B forward

FLOPs are counted analytically (2 per multiply-add of every matmul, attention included; norms,
activations and RoPE left out), for what this implementation executes.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from dataclasses import replace
from typing import Callable

import torch

from a2world.config import DiTConfig, released_config, tiny_config
from a2world.dit import A2WorldDiT, HistoryInputs, build_dit

log = logging.getLogger("bench.worldmodel")


def forward_flops(cfg: DiTConfig, views: int, frames: int, tokens_per_frame: int, hist_latents: int) -> float:
    """Matmul FLOPs of one forward (2 per MAC)."""
    d, hidden, ctx = cfg.model_channels, cfg.mlp_hidden, cfg.crossattn_emb_channels
    n = views * frames * tokens_per_frame
    macs = 0.0
    if cfg.use_history:
        mem = views * hist_latents * tokens_per_frame  # history tokens (same grid as patches)
        ctx_tokens = hist_latents * tokens_per_frame  # per view
    else:
        mem, ctx_tokens = 0, 1  # one constant action token per view
    block = 0.0
    block += 4 * n * d * d + 2 * mem * d * d  # self-attn q,k,v,o (+ memory through k, v)
    block += 2 * n * (n + mem) * d  # QK^T and AV over all keys
    block += 4 * n * d * d + 2 * n * views * tokens_per_frame * d  # cross-view (masked per frame)
    block += 2 * n * d * d + 2 * views * ctx_tokens * ctx * d + 2 * n * ctx_tokens * d  # cross-attn
    block += 2 * n * d * hidden  # MLP
    block += 3 * views * frames * (d * cfg.adaln_lora_dim + cfg.adaln_lora_dim * 3 * d)  # AdaLN
    macs += cfg.num_blocks * block
    macs += n * cfg.patch_in_features * d + n * d * cfg.patch_out_features  # embed / final
    macs += views * frames * (d * d + 3 * d * d)  # timestep MLP
    if cfg.use_history:
        macs += 2 * mem * ctx * d  # mem_to_k / mem_to_v
        macs += mem * ctx * cfg.history_conv_channels  # 1×1 conv of the history tokenizer
        macs += mem * cfg.history_conv_channels * cfg.latent_channels * 9
    return 2.0 * macs


def make_inputs(cfg: DiTConfig, views: int, frames: int, latent_hw: int, device: str) -> dict:
    g = torch.Generator().manual_seed(0)
    vt = views * frames
    mask = torch.zeros(1, views, frames)
    mask[:, :, 0] = 1
    inputs = dict(
        x=torch.randn(1, 16, vt, latent_hw, latent_hw, generator=g).to(device),
        timesteps=torch.rand(1, vt, generator=g).to(device),
        view_ids=torch.tensor([[2, 0, 1, 3][:views]], device=device),
        condition_mask=mask.reshape(1, vt).to(device),
        actions=(torch.randn(1, 20, 14, generator=g) * 0.05).to(device),
    )
    if cfg.use_history:
        inputs["history"] = HistoryInputs(
            torch.randn(1, 16, views * cfg.history_latents_per_view, latent_hw, latent_hw, generator=g).to(device),
            torch.randn(1, 20, 20, 22, generator=g).to(device),
        )
    return inputs


def time_forward(fn: Callable[[], torch.Tensor], repeats: int, warmup: int, device: str) -> float:
    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    with torch.no_grad():
        for _ in range(warmup):
            fn()
        sync()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=["tiny", "released"], default="tiny")
    ap.add_argument("--variant", choices=["pretrained", "sim"], default="pretrained")
    ap.add_argument("--blocks", type=int, default=None, help="override the number of blocks")
    ap.add_argument("--views", type=int, default=3)
    ap.add_argument("--size", type=int, default=256, help="pixel size (latent = size / 8)")
    ap.add_argument("--frames", type=int, default=6, help="latent frames per view")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--no-bf16", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    cfg = released_config(args.variant) if args.config == "released" else tiny_config(args.variant)
    if args.blocks is not None:
        cfg = replace(cfg, num_blocks=args.blocks)
    torch.manual_seed(0)
    net: A2WorldDiT = build_dit(cfg, args.device).eval()
    latent_hw = args.size // 8
    tpf = (latent_hw // cfg.patch_spatial) ** 2
    tokens = args.views * args.frames * tpf
    flops = forward_flops(cfg, args.views, args.frames, tpf, cfg.history_latents_per_view)
    inputs = make_inputs(cfg, args.views, args.frames, latent_hw, args.device)

    print(f"device {args.device}  torch {torch.__version__}  threads {torch.get_num_threads()}")
    print(
        f"config {args.config}/{args.variant}: width {cfg.model_channels}, blocks {cfg.num_blocks}, "
        f"{sum(p.numel() for p in net.parameters()) / 1e6:.1f}M params; {args.views} views × "
        f"{args.frames} latent frames × {tpf} tokens = {tokens} tokens; {flops / 1e9:.2f} GFLOP/forward"
    )
    base = time_forward(lambda: net(**inputs), args.repeats, 1, args.device)
    print(
        f"eager fp32   {base * 1e3:9.1f} ms  {tokens / base:10.0f} tokens/s  "
        f"{flops / base / 1e9:8.1f} GFLOP/s  ratio 1.00"
    )
    if not args.no_bf16:
        net_bf16 = build_dit(cfg, args.device).eval()
        net_bf16.load_state_dict(net.state_dict())
        net_bf16.to(torch.bfloat16)
        t = time_forward(lambda: net_bf16(**inputs), args.repeats, 1, args.device)
        print(f"eager bf16   {t * 1e3:9.1f} ms  {tokens / t:10.0f} tokens/s  {flops / t / 1e9:8.1f} GFLOP/s  "
              f"speed-up ×{base / t:.2f} vs fp32")
        del net_bf16
    if not args.no_compile:
        try:
            compiled = torch.compile(net)
            t0 = time.perf_counter()
            with torch.no_grad():
                compiled(**inputs)
            compile_s = time.perf_counter() - t0
            t = time_forward(lambda: compiled(**inputs), args.repeats, 1, args.device)
            print(f"compile fp32 {t * 1e3:9.1f} ms  {tokens / t:10.0f} tokens/s  {flops / t / 1e9:8.1f} GFLOP/s  "
                  f"speed-up ×{base / t:.2f} vs eager fp32 (first call incl. compile {compile_s:.1f} s)")
        except Exception as err:  # noqa: BLE001 - report why compile is unavailable, keep the run
            print(f"compile fp32 unavailable: {type(err).__name__}: {str(err).splitlines()[0][:160]}")


if __name__ == "__main__":
    main()
