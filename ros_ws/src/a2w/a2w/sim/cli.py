"""`a2w sim`: run a task with its scripted expert and save an mp4 of the three views;
`a2w sim collect`: record demonstrations of a task into a LeRobot v3 dataset (``sim.collect``)."""

from __future__ import annotations

import argparse
import logging
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np

from a2w.msgs.cameras import FRONT, LEFT_WRIST, RIGHT_WRIST

log = logging.getLogger(__name__)

TILE_ORDER = (LEFT_WRIST, FRONT, RIGHT_WRIST)  # as the robot sees the table, left to right


def register(sub: argparse._SubParsersAction) -> None:
    from a2w.sim.faults import FAULT_NAMES
    from a2w.sim.tasks import TASK_NAMES

    p = sub.add_parser(
        "sim", help="run a sim task with the scripted expert and save an mp4 of the three views",
        description="Run one episode of a simulated-rig task with its scripted expert (through the "
        "same arm interface as the real rig) and write the left-wrist, front and right-wrist views "
        "side by side to an mp4. Prints whether the task succeeded.")
    p.add_argument("--task", choices=TASK_NAMES, default="lift_box", help="task (default lift_box)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random initial state")
    p.add_argument("--out", type=Path, default=Path("sim.mp4"), help="output video (default sim.mp4)")
    p.add_argument("--width", type=int, default=320, help="per-view width (max 640; default 320)")
    p.add_argument("--height", type=int, default=240, help="per-view height (max 480; default 240)")
    p.add_argument("--fps", type=float, default=30.0, help="camera rate (default 30)")
    p.add_argument("--fault", action="append", default=[], choices=FAULT_NAMES,
                   help="inject this fault at a seeded onset (repeatable)")
    p.set_defaults(func=_run)
    sub2 = p.add_subparsers(dest="sim_command", metavar="ACTION")
    c = sub2.add_parser(
        "collect", help="record scripted-expert demonstrations into a LeRobot v3 dataset",
        description="Run the task's scripted expert through the full sim stack (sim, cameras, arm "
        "node, recorder) episode after episode, saving the successful ones into DIR (created, or "
        "appended to). Each attempt uses seed SEED+attempt, recorded with its episode.")
    c.add_argument("--task", choices=TASK_NAMES, default="lift_box", help="task (default lift_box)")
    c.add_argument("--episodes", type=int, default=10, help="episodes to save (default 10)")
    c.add_argument("--out", type=Path, required=True, help="dataset directory")
    c.add_argument("--seed", type=int, default=0, help="seed of the first attempt (default 0)")
    c.add_argument("--width", type=int, default=256, help="per-view width (default 256)")
    c.add_argument("--height", type=int, default=192, help="per-view height (default 192)")
    c.add_argument("--realtime", type=float, default=1.0,
                   help="sim seconds per wall second (default 1; the recorder follows sim time)")
    c.add_argument("--max-attempts", type=int, default=None, help="give up after this many (default 2x)")
    c.set_defaults(func=_collect)


