"""Benchmark the recorder: three 640x480 RGB streams at 30 fps plus arm state at 100 Hz for
``--seconds`` (default 60) into ``record_node`` on the in-process host, the way a rig records.
Prints dropped frames (rows missing from the 30 Hz grid or flagged as stalled), CPU per row,
the encoder queues' high-water mark and waits, save time and MB per minute; then the same
workload through LeRobot's own ``LeRobotDataset.add_frame`` / ``save_episode`` (streaming
encoding, the mode its docs recommend, with the same H.264 settings) in its venv, run in the
same session as the baseline, and the ratios.

    .venv/bin/python bench/record.py [--seconds 60] [--lerobot-defaults]

``--lerobot-defaults`` adds a LeRobot run with its default encoder (libsvtav1, g=2, crf 30).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FPS = 30
W, H = 640, 480
VIEWS = ("left_wrist", "right_wrist", "front")
POOL = 30  # distinct frames per view, cycled (a second of motion)


def make_pool(seed: int = 0) -> dict[str, list[np.ndarray]]:
    """Camera-like frames: smooth shading, a moving bright object, sensor noise (σ≈3)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W]
    pool: dict[str, list[np.ndarray]] = {}
    for k, v in enumerate(VIEWS):
        base = np.stack([(xx * (0.2 + 0.1 * k)) % 255, (yy * 0.4) % 255, np.full_like(xx, 90 + 30 * k)], -1)
        frames = []
        for i in range(POOL):
            img = base.astype(np.float32).copy()
            cx, cy = 100 + i * 12, 200 + 40 * np.sin(i / 5)
            img[(xx - cx) ** 2 + (yy - cy) ** 2 < 45 ** 2] = (230, 200, 60)
            img += rng.normal(0, 3, img.shape)
            frames.append(np.clip(img, 0, 255).astype(np.uint8))
        pool[v] = frames
    return pool


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# -- ours ------------------------------------------------------------------------------------------

