"""`a2w dataset info|validate|export-video DIR`: look at, check and watch a recorded dataset."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dataset", help="inspect, validate or export a recorded LeRobot v3 dataset",
                       description="Work with a dataset the recorder wrote (LeRobot v3.0 layout).")
    dsub = p.add_subparsers(dest="dataset_command", metavar="ACTION", required=True)
    info = dsub.add_parser("info", help="episodes, frames, size, tasks, stalls and encoder waits")
    info.add_argument("root", type=Path)
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=_info)
    val = dsub.add_parser("validate", help="check the recorder's invariants; non-zero exit names the "
                                           "offending episode and row")
    val.add_argument("root", type=Path)
    val.set_defaults(func=_validate)
    ex = dsub.add_parser("export-video", help="write one episode's views side by side to an mp4")
    ex.add_argument("root", type=Path)
    ex.add_argument("--episode", type=int, default=0, help="episode index (default 0)")
    ex.add_argument("--out", type=Path, default=None, help="output mp4 (default episode_N.mp4)")
    ex.set_defaults(func=_export)


def _info(args: argparse.Namespace) -> int:
    from a2w.dataset import DatasetReadError, summary

    try:
        s = summary(args.root)
    except DatasetReadError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    if args.json:
        print(json.dumps(s, indent=2))  # noqa: T201 - the command's output
        return 0
    lines = [
        f"{s['root']}: LeRobot {s['codebase_version']}, {s['fps']} fps, robot {s['robot_type']}",
        f"  episodes {s['episodes']}, frames {s['frames']} ({s['seconds']:.1f} s)",
        f"  cameras {', '.join(s['cameras'])} at {s['image_size'][1]}x{s['image_size'][0]}"
        if s["image_size"] else "  no cameras",
        f"  size {s['bytes'] / 1e6:.1f} MB ({s['bytes_per_episode'] / 1e6:.2f} MB per episode)",
        f"  tasks: {'; '.join(s['tasks'])}",
        f"  stalled frames {s['stalled_frames']}, refused rows {s['refused_rows']}, "
        f"encoder waits {s['encoder_waits']}",
        f"  seeds: {s['seeds']}",
    ]
    print("\n".join(lines))  # noqa: T201 - the command's output
    return 0


def _validate(args: argparse.Namespace) -> int:
    from a2w.dataset import validate

    problems = validate(args.root)
    for p in problems:
        sys.stderr.write(f"{args.root}: {p}\n")
    if problems:
        sys.stderr.write(f"{args.root}: INVALID ({len(problems)} problem(s))\n")
        return 1
    print(f"{args.root}: valid")  # noqa: T201 - the command's output
    return 0


def _export(args: argparse.Namespace) -> int:
    import av

    from a2w.dataset import Dataset, DatasetReadError

    try:
        ds = Dataset(args.root)
        ep = next(e for e in ds.episodes if e["episode_index"] == args.episode)
    except DatasetReadError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    except StopIteration:
        sys.stderr.write(f"{args.root}: no episode {args.episode} ({len(ds.episodes)} episodes)\n")
        return 2
    out = args.out or Path(f"episode_{args.episode}.mp4")
    streams = [ds.frames(ep, k) for k in ds.video_keys]
    with av.open(str(out), mode="w") as c:
        s = None
        n = 0
        for tiles in zip(*streams):
            img = np.concatenate(tiles, axis=1)
            if s is None:
                s = c.add_stream("libx264", rate=Fraction(ds.fps))
                s.width, s.height, s.pix_fmt = img.shape[1], img.shape[0], "yuv420p"
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pkt)
            n += 1
        if s is not None:
            for pkt in s.encode():
                c.mux(pkt)
    print(f"episode {args.episode}: {n} frames of {', '.join(ds.video_keys)} -> {out}")  # noqa: T201
    return 0
