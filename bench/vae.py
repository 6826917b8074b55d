"""Benchmark the Wan2.1 VAE: encode 21 frames and decode 6 latents per view.

Prints frames/s and, because machines are noisy, ratios measured in the same run:
chunked (frame 0, then 16-frame chunks; one latent per decode step, as A2World) against a single
pass, and bf16 against fp32.

    .venv/bin/python bench/vae.py                       # CPU: tiny at 256², full at 64²
    .venv/bin/python bench/vae.py --config full --size 256 --device cuda
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from a2world.vae import RELEASE_TEMPORAL_WINDOW, VAEConfig, WanVAE

FRAMES = 21  # per view and chunk in A2World (a2world_release_facts.md §3.4)
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


@dataclass
class Timing:
    config: str
    dtype: str
    mode: str
    encode_s: float
    decode_s: float
    peak_mib: float | None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(
    fn: Callable[[], torch.Tensor], device: torch.device, repeats: int, warmup: int
) -> tuple[float, torch.Tensor]:
    for _ in range(warmup):  # kernel selection and allocator growth are not what we measure
        fn()
    _sync(device)
    best = float("inf")
    out = torch.empty(0)
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best, out


def run_config(
    name: str,
    config: VAEConfig,
    size: int,
    views: int,
    device: torch.device,
    repeats: int,
    warmup: int,
    dtypes: list[str],
) -> list[Timing]:
    torch.manual_seed(0)
    vae = WanVAE(config).to(device).eval()
    g = torch.Generator().manual_seed(1)
    video = (torch.rand(views, 3, FRAMES, size, size, generator=g) * 2 - 1).to(device)
    results: list[Timing] = []
    for dtype_name in dtypes:
        vae.to(DTYPES[dtype_name])
        x = video.to(DTYPES[dtype_name])
        latents = vae.encode(x)
        for mode, window, latent_window in (
            ("chunked", RELEASE_TEMPORAL_WINDOW, 1),
            ("single-pass", None, None),
        ):
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            enc_s, _ = _timed(lambda: vae.encode(x, temporal_window=window), device, repeats, warmup)
            dec_s, _ = _timed(lambda: vae.decode(latents, latent_window=latent_window), device, repeats, warmup)
            peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
            results.append(Timing(name, dtype_name, mode, enc_s, dec_s, peak))
            print_row(results[-1], size, views)
    return results


HEADER = f"{'config':7} {'size':>5} {'dtype':5} {'mode':12} {'enc fps':>9} {'dec fps':>9} {'peak MiB':>9}"


def print_row(r: Timing, size: int, views: int) -> None:
    fps_e = views * FRAMES / r.encode_s
    fps_d = views * FRAMES / r.decode_s
    peak = f"{r.peak_mib:9.0f}" if r.peak_mib is not None else f"{'-':>9}"
    print(f"{r.config:7} {size:5d} {r.dtype:5} {r.mode:12} {fps_e:9.2f} {fps_d:9.2f} {peak}", flush=True)


def report(results: list[Timing]) -> None:
    print("\nratios (throughput; >1 means the first is faster):")
    by_key = {(r.config, r.dtype, r.mode): r for r in results}
    for (config, dtype, mode), r in by_key.items():
        if mode == "chunked" and (single := by_key.get((config, dtype, "single-pass"))):
            print(
                f"  {config:5} {dtype}: chunked / single-pass  "
                f"encode {single.encode_s / r.encode_s:5.2f}  decode {single.decode_s / r.decode_s:5.2f}"
            )
    for (config, dtype, mode), r in by_key.items():
        if dtype == "bf16" and (fp32 := by_key.get((config, "fp32", mode))):
            print(
                f"  {config:5} {mode}: bf16 / fp32  "
                f"encode {fp32.encode_s / r.encode_s:5.2f}  decode {fp32.decode_s / r.decode_s:5.2f}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=("tiny", "full", "both"), default="both")
    parser.add_argument("--size", type=int, help="frame height = width (default 256; full on CPU: 64)")
    parser.add_argument("--views", type=int, default=1, help="views folded into the batch")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--warmup", type=int, help="untimed runs before timing (default 1)")
    parser.add_argument("--dtypes", default="fp32,bf16")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    warmup = args.warmup if args.warmup is not None else 1
    if device.type == "cuda":
        # tight fp32 means real fp32, not TF32 (wan_vae_facts.md §5)
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    unknown = [d for d in dtypes if d not in DTYPES]
    if unknown:
        parser.error(f"unknown dtypes {unknown}; choose from {sorted(DTYPES)}")
    configs = {"tiny": VAEConfig.tiny(), "full": VAEConfig.released()}
    names = ["tiny", "full"] if args.config == "both" else [args.config]
    sizes = {name: args.size or (64 if name == "full" and device.type == "cpu" else 256) for name in names}
    for name, size in sizes.items():
        if size % 8:
            parser.error(f"--size must be a multiple of 8, got {size}")
    print(f"device {device} ({torch.get_num_threads()} threads), torch {torch.__version__}, "
          f"{args.views} view(s), {FRAMES} frames -> 6 latents, best of {args.repeats}, {warmup} warm-up")
    print(HEADER, flush=True)
    results: list[Timing] = []
    for name in names:
        results += run_config(name, configs[name], sizes[name], args.views, device, args.repeats, warmup, dtypes)
    report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
