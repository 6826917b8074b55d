"""`a2w eval worldmodel`: the subcommand's arguments and output (the work is a2w.evaluation.worldmodel)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def register(evals: argparse._SubParsersAction) -> None:
    p = evals.add_parser(
        "worldmodel", help="A2World / A2World-sim rollouts against held-out recorded episodes (PSNR, SSIM)",
        description="Rolls the world model out from each start of each episode under the executed actions "
        "(A2World-sim with its history, autoregressively past one chunk) and compares the predicted frames with "
        "the recorded ones at each horizon: PSNR and SSIM per view, beside the copy-the-last-frame baseline on "
        "the same frames. Episodes in the checkpoint's training data (its train_config.yaml and its model.init "
        "run's) or in --train-dataset are refused.")
    p.add_argument("--checkpoint", type=Path, required=True,
                   help="world-model directory (a worldmodel or worldmodel-sim run: model + tokenizer.safetensors)")
    p.add_argument("--dataset", type=Path, action="append", required=True, help="held-out dataset (repeat)")
    p.add_argument("--episodes", type=int, nargs="+", default=None, help="episode indices (default: all)")
    p.add_argument("--horizons", type=float, nargs="+", default=[1.0, 2.0, 4.0], help="seconds (default 1 2 4)")
    p.add_argument("--start-every", type=float, default=None, metavar="SECONDS",
                   help="a rollout from every SECONDS of each episode (default: one, from its first row)")
    p.add_argument("--image-size", type=int, nargs=2, default=None, metavar=("H", "W"),
                   help="model image size (default: the run's data.image_size, else 64 64)")
    p.add_argument("--views", nargs="+", default=None, help="views in the model's order (default: the run's)")
    p.add_argument("--steps", type=int, default=35, help="sampling steps per chunk (default 35, the release's)")
    p.add_argument("--seed", type=int, default=0, help="sampler seed of the first chunk (chunk k: seed + k)")
    p.add_argument("--train-dataset", type=Path, action="append", default=[],
                   help="a dataset the checkpoint was trained on: its episodes are refused (repeat)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--json", type=Path, default=None, help="write the table and the starts as JSON")
    p.set_defaults(func=_cmd_worldmodel)


def _cmd_worldmodel(args: argparse.Namespace) -> int:
    from a2w.evaluation.worldmodel import EvalError, evaluate, write_json

    if args.steps < 1:
        print("a2w eval worldmodel: --steps must be >= 1", file=sys.stderr)
        return 2

    def show(s: dict) -> None:
        print(f"[{s['index']}/{s['of']}] {s['dataset']} episode {s['episode']} (seed {s['seed']}) "
              f"from row {s['row']}", flush=True)

    try:
        result = evaluate(args.checkpoint, args.dataset, args.horizons, episodes=args.episodes,
                          image_size=tuple(args.image_size) if args.image_size else None, views=args.views,
                          start_every_s=args.start_every, steps=args.steps, seed=args.seed,
                          train_datasets=args.train_dataset, device=args.device, on_start=show)
    except EvalError as exc:
        print(f"a2w eval worldmodel: {exc}", file=sys.stderr)
        return 2
    print(result.format())
    if args.json is not None:
        write_json(result, args.json)
        print(f"wrote {args.json}")
    return 0
