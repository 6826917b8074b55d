"""`a2w model ...`: inspect a world-model checkpoint, roll one out to an mp4.

Other model commands (e.g. the policy's `init-policy`) plug in by listing a module in
`MODEL_COMMAND_MODULES`; each such module provides `register_model_command(subparsers)`.
Image and video I/O use PyAV, imported only inside the commands that need it.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)

MODEL_COMMAND_MODULES: tuple[str, ...] = ("a2world.policy.cli",)

DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32, "fp16": torch.float16}


def register(subparsers: argparse._SubParsersAction) -> None:
    model = subparsers.add_parser("model", help="world-model checkpoints: inspect, rollout")
    sub = model.add_subparsers(dest="model_command", metavar="MODEL_COMMAND")
    model.set_defaults(func=lambda args: (model.print_help(), 2)[1])

    p = sub.add_parser("inspect", help="variant, parameter count, key check, dtypes of a checkpoint")
    p.add_argument("checkpoint", type=Path, help="official .pt file or our checkpoint directory")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_inspect)

    r = sub.add_parser("rollout", help="predict a video from initial images and an actions file")
    r.add_argument("--checkpoint", type=Path, required=True, help=".pt file or checkpoint directory")
    r.add_argument(
        "--tokenizer", required=True, help="VAE weights (our safetensors or tokenizer.pth), or 'tiny'"
    )
    r.add_argument("--images", type=Path, nargs="+", required=True, help="one image per view")
    r.add_argument("--view-ids", type=int, nargs="+", required=True, help="view id per image (0-3)")
    r.add_argument("--actions", type=Path, required=True, help=".npy, or .npz with an 'actions' array (N, 14)")
    r.add_argument("--out", type=Path, required=True, help="output .mp4 (views side by side)")
    r.add_argument("--size", type=int, default=256, help="square model resolution in pixels (default 256)")
    r.add_argument("--steps", type=int, default=35, help="sampler steps (default 35)")
    r.add_argument("--seed", type=int, default=0, help="seed of chunk 0; chunk k uses seed + k")
    r.add_argument("--fps", type=float, default=10.0, help="output frame rate (default 10)")
    r.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    r.add_argument("--dtype", choices=sorted(DTYPES), default="bf16", help="net and VAE dtype")
    r.add_argument("--allow-nonfinite", action="store_true", help="load weights holding NaN/Inf (refused by default)")
    r.set_defaults(func=cmd_rollout)

    for name in MODEL_COMMAND_MODULES:
        importlib.import_module(name).register_model_command(sub)


# ---------------------------------------------------------------------------------- inspect
def _read_state(path: Path) -> tuple[dict[str, torch.Tensor], str]:
    """Tensors of a checkpoint as stored: inspection reports dtypes and values, it refuses neither."""
    from a2world.checkpoint import WEIGHTS_FILE, strip_prefix
    from a2world.load_checks import read_safetensors_file, read_torch_file, tensor_dict

    if path.is_dir():
        return read_safetensors_file(path / WEIGHTS_FILE, "A2World weights file")[1], "a2world safetensors"
    return strip_prefix(tensor_dict(path, read_torch_file(path, "A2World checkpoint"))), "reference .pt"


def inspect_checkpoint(path: Path) -> dict[str, Any]:
    """Facts about a checkpoint, with its keys checked against the layout it should have."""
    from a2world.checkpoint import CONFIG_FILE, compare_keys, model_layout, read_dit_config
    from a2world.dit import build_dit
    from a2world.release_layout import detect_variant, released_layout

    state, fmt = _read_state(path)
    variant = detect_variant(list(state))
    if path.is_dir():
        expected = model_layout(build_dit(read_dit_config(path / CONFIG_FILE), "meta"))
        against = "its config.json"
    else:
        expected = released_layout(variant)
        against = f"released {variant} layout"
    report = compare_keys(state, expected)
    buffers = {k for k in state if k.startswith("pos_embedder_options.")}
    return {
        "path": str(path),
        "format": fmt,
        "variant": variant,
        "model": "A2World-sim" if variant == "sim" else "A2World",
        "keys": len(state),
        "parameters": int(sum(v.numel() for k, v in state.items() if k not in buffers)),
        "buffer_elements": int(sum(state[k].numel() for k in buffers)),
        "dtypes": dict(Counter(str(v.dtype).replace("torch.", "") for v in state.values())),
        "checked_against": against,
        "layout_ok": report.ok,
        "layout_report": report.describe(),
    }


def cmd_inspect(args: argparse.Namespace) -> int:
    try:
        info = inspect_checkpoint(args.checkpoint)
    except ValueError as err:
        print(f"error: {err}")
        return 2
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for k, v in info.items():
            print(f"{k:16s} {v}")
    return 0 if info["layout_ok"] else 1


# ---------------------------------------------------------------------------------- rollout
def read_image(path: Path, size: int) -> np.ndarray:
    """RGB uint8 (size, size, 3), resized with an area filter (the reference uses cv2.INTER_AREA)."""
    import av

    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        frame = frame.reformat(width=size, height=size, format="rgb24", interpolation="AREA")
        return frame.to_ndarray()


def read_actions(path: Path) -> np.ndarray:
    if path.suffix == ".npz":
        with np.load(path) as data:
            if "actions" not in data:
                raise ValueError(f"{path}: no 'actions' array (found {sorted(data.files)})")
            actions = data["actions"]
    elif path.suffix == ".npy":
        actions = np.load(path)
    else:
        raise ValueError(f"{path}: actions must be a .npy or .npz file")
    actions = np.asarray(actions, dtype=np.float32)
    if actions.ndim == 3 and actions.shape[1:] == (2, 7):
        actions = actions.reshape(len(actions), 14)  # (T, arm, 7) -> 14-D dual-arm rows
    if actions.ndim != 2 or actions.shape[1] != 14:
        raise ValueError(f"{path}: actions must be (N, 14), got {actions.shape}")
    return actions


def write_mp4(video: np.ndarray, path: Path, fps: float) -> None:
    """video (V, T, H, W, 3) uint8 -> mp4 with the views side by side."""
    from fractions import Fraction

    import av

    frames = np.concatenate(list(video), axis=2)  # (T, H, V·W, 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _load_tokenizer(spec: str, device: str, dtype: torch.dtype, allow_nonfinite: bool = False) -> Any:
    from a2world.tokenizer import WanTokenizer

    if spec == "tiny":
        return WanTokenizer.tiny(seed=0, device=device, dtype=torch.float32)
    return WanTokenizer.from_checkpoint(spec, dtype=dtype, device=device, allow_nonfinite=allow_nonfinite)


def cmd_rollout(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from a2world.checkpoint import load_any
    from a2world.rollout import RolloutConfig, WorldModelRollout
    from a2world.sampler import SamplerConfig

    if len(args.images) != len(args.view_ids):
        print(f"error: {len(args.images)} images but {len(args.view_ids)} view ids")
        return 2
    try:
        dtype = DTYPES[args.dtype]
        net = load_any(args.checkpoint, device=args.device, dtype=dtype, allow_nonfinite=args.allow_nonfinite)
        tokenizer = _load_tokenizer(args.tokenizer, args.device, dtype, args.allow_nonfinite)
        images = [read_image(p, args.size) for p in args.images]
        actions = read_actions(args.actions)
        roll = WorldModelRollout(
            net, tokenizer, RolloutConfig(sampler=SamplerConfig(num_steps=args.steps), seed=args.seed)
        )
        n_chunks = len(actions) // net.config.action_chunk
        with tqdm(total=n_chunks, unit="chunk", desc="rollout") as bar:
            video = roll.run(images, args.view_ids, actions, on_chunk=lambda k, n: bar.update(1))
    except ValueError as err:
        print(f"error: {err}")
        return 2
    write_mp4(video, args.out, args.fps)
    print(f"wrote {args.out}: {video.shape[1]} frames × {video.shape[0]} views at {args.fps:g} fps")
    return 0
