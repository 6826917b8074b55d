"""`a2w shadow calibrate`: fit the shadow's alarm thresholds on nominal recorded episodes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from a2w.msgs.cameras import VIEW_NAMES
from a2w.shadow.motion import CHUNK
from a2w.shadow.predictor import FREEZE_WEIGHT, STRIDE


def register(sub: argparse._SubParsersAction) -> None:
    group = sub.add_parser("shadow", help="the shadow world model: calibrate its alarms, evaluate them on faults")
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
    p.add_argument("--stride", type=int, default=STRIDE, help="keyframes between window starts (as the node's stride)")
    p.add_argument("--freeze-weight", type=float, default=FREEZE_WEIGHT, help="as the node's freeze_weight")
    p.add_argument("--max-episodes", type=int, default=None, help="per dataset")
    p.set_defaults(func=_cmd_calibrate)

    e = cmds.add_parser(
        "eval", help="true/false alarm rates and detection latency on the sim's injected faults",
        description="Runs scripted-expert episodes of a sim task, nominal and with each seeded fault (object slip, "
        "object removed, camera freeze, camera black, arm stall, gripper fail), replays each through the shadow's "
        "windows and alarm logic, and prints per fault the true-positive rate, the false alarms, and the detection "
        "latency from the fault's onset (median, p90). A fault counts only when it changed at least 1 % of some view "
        "against the nominal episode of its seed ('no change' counts the others). Thresholds: the checkpoint's "
        "calibrated ones, or fitted here "
        "on --calibrate nominal episodes of other seeds. --baseline adds the same table for a copy-the-last-frame "
        "predictor, calibrated the same way, on the same episodes.")
    e.add_argument("--checkpoint", type=Path, default=None, help="A2World-sim checkpoint directory")
    e.add_argument("--baseline", action="store_true",
                   help="also rate the copy-last-frame predictor (alone when no --checkpoint)")
    e.add_argument("--thresholds", type=Path, default=None,
                   help="calibrated thresholds (default: <checkpoint>/shadow_thresholds.json unless --calibrate)")
    e.add_argument("--calibrate", type=int, default=0, metavar="N",
                   help="fit the thresholds on N nominal episodes (seeds from --calibration-seed-start) first")
    e.add_argument("--calibration-seed-start", type=int, default=5000)
    e.add_argument("--warn-alpha", type=float, default=0.1, help="with --calibrate: WARN false-alarm rate per window")
    e.add_argument("--alarm-alpha", type=float, default=0.05,
                   help="with --calibrate: ALARM false-alarm rate per window")
    e.add_argument("--task", default="pick_cube", help="sim task (pick_cube, lift_box)")
    e.add_argument("--faults", nargs="+", default=None, metavar="FAULT",
                   help="faults to inject (default: all the sim provides)")
    e.add_argument("--episodes", type=int, default=5, help="episodes per fault")
    e.add_argument("--nominal", type=int, default=None, help="nominal episodes (default: --episodes)")
    e.add_argument("--seed-start", type=int, default=0,
                   help="first seed (keep evaluation seeds out of the calibration and training data)")
    e.add_argument("--views", nargs="+", default=list(VIEW_NAMES))
    e.add_argument("--image-size", type=int, nargs=2, default=(64, 64), metavar=("H", "W"))
    e.add_argument("--steps", type=int, default=8, help="sampling steps (as the node's)")
    e.add_argument("--latent-weight", type=float, default=1.0, help="as the node's latent_weight")
    e.add_argument("--stride", type=int, default=STRIDE, help="keyframes between window starts (as the node's stride)")
    e.add_argument("--freeze-weight", type=float, default=FREEZE_WEIGHT,
                   help="as the node's freeze_weight (0: the model's divergence alone)")
    e.add_argument("--enter", type=int, default=1, help="as the node's alarm_enter")
    e.add_argument("--json", type=Path, default=None, help="write the tables and every case here")
    e.set_defaults(func=_cmd_eval)


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from a2w.shadow.calibrate import run
    from a2w.shadow.component import THRESHOLDS_FILE

    out = args.out or args.checkpoint / THRESHOLDS_FILE
    try:
        result = run(args.checkpoint, args.dataset, out, args.views, tuple(args.image_size), args.steps,
                     args.warn_alpha, args.alarm_alpha, args.latent_weight, max_episodes=args.max_episodes,
                     stride=args.stride, freeze_weight=args.freeze_weight)
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


def _cmd_eval(args: argparse.Namespace) -> int:
    import json

    from a2w.msgs.cameras import VIEW_IDS
    from a2w.shadow.alarm import Thresholds
    from a2w.shadow.component import THRESHOLDS_FILE
    from a2w.shadow.evaluate import (
        CopyLastFrame,
        capture_cases,
        check_plan,
        judge_cases,
        nominal_scores,
        summarize,
        table,
        to_json,
    )
    from a2w.shadow.predictor import ShadowPredictor, load_rollout
    from a2w.sim.faults import FAULT_NAMES

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    faults = list(args.faults) if args.faults is not None else list(FAULT_NAMES)
    nominal = args.episodes if args.nominal is None else args.nominal
    size = tuple(args.image_size)
    out: dict = {}
    try:
        if args.checkpoint is None and not args.baseline:
            raise ValueError("nothing to rate: give --checkpoint, --baseline or both")
        if args.calibrate < 0 or args.enter < 1 or not 1 <= args.stride <= CHUNK:
            raise ValueError(f"--calibrate must be >= 0, --enter >= 1 and --stride 1..{CHUNK}")
        check_plan(faults, args.episodes, nominal)
        unknown = [v for v in args.views if v not in VIEW_IDS]
        if unknown:
            raise ValueError(f"--views: {unknown} are not rig views {sorted(VIEW_IDS)}")
        view_ids = [VIEW_IDS[v] for v in args.views]
        predictors = {}  # name -> (factory, thresholds file or None)
        if args.checkpoint is not None:
            rollout = load_rollout(args.checkpoint, size, args.steps, 0)
            path = args.thresholds or args.checkpoint / THRESHOLDS_FILE
            if not args.calibrate and not path.exists():
                raise ValueError(f"{path}: no calibrated thresholds; run a2w shadow calibrate, pass --thresholds, "
                                 "or --calibrate N")
            predictors["A2World-sim"] = (lambda: ShadowPredictor(rollout, args.views, view_ids, args.latent_weight,
                                                                 freeze_weight=args.freeze_weight),
                                         None if args.calibrate else path)
        if args.baseline:
            if not args.calibrate:
                raise ValueError("--baseline needs --calibrate N (it has no calibrated thresholds of its own)")
            predictors["copy-last-frame"] = (lambda: ShadowPredictor(CopyLastFrame(), args.views, view_ids, 0.0,
                                                                     freeze_weight=args.freeze_weight),
                                             None)
        calib = []
        if args.calibrate:
            calib = capture_cases(args.task, [], 0, args.calibration_seed_start, args.calibrate, args.views, size,
                                  stride=args.stride,
                                  progress=lambda what, i, n: say(f"calibration episode {i}/{n}: {what}"))
        cases = capture_cases(args.task, faults, args.episodes, args.seed_start, nominal, args.views, size,
                              stride=args.stride, progress=lambda what, i, n: say(f"episode {i}/{n}: {what}"))

        def progress(res, i: int, n: int) -> None:  # noqa: ANN001 - a CaseResult
            got = "detected" if res.detected_at is not None else ("false alarm" if res.false_alarm else "no alarm")
            lat = f" after {res.latency:.2f} s" if res.latency is not None else ""
            say(f"[{i}/{n}] {res.fault} seed {res.seed} {res.target}: {res.windows} windows, {got}{lat}")

        for name, (factory, path) in predictors.items():
            if path is None:
                thresholds = Thresholds.fit(nominal_scores(calib, factory), args.warn_alpha, args.alarm_alpha)
            else:
                thresholds = Thresholds.load(path)
            results = judge_cases(cases, factory, thresholds, args.enter, progress)
            rows = summarize(results)
            print(f"\n{name} on {args.task} (WARN {thresholds.warn:.4f}, ALARM {thresholds.alarm:.4f}, "
                  f"{'fitted on ' + str(thresholds.n) + ' nominal windows' if path is None else path})")
            print(table(rows))
            out[name] = to_json(args.task, results, rows, {"thresholds": vars(thresholds) if path is None
                                                             else str(path)})
    except (ValueError, OSError, LookupError) as exc:
        print(f"a2w shadow eval: {exc}", file=sys.stderr)
        return 2
    if args.json:
        meta = {"checkpoint": str(args.checkpoint) if args.checkpoint else None, "steps": args.steps,
                "seed_start": args.seed_start, "calibration": args.calibrate, "views": list(args.views),
                "image_size": list(size), "enter": args.enter, "stride": args.stride,
                "freeze_weight": args.freeze_weight}
        args.json.write_text(json.dumps({"meta": meta, **out}, indent=2) + "\n")
    return 0
