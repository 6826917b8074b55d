"""`a2w policy …`: build A2World-policy from A2World weights, inspect it, export its denoiser.

`register(subparsers)` adds the top-level `policy` group (listed in a2w's COMMAND_MODULES);
`register_model_command(model_subparsers)` adds the same init command as `a2w model init-policy`
(the model group's MODEL_COMMAND_MODULES hook).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def _add_init_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from", dest="source", required=True, help="A2World checkpoint: official .pt or our directory")
    p.add_argument("--out", required=True, help="output directory (model.safetensors + config.json)")
    p.add_argument(
        "--cross-attn-from",
        default=None,
        help="checkpoint whose blocks.*.cross_attn.* weights to use (the paper uses Cosmos-Predict2-2B)",
    )
    p.add_argument(
        "--action-mlp-ratio",
        type=float,
        default=None,
        help="action MLP width / model width (default: an exact copy of the video MLP)",
    )
    p.add_argument("--max-prefix", type=int, default=None, help="longest action prefix trained (default 20)")
    p.add_argument("--no-video-attends-actions", action="store_true", help="mask video rows off action tokens")
    p.add_argument("--seed", type=int, default=0, help="seed of the fresh action-only weights")
    _add_allow_nonfinite(p)
    p.set_defaults(func=_cmd_init)


def _add_allow_nonfinite(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-nonfinite", action="store_true", help="load weights holding NaN/Inf (refused by default)")


def register_model_command(model_subparsers: argparse._SubParsersAction) -> None:
    """`a2w model init-policy` (hook of `a2world.cli.MODEL_COMMAND_MODULES`)."""
    _add_init_arguments(model_subparsers.add_parser("init-policy", help="build A2World-policy from A2World weights"))


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser("policy", help="A2World-policy: init from A2World, inspect, export ONNX")
    sub = group.add_subparsers(dest="policy_command", metavar="SUBCOMMAND")
    group.set_defaults(func=lambda args: (group.print_help(), 2)[1])

    _add_init_arguments(sub.add_parser("init", help="build A2World-policy from A2World weights (= model init-policy)"))

    tiny = sub.add_parser("init-tiny", help="a tiny random-weights checkpoint directory (smoke tests of the stack)")
    tiny.add_argument("--out", required=True, help="output directory (policy, tokenizer, text embeddings)")
    tiny.add_argument("--instruction", action="append", required=True,
                      help="an instruction it knows (repeat; the first is its default)")
    tiny.add_argument("--image-size", type=int, nargs=2, default=(64, 64), metavar=("H", "W"))
    tiny.add_argument("--seed", type=int, default=0)
    tiny.set_defaults(func=_cmd_init_tiny)

    info = sub.add_parser("info", help="configuration and parameter counts of a policy checkpoint")
    info.add_argument("checkpoint")
    info.set_defaults(func=_cmd_info)

    exp = sub.add_parser("export-onnx", help="export one denoiser evaluation to ONNX (float32, static shapes)")
    exp.add_argument("checkpoint")
    exp.add_argument("--out", required=True)
    exp.add_argument("--views", type=int, default=3)
    exp.add_argument("--latent-size", type=int, nargs=2, default=(32, 32), metavar=("H", "W"))
    exp.add_argument("--context-tokens", type=int, default=None, help="default: the config's text_tokens")
    exp.add_argument("--batch", type=int, default=1, help="2 when guidance runs both branches")
    _add_allow_nonfinite(exp)
    exp.set_defaults(func=_cmd_export)


def _load_error(command: str, exc: Exception) -> int:
    """A file that cannot be loaded ends the command with one line, not a traceback."""
    print(f"a2w policy {command}: {exc}", file=sys.stderr)
    return 1


def _cmd_init(args: argparse.Namespace) -> int:
    from a2world.load_checks import CheckpointLoadError
    from a2world.policy.checkpoint import save_policy
    from a2world.policy.init import init_policy_from_files

    overrides: dict = {}
    if args.action_mlp_ratio is not None:
        overrides["action_mlp_ratio"] = args.action_mlp_ratio
    if args.max_prefix is not None:
        overrides["max_prefix"] = args.max_prefix
    if args.no_video_attends_actions:
        overrides["video_attends_actions"] = False
    try:
        policy, report = init_policy_from_files(
            args.source, args.cross_attn_from, args.seed, allow_nonfinite=args.allow_nonfinite, **overrides
        )
    except CheckpointLoadError as exc:
        return _load_error("init", exc)
    out = save_policy(policy, args.out)
    n = sum(p.numel() for p in policy.parameters())
    print(f"{report.summary()}")
    print(f"wrote {out} ({n:,} parameters)")
    return 0


def _cmd_init_tiny(args: argparse.Namespace) -> int:
    from a2world.policy.bundle import write_random_bundle

    h, w = args.image_size
    if h < 16 or w < 16 or h % 16 or w % 16:
        raise SystemExit("--image-size must be positive multiples of 16 (tokenizer 8 x patch 2)")
    out = write_random_bundle(args.out, args.instruction, image_size=(h, w), seed=args.seed)
    print(f"wrote {out}: random weights, {len(args.instruction)} instruction(s), {h}x{w} images")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from a2world.load_checks import CheckpointLoadError
    from a2world.policy.checkpoint import read_policy_config
    from a2world.policy.model import build_policy

    try:
        cfg = read_policy_config(args.checkpoint)
    except CheckpointLoadError as exc:
        return _load_error("info", exc)
    net = build_policy(cfg, "meta")
    total = sum(p.numel() for p in net.parameters())
    action = sum(p.numel() for n, p in net.named_parameters() if "action" in n)
    bb = cfg.backbone
    print(f"width {bb.model_channels}, blocks {bb.num_blocks}, heads {bb.num_heads}")
    print(f"chunk: {cfg.action_horizon} actions at {cfg.action_rate_hz:g} Hz, "
          f"{cfg.predicted_frames} frames at {bb.fps:g} fps")
    print(f"parameters: {total:,} ({action:,} action-specific)")
    print(f"video attends actions: {cfg.video_attends_actions}; max prefix {cfg.max_prefix}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from a2world.load_checks import CheckpointLoadError
    from a2world.policy.checkpoint import load_policy
    from a2world.policy.diffusion import JointDenoiser
    from a2world.policy.onnx import export_denoiser

    try:
        policy = load_policy(args.checkpoint, allow_nonfinite=args.allow_nonfinite)
    except CheckpointLoadError as exc:
        return _load_error("export-onnx", exc)
    p = policy.config.backbone.patch_spatial
    h, w = args.latent_size
    if h % p or w % p:
        raise SystemExit(f"--latent-size must be multiples of the patch size {p}")
    den = JointDenoiser(policy, args.views, h // p, w // p)
    tokens = args.context_tokens or policy.config.text_tokens
    out = export_denoiser(den, Path(args.out), args.batch, args.views, (h, w), tokens)
    print(f"wrote {out} ({Path(out).stat().st_size / 1e6:.1f} MB)")
    return 0
