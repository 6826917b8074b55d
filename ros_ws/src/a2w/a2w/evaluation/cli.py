"""`a2w eval policy`: closed-loop success of a policy checkpoint on the simulated rig; `a2w eval worldmodel`:
world-model rollouts against held-out recorded episodes (a2w.evaluation.worldmodel)."""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

from a2w.evaluation.report import write_report

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    group = sub.add_parser("eval", help="evaluate the stack's models on the simulated rig")
    evals = group.add_subparsers(dest="eval_command", metavar="SUBCOMMAND")
    group.set_defaults(func=lambda args: (group.print_help(), 2)[1])
    p = evals.add_parser(
        "policy", help="closed-loop success rate of a policy checkpoint through the full sim stack",
        description="Runs launch/sim.launch.xml policy:=CHECKPOINT once per seed (seed-start, seed-start+1, ...): "
        "sim, cameras, arm node with its safety layers, policy node, task judge. Prints each episode and the "
        "success rate with its 95 %% Wilson interval, time to success, stalls and the p95 chunk latency.")
    p.add_argument("--checkpoint", type=Path, required=True, help="policy checkpoint directory")
    p.add_argument("--task", required=True, choices=("lift_box", "pick_cube"))
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--seed-start", type=int, required=True,
                   help="first seed, of the initial state and of the sampling noise; must not be in the training data")
    p.add_argument("--timeout", type=float, default=30.0, help="sim seconds before an episode fails")
    p.add_argument("--realtime", type=float, default=1.0, help="sim seconds per wall second (as the demo)")
    p.add_argument("--mode", default="rtc", choices=("rtc", "blend", "naive", "sync"), help="policy execution")
    p.add_argument("--steps", type=int, default=None, help="sampling steps (default: the launch's)")
    p.add_argument("--horizon", type=int, default=None,
                   help="actions executed per chunk before the next replaces it (default: the whole chunk)")
    p.add_argument("--train-dataset", type=Path, action="append", default=[],
                   help="a dataset the checkpoint was trained on: its seeds are refused (repeat)")
    p.add_argument("--video-dir", type=Path, default=None, help="write an mp4 of the three views per episode")
    p.add_argument("--json", type=Path, default=None, help="write the summary and every episode as JSON")
    p.set_defaults(func=_cmd_policy)
    o = evals.add_parser(
        "policy-offline", help="does a policy read its cameras, and how far are its chunks from the demonstrations",
        description="On recorded episodes, without the sim: (1) the denoiser's action error at each noise level "
        "with each clip's own observation and with shuffled ones (at high noise, where sampling starts, only the "
        "observation can tell the actions; equal errors mean the policy ignores its cameras); (2) chunks sampled "
        "as the policy node samples them, composed onto the recorded pose, against the demonstration's own "
        "chunk after 0.5, 1 and 2 s, beside holding still.")
    o.add_argument("--checkpoint", type=Path, required=True, help="policy checkpoint directory")
    o.add_argument("--dataset", type=Path, action="append", required=True, help="recorded dataset (repeat)")
    o.add_argument("--episodes", type=int, default=10, help="first episodes per dataset (default 10)")
    o.add_argument("--clips", type=int, default=64, help="clips for the noise probe (default 64)")
    o.add_argument("--every", type=int, default=30, help="rows between open-loop chunks (default 30: 1 s)")
    o.add_argument("--steps", type=int, default=8, help="sampling steps (default 8, as the sim launch)")
    o.add_argument("--seed", type=int, default=0)
    o.add_argument("--json", type=Path, default=None, help="write the tables as JSON")
    o.set_defaults(func=_cmd_policy_offline)
    from a2w.evaluation.worldmodel_cli import register as register_worldmodel

    register_worldmodel(evals)


def _cmd_policy_offline(args: argparse.Namespace) -> int:
    from a2w.evaluation.policy_offline import OfflineEvalError, evaluate

    for name in ("episodes", "clips", "every", "steps"):
        if getattr(args, name) < 1:
            print(f"a2w eval policy-offline: --{name} must be >= 1", file=sys.stderr)
            return 2
    try:
        result = evaluate(args.checkpoint, args.dataset, clips=args.clips, max_episodes=args.episodes,
                          every=args.every, steps=args.steps, seed=args.seed)
    except OfflineEvalError as exc:
        print(f"a2w eval policy-offline: {exc}", file=sys.stderr)
        return 2
    print(result.format())
    if args.json is not None:
        write_report(args.json, result.to_json())
    return 0


def _cmd_policy(args: argparse.Namespace) -> int:
    from a2w.evaluation.policy import evaluate, overlapping_seeds, training_seeds

    if args.episodes < 1:
        print("a2w eval policy: --episodes must be >= 1", file=sys.stderr)
        return 2
    if not args.checkpoint.is_dir():
        print(f"a2w eval policy: {args.checkpoint}: not a checkpoint directory", file=sys.stderr)
        return 2
    seeds = list(range(args.seed_start, args.seed_start + args.episodes))
    if args.train_dataset:
        try:
            used = training_seeds(args.train_dataset, args.task)
        except Exception as exc:  # noqa: BLE001 - any unreadable dataset ends the command in one line
            print(f"a2w eval policy: cannot read the training seeds: {exc}", file=sys.stderr)
            return 2
        clash = overlapping_seeds(seeds, used)
        if clash:
            print(f"a2w eval policy: seeds {clash} of {args.task} are in the training data "
                  f"({', '.join(map(str, args.train_dataset))}); pick a --seed-start past {max(used)}", file=sys.stderr)
            return 2
    if args.horizon is not None and args.horizon < 1:
        print("a2w eval policy: --horizon must be >= 1", file=sys.stderr)
        return 2
    params = {"mode": args.mode, **({"steps": args.steps} if args.steps else {}),
              **({"horizon": args.horizon} if args.horizon else {})}
    print(f"{args.task}: {args.episodes} episodes from seed {args.seed_start}, checkpoint {args.checkpoint}, "
          f"{args.mode}, timeout {args.timeout:g} s")
    print(f"{'seed':>6} {'result':<8} {'t_success':>9} {'sim s':>6} {'wall s':>7} {'chunks':>6} {'stalls':>6} "
          f"{'p95 s':>6}  note")

    def show(o) -> None:  # noqa: ANN001 - EpisodeOutcome
        t = f"{o.time_to_success:9.2f}" if math.isfinite(o.time_to_success) else f"{'-':>9}"
        print(f"{o.seed:6d} {'success' if o.success else 'failure':<8} {t} {o.sim_s:6.1f} {o.wall_s:7.1f} "
              f"{o.chunks:6d} {o.stalls:6d} {o.inference_p95_s:6.2f}  {o.note}", flush=True)

    result = evaluate(args.checkpoint, args.task, args.episodes, args.seed_start, args.timeout, args.realtime,
                      params, args.video_dir, on_outcome=show)
    s = result.summary()
    lo, hi = s["ci95"]
    print(f"success {s['successes']}/{s['episodes']} = {s['success_rate']:.0%} (95 % CI {lo:.0%}-{hi:.0%}); "
          f"median time to success {s['time_to_success_median_s']:.2f} s; stalls {s['stalls_total']} "
          f"(max {s['stalls_max']} per episode); faults {s['faults_total']}; "
          f"p95 chunk latency up to {s['inference_p95_s_max']:.2f} s (horizon 2.0 s)")
    if args.json is not None:
        write_report(args.json, result.to_json())
    return 0