def run_ours(seconds: float, root: Path) -> dict:
    from a2w.host import Component, Host, QoS
    from a2w.host.host import NodeSpec
    from a2w.msgs.arms import ArmState, ControlMode, RigState
    from a2w.msgs.cameras import CameraFrame
    from a2w.msgs.common import Pose
    from a2w.msgs.episode import EpisodeCommand, EpisodeControlRequest
    from a2w.record.component import CONTROL_SERVICE, RecordNode

    pool = make_pool()

    class BenchRig(Component):
        """Publishes the three views at 30 fps and the arm state at 100 Hz on the wall clock."""

        def __init__(self, node, params) -> None:  # noqa: ANN001
            super().__init__(node, params)
            self.i = 0
            self.lost = 0  # capture slots the (software) cameras skipped: not the recorder's drops
            self.pubs = {v: node.create_publisher(f"/cameras/{v}/color/image_raw", CameraFrame, QoS.reliable(2))
                         for v in VIEWS}
            self.state = node.create_publisher("/arms/state", RigState, QoS.reliable(5))
            node.create_timer(1 / FPS, self._frames)
            node.create_timer(0.01, self._state)

        def _frames(self) -> None:
            # a camera stamps frames with its own clock, on its 30 fps cadence; only the delivery
            # jitters with the timer (as USB delivery does)
            # a late tick captures the slot it is in; the skipped slots are frames the camera lost
            now = self.node.clock.now()
            if self.i == 0:
                self.t0 = now
            i = int(np.floor((now - self.t0) * FPS + 1e-6))
            if self.i and i <= self.i - 1:
                return
            t = self.t0 + i / FPS
            for v in VIEWS:
                self.pubs[v].publish(CameraFrame(v, pool[v][i % POOL], t, frame_number=i))
            self.lost += i - self.i
            self.i = i + 1

        def _state(self) -> None:
            t = self.node.clock.now()
            arm = ArmState(Pose(np.array([0.3, 0.0, 0.2 + 0.05 * np.sin(t)]), np.array([0, 0, 0, 1.0])),
                           np.zeros(7), np.zeros(7), np.zeros(6), 0.5, t)
            self.state.publish(RigState(arm, arm, ControlMode.TELEOP, t))

    host = Host(diagnostics_period=0)
    rig = host.add(NodeSpec(BenchRig, "bench_rig"))
    rec: RecordNode = host.add(NodeSpec(RecordNode, "record_node", params={"root": str(root), "width": W,
                                                                             "height": H}))
    client = host.nodes[-1].create_client(CONTROL_SERVICE, EpisodeControlRequest)
    host.start()
    try:
        time.sleep(1.0)  # cameras running before the episode starts, as on a rig
        c0, t0 = cpu_s(), time.monotonic()
        client.call(EpisodeControlRequest(EpisodeCommand.START, "bench", 0))
        lost0 = rig.lost
        time.sleep(seconds)
        client.call(EpisodeControlRequest(EpisodeCommand.SAVE))
        lost = rig.lost - lost0
        t_save = time.monotonic()
        while rec.saved < 1 and rec.failed == 0 and time.monotonic() - t_save < 300:
            time.sleep(0.01)
        save_s = time.monotonic() - t_save
        cpu = cpu_s() - c0
        wall = time.monotonic() - t0
    finally:
        host.stop()
        host.shutdown()
    meta = json.loads((root / "meta/a2w/episodes/episode_000000.json").read_text())
    rows = meta["length"]
    expected = int(round(seconds * FPS))
    stalled = sum(meta["stalled_frames"].values())
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    # a slot the software cameras skipped stalls all three views of its row: that is the load
    # generator's loss, not the recorder's
    return {"rows": rows, "expected_rows": expected, "dropped": max(0, stalled - len(VIEWS) * lost),
            "stalled_flags": stalled, "camera_lost_slots": lost,
            "cpu_ms_per_row": 1e3 * cpu / max(rows, 1), "cpu_cores": cpu / wall, "save_s": save_s,
            "queue_high_water": max(e["high_water"] for e in meta["encoder"].values()),
            "queue_size": meta["encoder"][VIEWS[0]]["queue_size"], "encoder_waits": meta["encoder_waits"],
            "writer_backlog_high": rec.backlog_high, "mb_per_min": size / 1e6 / (rows / FPS / 60)}


# -- LeRobot (runs in build/lerobot-venv) ---------------------------------------------------------------

def run_lerobot(seconds: float, root: Path, defaults: bool) -> dict:
    """LeRobot's add_frame at 30 Hz from the same pool, then save_episode (this process)."""
    from lerobot.configs.video import RGBEncoderConfig
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    logging.getLogger("lerobot").setLevel(logging.ERROR)
    pool = make_pool()
    video = {"dtype": "video", "shape": [H, W, 3], "names": ["height", "width", "channels"]}
    features = {f"observation.images.{v}": dict(video) for v in VIEWS}
    features["observation.state"] = {"dtype": "float32", "shape": [16], "names": None}
    features["action"] = {"dtype": "float32", "shape": [14], "names": None}
    enc = None if defaults else RGBEncoderConfig(vcodec="h264", g=10, crf=23, preset="ultrafast")
    ds = LeRobotDataset.create("bench/lerobot", FPS, features, root=root, streaming_encoding=True, rgb_encoder=enc)
    state = np.zeros(16, np.float32)
    n = int(round(seconds * FPS))
    c0, t0 = cpu_s(), time.monotonic()
    nxt = t0
    for i in range(n):
        ds.add_frame({**{f"observation.images.{v}": pool[v][i % POOL] for v in VIEWS},
                      "observation.state": state, "action": np.zeros(14, np.float32), "task": "bench"})
        nxt += 1 / FPS
        delay = nxt - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    t_save = time.monotonic()
    ds.save_episode()
    ds.finalize()
    save_s = time.monotonic() - t_save
    cpu, wall = cpu_s() - c0, time.monotonic() - t0
    import av

    frames = []
    for v in VIEWS:
        path = next((root / "videos" / f"observation.images.{v}").rglob("*.mp4"))
        with av.open(str(path)) as c:
            frames.append(c.streams.video[0].frames or sum(1 for _ in c.demux(video=0)))
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    return {"rows": n, "expected_rows": n, "dropped": sum(n - f for f in frames), "cpu_ms_per_row": 1e3 * cpu / n,
            "cpu_cores": cpu / wall, "save_s": save_s, "mb_per_min": size / 1e6 / (n / FPS / 60),
            "codec": "libsvtav1 (LeRobot default)" if defaults else "h264 (same settings as ours)"}