def _run(args: argparse.Namespace) -> int:
    import av
    from tqdm import tqdm

    from a2w.cameras.sim.source import SimCameraSource
    from a2w.cameras.source import CameraConfig
    from a2w.sim.episode import Episode
    from a2w.sim.faults import random_faults
    from a2w.sim.scene import SceneConfig
    from a2w.sim.tasks import get_task

    if not (0 < args.width <= 640 and 0 < args.height <= 480):
        sys.stderr.write(f"--width/--height: {args.width}x{args.height} must be within 640x480\n")
        return 2
    if args.width % 2 or args.height % 2:
        sys.stderr.write("--width/--height: must be even (H.264 with 4:2:0 chroma)\n")
        return 2
    task = get_task(args.task)
    faults = tuple(random_faults(args.seed, args.fault, task.object_name))
    ep = Episode(args.task, args.seed, scene=SceneConfig(task=args.task, max_width=args.width,
                                                          max_height=args.height), faults=faults)
    sources = []
    for view in TILE_ORDER:
        src = SimCameraSource(CameraConfig(view, width=args.width, height=args.height, fps=args.fps), ep.world)
        src.open()
        src.start()
        sources.append(src)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    container = av.open(str(args.out), mode="w")
    try:
        stream = container.add_stream("libx264", rate=Fraction(args.fps).limit_denominator(1000))
        stream.width, stream.height = args.width * len(TILE_ORDER), args.height
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "23", "preset": "veryfast"}
        last = -1
        frames = 0
        bar = tqdm(total=None, unit="sim s", desc=f"{args.task} seed {args.seed}",
                   bar_format="{desc}: {n:.2f} {unit} [{elapsed}, {rate_fmt}]")

        def on_chunk(t: float) -> None:
            nonlocal last, frames
            latest = [s.latest() for s in sources]
            if all(f is not None for f in latest) and latest[0].frame_number != last:
                last = latest[0].frame_number
                tile = np.concatenate([f.image for f in latest], axis=1)
                for packet in stream.encode(av.VideoFrame.from_ndarray(tile, format="rgb24")):
                    container.mux(packet)
                frames += 1
            bar.update(t - bar.n)

        result = ep.run(on_chunk=on_chunk, chunk_steps=max(1, int(round(1.0 / args.fps / ep.world.dt))))
        bar.close()
        for packet in stream.encode():
            container.mux(packet)
    finally:
        container.close()
        for s in sources:
            s.close()
        ep.close()
    verdict = "SUCCESS" if result.success else "FAILURE"
    print(f"{args.task} seed {args.seed}: {verdict} after {ep.world.time:.2f} s sim time; "
          f"{frames} frames of {' | '.join(TILE_ORDER)} at {args.width}x{args.height} -> {args.out}")
    for ev in result.fault_events:
        print(f"  fault {ev.name} on {ev.target} at t={ev.onset:.3f} s ({ev.detail})")
    if result.error:
        print(f"  expert stopped early: {result.error}")
    return 0 if result.success or faults else 1


def _collect(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from a2w.dataset import summary as dataset_summary
    from a2w.sim.collect import collect

    if args.episodes < 1:
        sys.stderr.write("--episodes: must be at least 1\n")
        return 2
    if not (0 < args.width <= 640 and 0 < args.height <= 480) or args.width % 2 or args.height % 2:
        sys.stderr.write(f"--width/--height: {args.width}x{args.height} must be even and within 640x480\n")
        return 2
    bar = tqdm(total=args.episodes, unit="episode", desc=f"{args.task} -> {args.out}")

    def on_result(r) -> None:  # noqa: ANN001 - sim.collect.EpisodeResult
        if r.saved:
            bar.update(1)
        bar.set_postfix_str(f"seed {r.seed}: {'saved ' + str(r.rows) + ' rows' if r.saved else 'not saved'}")
        if not r.saved:
            log.warning("attempt %d (seed %d) not saved: %s", r.attempt, r.seed, r.note)

    s = collect(args.task, args.episodes, args.out, args.seed, args.width, args.height, args.realtime,
                args.max_attempts, on_result)
    bar.close()
    saved, failed = s.saved, [r for r in s.results if not r.saved]
    rows = sum(r.rows for r in saved)
    lines = [f"{args.task}: {len(saved)} episodes saved, {len(failed)} not saved, {rows} frames "
             f"({rows / 30:.1f} s) in {s.wall_s:.0f} s wall time"]
    if saved:
        info = dataset_summary(args.out)
        lines.append(f"  dataset {args.out}: {info['episodes']} episodes, {info['frames']} frames, "
                     f"{info['bytes'] / 1e6:.1f} MB ({info['bytes_per_episode'] / 1e6:.2f} MB per episode)")
        lines.append(f"  seeds saved: {[r.seed for r in saved]}")
    for r in failed:
        lines.append(f"  seed {r.seed}: {r.note}")
    print("\n".join(lines))  # noqa: T201 - the command's summary
    return 0 if len(saved) >= args.episodes else 1
