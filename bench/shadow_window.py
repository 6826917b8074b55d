"""Benchmark one shadow window: A2World-sim predicts 20 keyframes of 3 views and scores them
(``ShadowPredictor.score``, what the shadow node's worker runs per 2 s window).

Measures, in the same process and alternating so load on a shared machine hits both alike, the
path before issue 18 (the release's streaming tokenizer, ``load_rollout(..., fast_vae=False)``:
frame 0 then 16 frames per encode call, one latent per decode call, NCDHW; one latent-score encode
per view) against the shadow's default (``SinglePassTokenizer``, one latent-score encode per
window), and prints the per-window times, their ratio and where the time goes.

The model is the shipped size with random weights (model_channels 128, 2 blocks, 2 heads,
state_t 6, history 20, 3 views at 64x64) and the shipped tokenizer when it is there (else a random
one at its width, dim 8): speed does not depend on the weights' values.

    nice -n 19 .venv/bin/python bench/shadow_window.py                 # 4 steps, 1 thread (sim.yaml)
    .venv/bin/python bench/shadow_window.py --steps 8 --windows 6 --threads 2
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from a2w.shadow.predictor import TOKENIZER_FILE, Keyframe, ShadowPredictor, Window, load_rollout
from a2world.checkpoint import save_checkpoint
from a2world.config import tiny_config
from a2world.dit import build_dit
from a2world.tokenizer import WanTokenizer

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_TOKENIZER = ROOT / "models" / "checkpoints" / "sim" / "tokenizer" / TOKENIZER_FILE
VIEWS = ("left_wrist", "right_wrist", "front")
VIEW_IDS = (0, 1, 2)
SIZE = 64


def build_checkpoint(directory: Path, seed: int = 0) -> Path:
    """A random A2World-sim at the shipped size beside the shipped tokenizer (or a random one at dim 8)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build_dit(tiny_config("sim", state_t=6, history_frames_per_view=20)).eval()
    save_checkpoint(net, directory)
    if SHIPPED_TOKENIZER.exists():
        shutil.copy(SHIPPED_TOKENIZER, directory / TOKENIZER_FILE)
    else:
        WanTokenizer.tiny(seed=seed, dim=8).save(directory / TOKENIZER_FILE)
    return directory


def windows(n: int, seed: int = 0) -> list[Window]:
    """Windows of a slowly moving scene (smooth frames, small actions) so the history sampling varies."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (len(VIEWS), SIZE, SIZE, 3)).astype(np.float64)
    out, t = [], 0.0
    for i in range(n):
        keys = []
        for k in range(21):
            shift = (i * 20 + k) * 0.5
            frames = {v: np.clip(np.roll(base[j], int(shift), axis=1) + 10 * np.sin(shift), 0, 255).astype(np.uint8)
                      for j, v in enumerate(VIEWS)}
            keys.append(Keyframe(t + k * 0.1, frames))
        out.append(Window(i, keys, rng.normal(0.0, 0.005, (20, 14)).astype(np.float32)))
        t += 2.0
    return out


class Stages:
    """Wall time per stage of a window, by wrapping the rollout's and predictor's steps."""

    def __init__(self, predictor: ShadowPredictor) -> None:
        import a2world.rollout as rollout_module

        self.totals: dict[str, float] = defaultdict(float)
        ro = predictor.rollout
        self._wrap(ro, "_decode", "decode 3x21 frames")
        self._wrap(ro, "_condition", "encode start frames")
        self._wrap(predictor, "_latent_mses", "latent score encodes")
        self._wrap(predictor, "compare", "scoring (SSIM + latent)")
        self._module, self._encode_history = rollout_module, rollout_module.encode_history_frames

    def _wrap(self, obj: Any, name: str, label: str) -> None:
        inner = getattr(obj, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.totals[label] += time.perf_counter() - start

        setattr(obj, name, timed)

    def __enter__(self) -> Stages:
        inner = self._encode_history

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.totals["history encode (60 frames)"] += time.perf_counter() - start

        self._module.encode_history_frames = timed
        return self

    def __exit__(self, *exc: object) -> None:
        self._module.encode_history_frames = self._encode_history


class PerViewLatentPredictor(ShadowPredictor):
    """The predictor as it was before the fast path: one latent encode (2 frames) per view."""

    def _latent_mses(self, predicted: Any, real: Any) -> list[float]:
        one = super()._latent_mses
        return [one([p], [r])[0] for p, r in zip(predicted, real)]


def timed_window(predictor: ShadowPredictor, win: Window) -> float:
    start = time.perf_counter()
    predictor.score(win)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=4, help="sampling steps (launch/params/sim.yaml: 4)")
    ap.add_argument("--windows", type=int, default=4, help="timed windows per path (after one warm-up)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the shadow node: 1)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    wins = windows(args.windows + 1)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = build_checkpoint(Path(tmp))
        paths: dict[str, Callable[[], Any]] = {
            "before (streaming VAE)": lambda: load_rollout(ckpt, (SIZE, SIZE), args.steps, 0, fast_vae=False),
            "after (SinglePassTokenizer)": lambda: load_rollout(ckpt, (SIZE, SIZE), args.steps, 0),
        }
        kinds = (PerViewLatentPredictor, ShadowPredictor)
        predictors = {name: kind(make(), VIEWS, VIEW_IDS) for kind, (name, make) in zip(kinds, paths.items())}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {args.steps} steps, "
          f"3 views at {SIZE}x{SIZE}, tokenizer {'shipped' if SHIPPED_TOKENIZER.exists() else 'random dim 8'}",
          flush=True)
    times: dict[str, list[float]] = {name: [] for name in predictors}
    stages = {name: Stages(p) for name, p in predictors.items()}
    for i, win in enumerate(wins):
        for name, p in predictors.items():  # alternate: a load spike hits both paths
            with stages[name]:
                if i == 0:
                    p.score(win)  # warm-up: oneDNN kernel selection, allocator growth
                    stages[name].totals.clear()
                    continue
                times[name].append(timed_window(p, win))
    for name, ts in times.items():
        print(f"{name:30} median {np.median(ts):6.3f} s/window  min {min(ts):6.3f}  max {max(ts):6.3f}")
        for label, total in sorted(stages[name].totals.items(), key=lambda kv: -kv[1]):
            print(f"    {label:28} {total / len(ts):6.3f} s")
    old, new = (np.median(ts) for ts in times.values())
    print(f"ratio before/after: {old / new:.2f}x faster (median per window)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
