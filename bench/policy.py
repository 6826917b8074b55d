"""Benchmark A2World-policy: sampling latency per chunk against the number of sampling steps.

One chunk = num_steps sampler steps + one final evaluation of the joint denoiser (60 actions and
6 latents per view on the real-rig configuration). Machines are noisy, so every latency is also
printed as a ratio to ONE denoiser evaluation measured in the same run (ideal: steps + 1), and the
ONNX backend as a ratio to the torch backend. FLOPs of one evaluation come from torch's flop
counter; with --peak-tflops the achieved rate is printed as a fraction of the device's peak.
VAE encode/decode is not included (see bench/vae.py).

    .venv/bin/python bench/policy.py                         # CPU, tiny config, 3 views × 64²
    .venv/bin/python bench/policy.py --onnx                  # + onnxruntime vs torch
    .venv/bin/python bench/policy.py --config released --size 256 --device cuda --dtype bf16 \
        --compile --steps 1 4 10 35 --peak-tflops 989        # H100 SXM dense bf16 peak
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from a2world.policy.config import PolicyConfig, released_policy_config, tiny_policy_config
from a2world.policy.diffusion import Guidance, JointCondition, JointDenoiser, guided_x0, sample_joint
from a2world.policy.model import build_policy
from a2world.sampler import SamplerConfig, first_frame_mask
from a2world.vae.config import SPATIAL_COMPRESSION

log = logging.getLogger("bench.policy")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int) -> float:
    for _ in range(warmup):  # compilation, kernel selection and allocator growth are not measured
        fn()
    _sync(device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def _condition(cfg: PolicyConfig, views: int, latent: int, device: torch.device) -> JointCondition:
    g = torch.Generator().manual_seed(0)
    vt = views * cfg.latent_frames
    return JointCondition(
        clean_video=torch.randn(1, cfg.backbone.latent_channels, vt, latent, latent, generator=g).to(device),
        frame_mask=first_frame_mask(1, views, cfg.latent_frames, device),
        view_ids=torch.arange(views, device=device)[None],
        prefix=torch.zeros(1, cfg.action_horizon, cfg.action_width, device=device),
        prefix_mask=torch.zeros(1, cfg.action_horizon, device=device),
        context=torch.randn(1, cfg.text_tokens, cfg.context_dim, generator=g).to(device),
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=("tiny", "released"), default="tiny")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="fp32")
    ap.add_argument("--compile", action="store_true", help="torch.compile the denoiser (GPU)")
    ap.add_argument("--views", type=int, default=3)
    ap.add_argument("--size", type=int, default=64, help="image side in pixels (latent = size/8)")
    ap.add_argument("--steps", type=int, nargs="+", default=[1, 2, 4, 8, 16, 35])
    ap.add_argument("--guidance", type=float, default=1.0, help="s_v = s_a; != 1 runs both branches")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--onnx", action="store_true", help="also time the onnxruntime backend (fp32, CPU)")
    ap.add_argument("--peak-tflops", type=float, default=None, help="device peak for the FLOP/s fraction")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)

    device = torch.device(args.device)
    cfg = tiny_policy_config() if args.config == "tiny" else released_policy_config()
    latent = args.size // SPATIAL_COMPRESSION
    p = cfg.backbone.patch_spatial
    if latent % p:
        print(f"--size must be a multiple of {SPATIAL_COMPRESSION * p}", file=sys.stderr)
        return 2
    torch.manual_seed(0)
    with torch.device(device):
        policy = build_policy(cfg).to(DTYPES[args.dtype]).eval()
    den = JointDenoiser(policy, args.views, latent // p, latent // p)
    call = torch.compile(den) if args.compile else den
    cond = _condition(cfg, args.views, latent, device)
    guidance = Guidance(args.guidance, args.guidance)
    shape_a = (1, cfg.action_horizon, cfg.action_width)
    n_params = sum(t.numel() for t in policy.parameters())
    tokens = args.views * cfg.latent_frames * (latent // p) ** 2
    print(
        f"policy {args.config}: {n_params / 1e6:.1f} M parameters, {tokens} video + {cfg.action_horizon} action "
        f"tokens ({args.views} views × {args.size}²), {args.dtype}, {device}, threads {torch.get_num_threads()}, "
        f"compile {args.compile}, guidance {args.guidance} ({'2' if guidance.needs_unconditional else '1'} branch)"
    )

    x_v = torch.randn_like(cond.clean_video) * 10.0
    x_a = torch.randn(shape_a, device=device) * 2.0

    def one_eval() -> object:
        with torch.no_grad():
            return guided_x0(call, x_v, x_a, 10.0, 10.0 * cfg.action_sigma_ratio, cond, guidance)

    with FlopCounterMode(display=False) as counter:
        with torch.no_grad():
            guided_x0(den, x_v, x_a, 10.0, 10.0 * cfg.action_sigma_ratio, cond, guidance)
    flops = counter.get_total_flops()
    base = _best(one_eval, device, args.repeats, warmup=2)
    print(f"one denoiser evaluation: {base * 1e3:.2f} ms, {flops / 1e9:.2f} GFLOP")
    print(f"{'steps':>6} {'evals':>6} {'ms/chunk':>10} {'÷ 1 eval':>9} {'TFLOP/s':>8}"
          + (f" {'% peak':>7}" if args.peak_tflops else ""))
    for n in args.steps:
        sampler = SamplerConfig(num_steps=n)

        def chunk() -> object:
            return sample_joint(call, cond, shape_a, cfg.action_sigma_ratio, 0, sampler, guidance)

        t = _best(chunk, device, args.repeats, warmup=1)
        rate = flops * (n + 1) / t / 1e12
        line = f"{n:>6} {n + 1:>6} {t * 1e3:>10.2f} {t / base:>9.2f} {rate:>8.3f}"
        if args.peak_tflops:
            line += f" {100 * rate / args.peak_tflops:>6.1f}%"
        print(line)

    if args.onnx:
        if args.dtype != "fp32":
            print("--onnx needs --dtype fp32", file=sys.stderr)
            return 2
        from a2world.policy.onnx import OnnxDenoiser, export_denoiser

        batch = 2 if guidance.needs_unconditional else 1
        data = export_denoiser(den, None, batch, args.views, (latent, latent), cfg.text_tokens)
        ort = OnnxDenoiser(data, threads=torch.get_num_threads())

        def ort_eval() -> object:
            return guided_x0(ort, x_v, x_a, 10.0, 10.0 * cfg.action_sigma_ratio, cond, guidance)

        t_ort = _best(ort_eval, device, args.repeats, warmup=2)
        ref = one_eval()
        got = ort_eval()
        diff = max(float((a - b).abs().max()) for a, b in zip(ref, got))  # type: ignore[arg-type]
        print(f"onnxruntime evaluation: {t_ort * 1e3:.2f} ms = {t_ort / base:.2f} × torch; max |Δx0| {diff:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
