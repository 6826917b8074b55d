"""`a2w shadow calibrate`: fit the shadow's alarm thresholds on nominal recorded episodes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from a2w.msgs.cameras import VIEW_NAMES


def register(sub: argparse._SubParsersAction) -> None:
    group = sub.add_parser("shadow", help="the shadow world model: calibrate its alarms")
    cmds = group.add_subparsers(dest="shadow_command", metavar="SUBCOMMAND")
    group.set_defaults(func=lambda args: (group.print_help(), 2)[1])
    p = cmds.add_parser(
        "calibrate", help="fit WARN/ALARM thresholds on nominal episodes for stated false-alarm rates",
        description="Replays every episode of the datasets through the shadow's windows (2 s of executed "
        "motion each), scores A2World-sim's prediction against the recorded frames, and stores the conformal "
        "thresholds (default: <checkpoint>/shadow_thresholds.json, which the shadow node reads).")
    p.add_argument("--checkpoint", type=Path, required=True, help="A2World-sim checkpoint directory")
    p.add_argument("--dataset", type=Path, action="append", required=True, help="nominal episodes (repeat)")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--warn-alpha", type=float, default=0.1, help="false-alarm rate of WARN per window")
    p.add_argument("--alarm-alpha", type=float, default=0.02, help="false-alarm rate of ALARM per window")
    p.add_argument("--views", nargs="+", default=list(VIEW_NAMES))
    p.add_argument("--image-size", type=int, nargs=2, default=(64, 64), metavar=("H", "W"))
    p.add_argument("--steps", type=int, default=8, help="sampling steps (as the node's)")
    p.add_argument("--latent-weight", type=float, default=1.0, help="as the node's latent_weight")
    p.add_argument("--max-episodes", type=int, default=None, help="per dataset")
    p.set_defaults(func=_cmd_calibrate)


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from a2w.shadow.calibrate import run
    from a2w.shadow.component import THRESHOLDS_FILE

    out = args.out or args.checkpoint / THRESHOLDS_FILE
    try:
        result = run(args.checkpoint, args.dataset, out, args.views, tuple(args.image_size), args.steps,
                     args.warn_alpha, args.alarm_alpha, args.latent_weight, max_episodes=args.max_episodes)
    except (ValueError, OSError) as exc:  # bad datasets, checkpoints, rates: one line
        print(f"a2w shadow calibrate: {exc}", file=sys.stderr)
        return 2
    t = result.thresholds
    s = sorted(result.scores)
    print(f"{result.windows} windows of {result.episodes} episodes: scores {s[0]:.4f} .. {s[-1]:.4f} "
          f"(median {s[len(s) // 2]:.4f})")
    print(f"WARN above {t.warn:.4f} (false-alarm rate <= {t.warn_alpha:g}), ALARM above {t.alarm:.4f} "
          f"(<= {t.alarm_alpha:g}) -> {out}")
    return 0
