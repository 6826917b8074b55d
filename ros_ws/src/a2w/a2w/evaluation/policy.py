"""Closed-loop evaluation of a policy checkpoint on the simulated rig, through the full stack.

Each episode runs ``launch/sim.launch.xml policy:=CHECKPOINT`` in-process: the sim, the camera node,
the arm node with every safety layer, the policy node and the task judge, exactly as ``make demo``
with a policy. One seed per episode (``seed_start + i``), which the launch file gives both the task's
initial state and the policy's sampling noise: with one sampling seed for every episode the first
chunks would all start from the same noise, and a policy that picks a mode from its noise (which arm
to use) would pick the same one every time, so the episodes would not be independent trials and the
interval would not hold. The verdict is the judge's (the task succeeded and stayed so for its settle
time, before the timeout). Seeds found in the training datasets are refused: an evaluation on training
seeds measures memory, not the policy.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from a2w.host.component import Component, NodeHandle
from a2w.host.params import Params, param
from a2w.host.qos import QoS
from a2w.msgs.cameras import CameraFrame

log = logging.getLogger(__name__)

SIM_LAUNCH = Path(__file__).resolve().parents[2] / "launch" / "sim.launch.xml"
TILE_ORDER = ("left_wrist", "front", "right_wrist")


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a success rate (95 % for z = 1.96); (0, 1) when n is 0."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def training_seeds(datasets: Iterable[Path], task: str) -> set[int]:
    """Seeds of ``task``'s episodes recorded in ``datasets`` (the recorder keeps each episode's seed, and
    as its task the instruction ``a2w sim collect`` gave, or the task name)."""
    from a2w.dataset import Dataset
    from a2w.sim.collect import INSTRUCTIONS

    names = {task, INSTRUCTIONS.get(task, task)}
    seeds: set[int] = set()
    for root in datasets:
        ds = Dataset(Path(root))
        for ep in ds.episodes:
            meta = ds.episode_meta(ep["episode_index"])
            if meta.get("seed") is not None and meta.get("task", task) in names:
                seeds.add(int(meta["seed"]))
    return seeds


@dataclass
class VideoParams(Params):
    path: str = param("", "mp4 to write")
    fps: float = param(30.0, "frame rate of the video", low=1.0, high=120.0)


class VideoSink(Component):
    """Tiles the three camera views of every front frame into an mp4, encoding on a worker thread."""

    Params = VideoParams

    def __init__(self, node: NodeHandle, params: VideoParams) -> None:
        super().__init__(node, params)
        self.latest: dict[str, CameraFrame] = {}
        self.frames = 0
        self._queue: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=60)
        for view in TILE_ORDER:
            node.create_subscription(f"/cameras/{view}/color/image_raw", CameraFrame, self._on_frame, QoS.sensor())
        node.start_worker("video", self._encode)

    def _on_frame(self, frame: CameraFrame) -> None:
        self.latest[frame.view] = frame
        if frame.view == "front" and all(v in self.latest for v in TILE_ORDER):
            tiles = [self.latest[v].image for v in TILE_ORDER]
            if len({t.shape for t in tiles}) == 1:
                try:
                    self._queue.put_nowait(np.concatenate(tiles, axis=1))
                except queue.Full:
                    pass  # the video is a record for eyes, not data: never slow the run

    def _encode(self) -> None:
        import av

        container = None
        stream = None
        try:
            while True:
                try:
                    tile = self._queue.get(timeout=0.1)
                except queue.Empty:
                    if self.node.shutdown_event.is_set():
                        break
                    continue
                if tile is None:
                    break
                if container is None:
                    Path(self.params.path).parent.mkdir(parents=True, exist_ok=True)
                    container = av.open(self.params.path, mode="w")
                    stream = container.add_stream("libx264", rate=Fraction(self.params.fps).limit_denominator(1000))
                    stream.height, stream.width = tile.shape[0] - tile.shape[0] % 2, tile.shape[1] - tile.shape[1] % 2
                    stream.pix_fmt = "yuv420p"
                    stream.options = {"crf": "26", "preset": "veryfast"}
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(tile[:stream.height, :stream.width]),
                                                   format="rgb24")
                for packet in stream.encode(frame):
                    container.mux(packet)
                self.frames += 1
        finally:
            if container is not None:
                for packet in stream.encode():
                    container.mux(packet)
                container.close()

    def shutdown(self) -> None:
        self._queue.put(None)


@dataclass
class EpisodeOutcome:
    seed: int
    success: bool
    time_to_success: float  # s of sim time from the judge's start; NaN when it failed
    sim_s: float  # sim time the episode ran
    wall_s: float
    chunks: int = 0
    stalls: int = 0
    dropped: int = 0
    faults: int = 0
    inference_p95_s: float = float("nan")
    note: str = ""
    video: str = ""
    sampling_seed: int = 0  # the policy node's seed (its chunk k samples with seed + k)


@dataclass
class PolicyEvaluation:
    checkpoint: str
    task: str
    outcomes: list[EpisodeOutcome] = field(default_factory=list)

    @property
    def successes(self) -> int:
        return sum(o.success for o in self.outcomes)

    def summary(self) -> dict[str, Any]:
        n, k = len(self.outcomes), self.successes
        lo, hi = wilson_interval(k, n)
        times = [o.time_to_success for o in self.outcomes if o.success]
        p95 = [o.inference_p95_s for o in self.outcomes if math.isfinite(o.inference_p95_s)]
        return {
            "checkpoint": self.checkpoint, "task": self.task, "episodes": n, "successes": k,
            "success_rate": k / n if n else float("nan"), "ci95": [lo, hi],
            "time_to_success_median_s": float(np.median(times)) if times else float("nan"),
            "stalls_total": sum(o.stalls for o in self.outcomes),
            "stalls_max": max((o.stalls for o in self.outcomes), default=0),
            "faults_total": sum(o.faults for o in self.outcomes),
            "inference_p95_s_max": max(p95) if p95 else float("nan"),
            "seeds": [o.seed for o in self.outcomes],
        }

    def to_json(self) -> dict[str, Any]:
        return {"summary": self.summary(), "episodes": [asdict(o) for o in self.outcomes]}


def run_episode(checkpoint: Path, task: str, seed: int, timeout: float = 60.0, realtime: float = 1.0,
                policy_params: dict[str, Any] | None = None, video: Path | None = None,
                wall_limit: float | None = None) -> EpisodeOutcome:
    """One closed-loop episode; never raises for a failed run (the outcome's note says why)."""
    from a2w.host import Host
    from a2w.host.host import NodeSpec
    from a2w.launch import LaunchRunner

    t0 = time.monotonic()
    args = {"task": task, "seed": str(seed), "realtime": str(realtime), "policy": str(checkpoint),
            "timeout": str(timeout)}
    specs = LaunchRunner().load(SIM_LAUNCH, args).nodes
    for spec in specs:
        if spec.name == "task_judge_node":
            spec.params.update(exit_when_done=False)
        elif spec.name == "policy_node":
            spec.params.update(policy_params or {})
    if video is not None:
        specs.append(NodeSpec(VideoSink, "video_sink", params={"use_sim_time": True, "path": str(video)}))
    host = Host(diagnostics_period=0)
    for spec in specs:
        host.add(spec)
    judge = host.components["/task_judge_node"]
    policy = host.components["/policy_node"]
    runner = threading.Thread(target=lambda: host.spin(install_signal_handlers=False), daemon=True)
    runner.start()
    limit = wall_limit if wall_limit is not None else 120.0 + timeout / max(min(realtime, 1.0), 0.05) * 4
    note = ""
    try:
        while judge.verdict is None:
            if host.stop_event.is_set():
                note = f"the stack stopped: {host.stop_reason or 'unknown reason'}"
                break
            if time.monotonic() - t0 > limit:
                note = f"no verdict after {limit:.0f} s of wall time"
                break
            time.sleep(0.05)
        diag = policy.diagnostics()
    finally:
        host.stop()
        runner.join(60.0)
    success = bool(judge.verdict)
    return EpisodeOutcome(
        seed=seed, success=success, time_to_success=judge.success_time if success else float("nan"),
        sim_s=judge.elapsed, wall_s=time.monotonic() - t0, chunks=int(diag["chunks"]), stalls=int(diag["stalls"]),
        dropped=int(diag["dropped_actions"]), faults=int(diag["faults"]),
        inference_p95_s=float(diag.get("inference_p95_s", float("nan"))),
        note=note or judge.outcome or str(diag.get("fault", "")), video=str(video) if video else "",
        sampling_seed=int(policy.params.seed))


def evaluate(checkpoint: Path, task: str, episodes: int, seed_start: int, timeout: float = 60.0,
             realtime: float = 1.0, policy_params: dict[str, Any] | None = None, video_dir: Path | None = None,
             on_outcome: Callable[[EpisodeOutcome], None] | None = None) -> PolicyEvaluation:
    result = PolicyEvaluation(str(checkpoint), task)
    for i in range(episodes):
        seed = seed_start + i
        video = video_dir / f"{task}_seed{seed}.mp4" if video_dir is not None else None
        out = run_episode(checkpoint, task, seed, timeout, realtime, policy_params, video)
        result.outcomes.append(out)
        if on_outcome is not None:
            on_outcome(out)
    return result


def overlapping_seeds(seeds: Sequence[int], train_seeds: set[int]) -> list[int]:
    return sorted(set(seeds) & train_seeds)