def lerobot_child(seconds: float, defaults: bool) -> dict | str:
    py = ROOT / "build" / "lerobot-venv" / "bin" / "python"
    if not py.exists():
        out = subprocess.run(["bash", str(ROOT / "scripts" / "setup_lerobot_venv.sh")], capture_output=True, text=True)
        if out.returncode != 0:
            return f"no LeRobot venv: {out.stderr.strip()[-300:]}"
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(Path(d) / "hf"))
        argv = [str(py), __file__, "--lerobot-child", str(Path(d) / "ds"), "--seconds", str(seconds)]
        if defaults:
            argv.append("--lerobot-defaults")
        p = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=seconds * 20 + 600)
    if p.returncode != 0:
        return f"LeRobot run failed: {p.stderr.strip()[-1500:]}"
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--lerobot-defaults", action="store_true")
    ap.add_argument("--lerobot-child", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.lerobot_child:
        print(json.dumps(run_lerobot(a.seconds, a.lerobot_child, a.lerobot_defaults)))  # noqa: T201
        return
    logging.basicConfig(level=logging.WARNING)
    print(f"workload: 3 x {W}x{H} RGB at {FPS} fps + arm state at 100 Hz for {a.seconds:g} s "  # noqa: T201
          f"({os.cpu_count()} CPUs)")
    with tempfile.TemporaryDirectory() as d:
        ours = run_ours(a.seconds, Path(d) / "ds")
    runs = {"ours (record_node, h264 ultrafast crf 23 g 10)": ours}
    for defaults in ([False, True] if a.lerobot_defaults else [False]):
        r = lerobot_child(a.seconds, defaults)
        runs[f"LeRobot {r['codec'] if isinstance(r, dict) else ''}"] = r
    cols = ("rows", "dropped", "cpu_ms_per_row", "cpu_cores", "save_s", "mb_per_min")
    print(f"{'run':52s} " + " ".join(f"{c:>14s}" for c in cols))  # noqa: T201
    for name, r in runs.items():
        if isinstance(r, str):
            print(f"{name:52s} {r}")  # noqa: T201
            continue
        print(f"{name:52s} " + " ".join(f"{r[c]:14.2f}" if isinstance(r[c], float) else f"{r[c]:14d}"  # noqa: T201
                                         for c in cols))
    print(f"ours: encoder queue high-water {ours['queue_high_water']}/{ours['queue_size']} frames, "  # noqa: T201
          f"{ours['encoder_waits']} waits, writer backlog high-water {ours['writer_backlog_high']} rows; "
          f"{ours['stalled_flags']} stalled flags, of which {3 * ours['camera_lost_slots']} from "
          f"{ours['camera_lost_slots']} capture slots the software cameras skipped under load")
    base = next((r for n, r in runs.items() if n.startswith("LeRobot") and isinstance(r, dict)), None)
    if base:
        print(f"ratio ours / LeRobot (same codec): CPU per row {ours['cpu_ms_per_row'] / base['cpu_ms_per_row']:.2f}, "  # noqa: T201
              f"save time {ours['save_s'] / max(base['save_s'], 1e-9):.2f}, "
              f"dropped {ours['dropped']} vs {base['dropped']}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
