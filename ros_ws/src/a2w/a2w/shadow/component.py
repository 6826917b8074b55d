"""The shadow node: A2World-sim re-predicts what the cameras saw from the motion the arms executed,
and the divergence from the real frames is scored and judged against calibrated thresholds.

Every 0.1 s of the node's clock it takes a keyframe (assembled ``settle`` later, once its frames are
in, as the recorder does): the three views paired by stamp (resized to the model's size) and the
measured TCP poses on the 30 Hz grid since the last one. Twenty keyframes make a
window (2 s, one A2World-sim chunk), and one ends at every keyframe. On a worker thread, at most every
``stride`` keyframes (back-to-back windows at 20, overlapping ones below), the newest window is judged:
the model predicts its 20 frames per view from its first keyframe, the executed actions (30 Hz deltas composed
to 10 Hz, ``a2w.shadow.motion``) and the history of real frames so far; each view's prediction is
compared with the real frames (``a2w.shadow.scores``: SSIM, latent distance, and how long a view stood
bit-still while the arms moved, a frozen camera); the worst view's score feeds the alarm
(``a2w.shadow.alarm``); a ``ShadowReport`` goes out with the lag behind real time.

It never delays anyone: it only listens. The windows it does not predict (not due, or passed over
while the worker was busy) still extend the history (real frames, executed actions, each keyframe
once), and the one it predicts is always the newest, so its lag is one prediction time plus the
settle, whatever the stride. A window with a view missing scores inf for that view (not nominal).

That is the "behind" prediction (issue 18 item 2(b)): it needs no policy (teleop, another stack's
policy). With ``ahead`` on, the node also predicts "ahead" (item 2(a)): each ``ActionChunk`` the policy
publishes on /policy/chunk is rolled out before it is executed, from the paired frames nearest its
``obs_stamp``, its plan composed like the executed motion (pose at the observation, then its targets
on the 30 Hz grid from there, three at a time; a chunk shorter than 2 s holds its last target), and
the history as it stood at ``obs_stamp`` (read, never appended to: the history holds only real frames
and executed actions). The 20 frames per view go out on /shadow/ahead/<view>/color/image_raw stamped
with the times they predict, ``obs_stamp`` + 0.1 s ... + 2 s, before those times come when the model
is fast enough (the lead time, first predicted stamp minus the clock at publish, is in diagnostics;
negative on a machine too slow for it). Once the real frames of those times are in, they are scored
like a behind window and a ``ShadowReport`` (``window`` = the chunk's seq, level 0: the thresholds are
calibrated on behind predictions, and an ahead score also holds the plan's own error) goes to
/shadow/ahead_report. Ahead predictions go first on the worker (they are worthless once their times
have passed) but alternate with waiting behind windows, so neither starves; a newer chunk replaces an
older one not yet started, one whose 2 s have passed before its turn is skipped; a malformed chunk, one
from the future, one older than ``ahead_max_age`` or than the history, or one whose seq does not
increase (a lower seq 2 s or more after the last chunk is a restarted policy, and accepted) is refused
and counted by kind.

Separating the executor from the world: for each ahead window the node measures the drift, the mean
TCP position distance (mm, both arms, the 20 predicted times) between the plan and the poses the arms
reached (diagnostics ``ahead_drift_mm_*``, logged with each ahead score). Read the three together:
a large drift says the executor did not follow the plan (ahead score high, behind score can be low,
since behind re-predicts from what was executed); a small drift with a high behind score says the
world surprised the model (a camera, an object, a collision), whatever the plan was.

At shutdown the node logs its verdict over the whole run (``a2w.shadow.summary``): reports, worst
level, alarms, lag. With ``optional`` a checkpoint directory that does not exist leaves the node idle
with a warning (the demo's default checkpoint, before one is trained) instead of failing the launch.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from a2w.actions import rig_pose
from a2w.arms.component import STATE_TOPIC
from a2w.cameras.pairing import FramePairer
from a2w.frames import optical_frame
from a2w.host.component import Component, NodeHandle
from a2w.host.params import Params, param
from a2w.host.qos import QoS
from a2w.msgs.arms import RigState
from a2w.msgs.cameras import VIEW_IDS, VIEW_NAMES, CameraFrame
from a2w.msgs.diagnostics import DiagnosticLevel
from a2w.msgs.policy import ActionChunk
from a2w.msgs.shadow import ShadowReport
from a2w.policy.topics import CHUNK_TOPIC
from a2w.shadow.alarm import AlarmState, Level, Thresholds
from a2w.shadow.motion import CHUNK, COMPOSE, KEYFRAME_PERIOD, RATE_HZ, actions_10hz, grid_poses, planned_poses
from a2w.shadow.predictor import FREEZE_WEIGHT, STRIDE, Keyframe, ShadowPredictor, Window, load_rollout
from a2w.shadow.scores import overall
from a2w.shadow.summary import ShadowSummary

REPORT_TOPIC = "/shadow/report"
AHEAD_REPORT_TOPIC = "/shadow/ahead_report"
PREDICTED_PREFIX = "/shadow/predicted"  # <prefix>/<view>/color/image_raw, as the cameras' and the policy's
AHEAD_PREFIX = "/shadow/ahead"


def predicted_topic(view: str) -> str:
    """Where the shadow's re-predicted frames of ``view`` go, each stamped with the time it predicts."""
    return f"{PREDICTED_PREFIX}/{view}/color/image_raw"


def ahead_topic(view: str) -> str:
    """Where the frames of ``view`` predicted from the policy's plan go, before the times they predict."""
    return f"{AHEAD_PREFIX}/{view}/color/image_raw"


THRESHOLDS_FILE = "shadow_thresholds.json"


@dataclass
class ShadowNodeParams(Params):
    checkpoint: str = param("", "A2World-sim checkpoint directory (model, config.json, tokenizer.safetensors)")
    optional: bool = param(False, "a checkpoint directory that does not exist only logs a warning and leaves the node "
                           "idle (the demo's default, which may not be trained yet); else it is an error")
    thresholds: str = param("", f"calibrated thresholds ('' = <checkpoint>/{THRESHOLDS_FILE} if present; without, "
                                "scores are reported and the level stays OK)")
    views: list[str] = param(list(VIEW_NAMES), "camera views (release ids: left_wrist 0, right_wrist 1, front 2)")
    image_size: list[int] = param([64, 64], "model input [H, W] (what the checkpoint was trained at)")
    steps: int = param(8, "sampling steps per window", low=1, high=1000)
    stride: int = param(STRIDE, "keyframes (0.1 s each) at least between the starts of two predicted windows: "
                        "20 = back-to-back 2 s windows; fewer overlaps them, so a fault is judged sooner, at up to "
                        "20/stride times the compute. A window ends at every keyframe, and a worker slower than the "
                        "stride takes the newest, so its lag stays one prediction time", low=1, high=CHUNK)
    seed: int = param(0, "sampling seed; window k uses seed + k", low=0)
    threads: int = param(0, "torch threads (0 = torch's default; process-wide)", low=0, high=256)
    device: str = param("cpu", "torch device")
    latent_weight: float = param(1.0, "weight of the latent distance against 1 - SSIM", low=0.0, high=1e6)
    freeze_weight: float = param(FREEZE_WEIGHT, "score per second of a view standing bit-still while the arms "
                                 "move (a frozen camera; 0 = off)", low=0.0, high=1e6)
    camera_prefix: str = param("/cameras", "camera topics are <prefix>/<view>/color/image_raw")
    max_spread: float = param(0.016, "largest spread of paired view stamps (s)", low=0.0, high=1.0)
    max_frame_age: float = param(0.1, "a keyframe's views must be this close to its time (s; a camera that drops a "
                                      "frame under load is still paired, one that stops is not)", low=0.001, high=1.0)
    # One window is 2 s of motion: a second window above the threshold before alarming would put the
    # detection 2 s later; the level still needs `alarm_leave` windows below to clear (hysteresis).
    publish_frames: bool = param(True, "publish each window's 20 predicted frames per view on "
                                 f"{PREDICTED_PREFIX}/<view>/color/image_raw (stamped with the times they predict)")
    alarm_enter: int = param(1, "consecutive windows above a level's threshold to enter it", low=1, high=100)
    alarm_leave: int = param(3, "consecutive windows below 0.8 of the level's threshold to leave it", low=1, high=100)
    max_history: float = param(600.0, "history kept for A2World-sim (s of motion); past it the history starts "
                               "again from the next window, bounding memory (0 = the whole run, as the release)",
                               low=0.0, high=86400.0)
    settle: float = param(0.2, "a keyframe is assembled this long after its time, once its frames are in (s)",
                          low=0.0, high=2.0)
    ahead: bool = param(False, "also predict ahead: roll out each chunk on /policy/chunk before it is executed "
                        "(off by default: on 2 CPU cores the behind prediction alone uses the budget)")
    ahead_max_age: float = param(1.0, "ahead: a chunk whose observation is older than this on arrival is refused; "
                                 "the frame pairer keeps this much more of each view (s, at 30 fps)",
                                 low=0.05, high=10.0)


@dataclass
class AheadJob:
    """A policy chunk to roll out: its start frames, 20 planned 10 Hz actions and the times they reach."""

    seq: int
    obs_stamp: float
    start: dict[str, np.ndarray]  # view -> the model's size
    actions: np.ndarray  # (20, 14)
    stamps: np.ndarray  # (20,) obs_stamp + 0.1 k
    planned: np.ndarray  # (20, 2, 8) the plan's poses at those times


@dataclass
class AheadWindow:
    """An accepted chunk's window: the real frames of its times are paired as they come (from acceptance
    on, however late the prediction), then it is scored once its prediction is in."""

    job: AheadJob
    real: list[dict[str, np.ndarray] | None]
    clips: np.ndarray | None = None  # (V, 21, H, W, 3) once predicted
    lead: float = math.nan  # first predicted stamp minus the clock when the frames went out
    drift_mm: float = math.nan


class ShadowNode(Component):
    Params = ShadowNodeParams

    def __init__(self, node: NodeHandle, params: ShadowNodeParams) -> None:
        super().__init__(node, params)
        self.summary = ShadowSummary()  # every report, for the verdict logged at shutdown
        self.off = ""
        if params.optional and params.checkpoint and not Path(params.checkpoint).expanduser().is_dir():
            self.off = f"no A2World-sim checkpoint at {params.checkpoint}"
            self.log.warning("shadow off for this run: %s (train one: docs/training.md, or pass shadow:=DIR)",
                             params.checkpoint)
            return  # idle: no subscriptions, no worker, no model
        unknown = [v for v in params.views if v not in VIEW_IDS]
        if unknown or not params.views:
            raise ValueError(f"views: {unknown or '[]'} are not rig views {sorted(VIEW_IDS)}")
        if len(params.image_size) != 2:
            raise ValueError(f"image_size: [H, W] expected, got {params.image_size}")
        self.views = tuple(params.views)
        self.view_ids = tuple(VIEW_IDS[v] for v in self.views)
        self.size = (int(params.image_size[0]), int(params.image_size[1]))
        self.rollout, self.thresholds = self._load(params)
        self.predictor = ShadowPredictor(self.rollout, self.views, self.view_ids, params.latent_weight, params.seed,
                                         int(params.max_history * RATE_HZ / COMPOSE), params.freeze_weight)
        self.alarm = (AlarmState(self.thresholds, params.alarm_enter, params.alarm_leave) if self.thresholds
                      else None)
        # An ahead prediction starts from the frames at its chunk's observation, which arrives an inference later.
        buffer = 8 + (math.ceil(params.ahead_max_age * RATE_HZ) if params.ahead else 0)
        self.pairer = FramePairer(self.views, max_spread=params.max_spread, max_age=params.max_frame_age,
                                  buffer=buffer)
        self._states: deque[tuple[float, np.ndarray]] = deque(maxlen=600)  # (stamp, (2, 8)) ~6 s at 100 Hz
        self._keys: list[Keyframe] = []
        self._next_key: float | None = None
        self._windows = 0
        self._last_predicted: int | None = None  # index of the last window the worker predicted
        self.unformed = 0  # windows without measured poses at their start
        self._jobs: queue.Queue[Window] = queue.Queue()
        self.reports: deque[ShadowReport] = deque(maxlen=100)
        self.predicted = self.skipped = self.failed = 0
        self.lags: deque[float] = deque(maxlen=100)
        self.last_error = ""
        self.frozen_events = 0  # windows with a view standing still while the arms moved (a frozen camera)
        self.last_frozen = ""
        self.unpaired = 0  # keyframes without a full set of views (their windows score inf)
        self.last_unpaired = ""
        self._wake = threading.Event()  # the worker waits on it for any job
        # ahead: the newest chunk not yet started (guarded), the accepted windows waiting for their real
        # frames or their prediction (executor only) and those ready to score (worker)
        self._ahead_lock = threading.Lock()
        self._ahead_job: AheadJob | None = None
        self._ahead_waiting: list[AheadWindow] = []
        self._ahead_scoring: queue.Queue[AheadWindow] = queue.Queue()
        self._last_chunk: tuple[int, float] | None = None  # (seq, obs_stamp) of the last accepted chunk
        self.ahead_unpaired = 0  # predicted times without a full set of real views (their views score inf)
        self.ahead_made = self.ahead_superseded = self.ahead_late = self.ahead_failed = 0
        self.ahead_refused: dict[str, int] = {}
        self.ahead_last_refusal = ""
        self.ahead_leads: deque[float] = deque(maxlen=100)
        # (report, drift from the plan in mm, lead time in s): the report message has no field for either
        self.ahead_reports: deque[tuple[ShadowReport, float, float]] = deque(maxlen=100)

        self.report_pub = node.create_publisher(REPORT_TOPIC, ShadowReport, QoS.reliable(20))
        self.frame_pubs = {v: node.create_publisher(predicted_topic(v), CameraFrame, QoS.reliable(CHUNK * 2))
                           for v in self.views} if params.publish_frames else {}
        self.frames_published = 0
        if params.ahead:
            self.ahead_report_pub = node.create_publisher(AHEAD_REPORT_TOPIC, ShadowReport, QoS.reliable(20))
            self.ahead_pubs = {v: node.create_publisher(ahead_topic(v), CameraFrame, QoS.reliable(CHUNK * 2))
                               for v in self.views} if params.publish_frames else {}
            node.create_subscription(CHUNK_TOPIC, ActionChunk, self._on_chunk, QoS.reliable(5))
        node.create_subscription(STATE_TOPIC, RigState, self._on_state, QoS.sensor())
        prefix = params.camera_prefix.rstrip("/")
        for v in self.views:
            node.create_subscription(f"{prefix}/{v}/color/image_raw", CameraFrame, self.pairer.add, QoS.sensor())
        node.start_worker("shadow", self._work)
        node.create_timer(KEYFRAME_PERIOD / COMPOSE, self._tick)  # 30 Hz: keyframes fall on the pose grid

    def _load(self, p: ShadowNodeParams) -> tuple[Any, Thresholds | None]:
        if not p.checkpoint:
            raise ValueError("checkpoint: an A2World-sim checkpoint directory is required")
        import torch

        if p.threads:
            torch.set_num_threads(p.threads)
        rollout = load_rollout(p.checkpoint, self.size, p.steps, p.seed, p.device)
        path = Path(p.thresholds) if p.thresholds else Path(p.checkpoint).expanduser() / THRESHOLDS_FILE
        thresholds = Thresholds.load(path) if (p.thresholds or path.exists()) else None
        if thresholds is None:
            self.log.warning("no calibrated thresholds (%s): reporting scores, level stays OK; run a2w shadow "
                             "calibrate", path)
        return rollout, thresholds

    # -- executor: keyframes and windows ---------------------------------------------------------
    def _on_state(self, state: RigState) -> None:
        if self._states and state.stamp <= self._states[-1][0]:
            if state.stamp < self._states[-1][0]:
                self._states.clear()  # the clock went back: a new timeline
            else:
                return
        self._states.append((state.stamp, rig_pose(state)))

    def _tick(self) -> None:
        now = self.node.clock.now()
        if not self._states:
            return
        if self._next_key is None:
            self._next_key = now
        if self._ahead_waiting:
            self._collect_ahead(now)
        if now + 1e-9 < self._next_key + self.params.settle:
            return  # frames of a time arrive after it (rendering, transport): assemble it later
        t = self._next_key
        self._next_key = t + KEYFRAME_PERIOD
        got = self.pairer.pair(target=t)
        frames = sources = None
        note = ""
        if got.ok:
            frames = {v: self._resize(got.observation.frames[v].image) for v in self.views}
            sources = {v: got.observation.frames[v].stamp for v in self.views}
        else:
            note = str(got)
            if not self._keys:
                return  # a window starts on a full set of views (not before the cameras are up)
            self.unpaired += 1
            self.last_unpaired = f"{t:.3f}: {note}"
        self._keys.append(Keyframe(t, frames, note, sources))
        if len(self._keys) == CHUNK + 1:
            self._emit_window()

    def _resize(self, img: np.ndarray) -> np.ndarray:
        h, w = self.size
        return img if img.shape[:2] == (h, w) else cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)

    def _emit_window(self) -> None:
        # A window ends at every keyframe (``Window.index`` counts keyframes); the worker predicts one every
        # ``stride`` at most and otherwise only extends the history with it (``_work``).
        keys, self._keys = self._keys, self._keys[1:]
        times = keys[0].stamp + np.arange(CHUNK * COMPOSE + 1) / RATE_HZ
        stamps = np.array([s for s, _ in self._states])
        poses = np.array([p for _, p in self._states])
        try:
            actions = actions_10hz(grid_poses(stamps, poses, times))
        except ValueError as exc:
            self.unformed += 1
            self.log.log(logging.WARNING if self.unformed == 1 else logging.DEBUG, "window %d not formed: %s",
                         self._windows, exc)
            self._windows += 1
            return
        self._jobs.put(Window(self._windows, keys, actions, advance=1))
        self._wake.set()
        self._windows += 1

    # -- executor: ahead --------------------------------------------------------------------------
    def _refuse(self, kind: str, why: str) -> None:
        self.ahead_refused[kind] = self.ahead_refused.get(kind, 0) + 1
        self.ahead_last_refusal = f"{kind}: {why}"
        # the first of each kind is a warning; the rest are counted in diagnostics (a chunk a second)
        self.log.log(logging.WARNING if self.ahead_refused[kind] == 1 else logging.DEBUG,
                     "chunk refused for the ahead prediction: %s: %s", kind, why)

    def _on_chunk(self, chunk: ActionChunk) -> None:
        now = self.node.clock.now()
        obs = chunk.obs_stamp
        if chunk.times[0] <= obs:  # (ActionChunk itself refuses non-finite values and unordered times)
            return self._refuse("malformed", f"chunk {chunk.seq}: first step at {chunk.times[0]:.3f} is not after "
                                f"its observation at {obs:.3f}")
        if obs > now + 1e-6:
            return self._refuse("future", f"chunk {chunk.seq} observed at {obs:.3f}, after now ({now:.3f})")
        if obs < now - self.params.ahead_max_age:
            return self._refuse("stale", f"chunk {chunk.seq} observed {now - obs:.3f} s ago "
                                f"(ahead_max_age {self.params.ahead_max_age:g} s)")
        if self._last_chunk is not None:
            seq, last_obs = self._last_chunk
            # a restarted policy node counts from 0 again: a lower seq one window after the last chunk is new
            if chunk.seq <= seq and obs < last_obs + CHUNK * KEYFRAME_PERIOD:
                return self._refuse("seq", f"chunk {chunk.seq} after chunk {seq}")
            if obs < last_obs:
                return self._refuse("stale", f"chunk {chunk.seq} observed at {obs:.3f}, before the last "
                                    f"chunk's observation ({last_obs:.3f})")
        got = self.pairer.pair(target=obs)
        if not got.ok:
            return self._refuse("unpaired", f"chunk {chunk.seq}: no frames at its observation: {got}")
        stamps = obs + np.arange(1, CHUNK + 1) * KEYFRAME_PERIOD
        try:
            grid = planned_poses(chunk, obs + np.arange(CHUNK * COMPOSE + 1) / RATE_HZ)
            actions = actions_10hz(grid)
            planned = grid[COMPOSE::COMPOSE]
        except ValueError as exc:
            return self._refuse("malformed", f"chunk {chunk.seq}: {exc}")
        self._last_chunk = (int(chunk.seq), obs)
        job = AheadJob(int(chunk.seq), obs, {v: self._resize(got.observation.frames[v].image) for v in self.views},
                       actions, stamps, planned)
        with self._ahead_lock:
            old, self._ahead_job = self._ahead_job, job
        if old is not None:
            self.ahead_superseded += 1  # the newest plan is the one that will be executed
            self._drop_ahead(old)
        if len(self._ahead_waiting) >= 8:  # more chunks than the worker can take: keep the newest
            self._ahead_waiting.pop(0)
        self._ahead_waiting.append(AheadWindow(job, []))
        self._wake.set()

    def _drop_ahead(self, job: AheadJob) -> None:
        """Forget a window that will not be predicted (superseded, late, failed, refused)."""
        self._ahead_waiting = [w for w in self._ahead_waiting if w.job is not job]

    def _publish_ahead(self, job: AheadJob, clips: np.ndarray) -> None:
        lead = float(job.stamps[0]) - self.node.clock.now()
        self.ahead_leads.append(lead)
        for i, view in enumerate(self.views if self.ahead_pubs else ()):
            for stamp, image in zip(job.stamps, clips[i, 1:]):
                self.ahead_pubs[view].publish(CameraFrame(view, np.ascontiguousarray(image), float(stamp),
                                                          frame_id=optical_frame(view)))
        for win in self._ahead_waiting:
            if win.job is job:
                win.clips, win.lead = clips, lead
                self._collect_ahead(self.node.clock.now())  # its real frames may all be in already
                break

    def _collect_ahead(self, now: float) -> None:
        """Pair the real frames of each waiting ahead window's times as they come in (as keyframes)."""
        for win in list(self._ahead_waiting):
            stamps = win.job.stamps
            while len(win.real) < CHUNK and stamps[len(win.real)] + self.params.settle <= now + 1e-9:
                got = self.pairer.pair(target=float(stamps[len(win.real)]))
                if not got.ok:
                    self.ahead_unpaired += 1
                    self.last_unpaired = f"ahead {stamps[len(win.real)]:.3f}: {got}"
                win.real.append({v: self._resize(got.observation.frames[v].image) for v in self.views}
                                if got.ok else None)
                if len(win.real) == CHUNK:
                    win.drift_mm = self._drift_mm(win.job)
            if len(win.real) < CHUNK or win.clips is None:
                continue
            self._ahead_waiting.remove(win)
            self._ahead_scoring.put(win)
            self._wake.set()

    def _drift_mm(self, job: AheadJob) -> float:
        """Mean distance (mm, both TCPs, the 20 predicted times) between the plan and the measured poses."""
        if not self._states:
            return math.nan
        try:
            measured = grid_poses(np.array([s for s, _ in self._states]), np.array([p for _, p in self._states]),
                                  job.stamps)
        except ValueError:
            return math.nan  # the states of the window are gone (a new timeline)
        return float(np.linalg.norm(measured[:, :, :3] - job.planned[:, :, :3], axis=-1).mean() * 1e3)

    def _publish_ahead_report(self, report: ShadowReport, drift_mm: float, lead: float) -> None:
        report = ShadowReport(report.stamp, report.window, report.views, report.view_scores, report.view_ssim,
                              report.score, 0.0, 0, report.horizon, self.node.clock.now() - report.stamp)
        self.ahead_reports.append((report, drift_mm, lead))
        self.ahead_report_pub.publish(report)
        self.log.info("ahead chunk %d: score %.3f, drift %.1f mm from the plan, published %.2f s ahead",
                      report.window, report.score, drift_mm, lead)

    # -- worker: predictions ----------------------------------------------------------------------
    def _work(self) -> None:
        last_ahead = False
        while not self.node.shutdown_event.is_set():
            self._wake.clear()
            try:
                self._score_ahead(self._ahead_scoring.get_nowait())  # cheap: SSIM and one encode per view
                continue
            except queue.Empty:
                pass
            if not (last_ahead and not self._jobs.empty()):  # ahead first, but alternating with behind
                with self._ahead_lock:
                    job, self._ahead_job = self._ahead_job, None
                if job is not None:
                    self._run_ahead(job)
                    last_ahead = True
                    continue
            last_ahead = False
            try:
                win = self._jobs.get_nowait()
            except queue.Empty:
                self._wake.wait(0.1)
                continue
            # The newest window is the one to judge: the older ones only extend the history, one keyframe each.
            while True:
                try:
                    newer = self._jobs.get_nowait()
                except queue.Empty:
                    break
                self.predictor.extend(win)
                win = newer
            last, stride = self._last_predicted, self.params.stride
            if last is not None and win.index < last + stride:
                self.predictor.extend(win)  # not due: a window is predicted every `stride` keyframes at most
                continue
            if last is not None:
                self.skipped += max(0, (win.index - last) // stride - 1)  # due ones the worker was too slow for
            self._last_predicted = win.index
            try:
                report, frozen = self._predict(win)
            except Exception as exc:  # noqa: BLE001 - a model error is a report, never a crash
                self.failed += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                self.log.warning("shadow window %d failed: %s", win.index, self.last_error)
                self.predictor.extend(win)
                continue
            frames = self.predictor.last_prediction if self.frame_pubs else None
            self.node.post(lambda r=report, w=win, f=frames, z=frozen: self._publish(r, w, f, z))

    def _threads(self) -> None:
        import torch

        if self.params.threads and torch.get_num_threads() != self.params.threads:
            torch.set_num_threads(self.params.threads)  # in case the setting is per thread (OpenMP)

    def _run_ahead(self, job: AheadJob) -> None:
        if job.stamps[-1] <= self.node.clock.now():
            self.ahead_late += 1  # its 2 s are over: it can no longer be ahead
            self.node.post(lambda: self._drop_ahead(job))
            return
        try:
            history = self.predictor.history_until(job.obs_stamp)
        except ValueError as exc:
            self.node.post(lambda e=str(exc): (self._refuse("stale", f"chunk {job.seq}: {e}"), self._drop_ahead(job)))
            return
        try:
            self._threads()
            clips = self.predictor.predict(job.start, job.actions, history, self.params.seed + job.seq)
        except Exception as exc:  # noqa: BLE001 - a model error is a report, never a crash
            self.ahead_failed += 1
            self.last_error = f"ahead chunk {job.seq}: {type(exc).__name__}: {exc}"
            self.log.warning("shadow %s", self.last_error)
            self.node.post(lambda: self._drop_ahead(job))
            return
        self.ahead_made += 1
        self.node.post(lambda: self._publish_ahead(job, clips))

    def _score_ahead(self, win: AheadWindow) -> None:
        try:
            scores = self.predictor.compare(win.clips, win.real)
        except Exception as exc:  # noqa: BLE001 - a model error is a report, never a crash
            self.ahead_failed += 1
            self.last_error = f"ahead chunk {win.job.seq} scoring: {type(exc).__name__}: {exc}"
            self.log.warning("shadow %s", self.last_error)
            return
        end = float(win.job.stamps[-1])
        report = ShadowReport(end, win.job.seq, self.views, tuple(s.score for s in scores),
                              tuple(s.ssim if math.isfinite(s.ssim) else 0.0 for s in scores), overall(scores),
                              0.0, 0, horizon=CHUNK * KEYFRAME_PERIOD, lag=self.node.clock.now() - end)
        self.node.post(lambda: self._publish_ahead_report(report, win.drift_mm, win.lead))

    def _predict(self, win: Window) -> tuple[ShadowReport, dict[str, float]]:
        """The window's report and the views that stood frozen through motion (s)."""
        self._threads()
        self.predictor.last_prediction = None
        scores = self.predictor.score(win)
        self.predicted += win.keys[0].frames is not None
        end = win.keys[-1].stamp
        report = ShadowReport(end, win.index, self.views, tuple(s.score for s in scores),
                              tuple(s.ssim if math.isfinite(s.ssim) else 0.0 for s in scores), overall(scores),
                              self.thresholds.warn if self.thresholds else 0.0, 0,
                              horizon=CHUNK * KEYFRAME_PERIOD, lag=self.node.clock.now() - end)
        return report, {s.view: s.frozen for s in scores if s.frozen}

    # -- executor: reporting ----------------------------------------------------------------------
    def _publish(self, report: ShadowReport, win: Window | None = None, frames: np.ndarray | None = None,
                 frozen: dict[str, float] | None = None) -> None:
        if frames is not None and win is not None:
            for i, view in enumerate(self.views):
                for key, image in zip(win.keys[1:], frames[i, 1:]):
                    self.frame_pubs[view].publish(CameraFrame(view, np.ascontiguousarray(image), key.stamp,
                                                              frame_id=optical_frame(view)))
                    self.frames_published += 1
        if frozen:
            self.frozen_events += 1
            self.last_frozen = f"{report.stamp:.2f}: " + ", ".join(f"{v} still {t:.1f} s" for v, t in frozen.items())
        level = int(self.alarm.update(report.score)) if self.alarm is not None else 0
        if level == Level.ALARM and (not self.reports or self.reports[-1].level != Level.ALARM):
            why = f"; frozen through motion: {', '.join(f'{v} {t:.1f} s' for v, t in frozen.items())}" if frozen else ""
            self.log.error("shadow ALARM at %.2f: score %.3f > %.3f (%s)%s", report.stamp, report.score,
                           self.thresholds.alarm, ", ".join(f"{v} {s:.3f}" for v, s in
                                                            zip(report.views, report.view_scores)), why)
        report = ShadowReport(report.stamp, report.window, report.views, report.view_scores, report.view_ssim,
                              report.score, report.warn_threshold, level, report.horizon,
                              self.node.clock.now() - report.stamp)
        self.lags.append(report.lag)
        self.reports.append(report)
        self.summary.add(report)
        self.report_pub.publish(report)

    def health(self) -> tuple[DiagnosticLevel, str] | None:
        if self.off:
            return DiagnosticLevel.WARN, f"shadow off: {self.off}"
        if self.reports and self.reports[-1].level == Level.ALARM:
            return DiagnosticLevel.ERROR, f"shadow alarm: score {self.reports[-1].score:.3f}"
        if self.reports and self.reports[-1].level == Level.WARN:
            return DiagnosticLevel.WARN, f"shadow warning: score {self.reports[-1].score:.3f}"
        return None

    def diagnostics(self) -> dict[str, Any]:
        if self.off:
            return {"level": "off", "off": self.off}
        last = self.reports[-1] if self.reports else None
        out: dict[str, Any] = {
            "windows": self._windows, "predicted": self.predicted, "frames_published": self.frames_published,
            "skipped": self.skipped, "failed": self.failed,
            "calibrated": self.thresholds is not None, "history_restarts": self.predictor.restarts,
            "level": Level(last.level).name if last else "none",
            "score": round(last.score, 4) if last else "nan",
            "alarms": self.alarm.alarms if self.alarm else 0,
        }
        if self.lags:
            out["lag_max_s"] = round(max(self.lags), 3)
            out["lag_last_s"] = round(self.lags[-1], 3)
        if self.last_error:
            out["last_error"] = self.last_error
        if self.frozen_events:
            out["frozen_windows"] = self.frozen_events
            out["last_frozen"] = self.last_frozen
        if self.unpaired or self.ahead_unpaired:
            out["unpaired_keyframes"] = self.unpaired
            out["last_unpaired"] = self.last_unpaired
        if self.params.ahead:
            out.update(ahead_made=self.ahead_made, ahead_reports=len(self.ahead_reports),
                       ahead_skipped=self.ahead_superseded + self.ahead_late, ahead_superseded=self.ahead_superseded,
                       ahead_late=self.ahead_late, ahead_failed=self.ahead_failed, ahead_unpaired=self.ahead_unpaired,
                       ahead_refused=sum(self.ahead_refused.values()))
            if self.ahead_refused:
                out["ahead_refused_by"] = ",".join(f"{k}:{n}" for k, n in sorted(self.ahead_refused.items()))
                out["ahead_last_refusal"] = self.ahead_last_refusal
            if self.ahead_leads:
                out["ahead_lead_last_s"] = round(self.ahead_leads[-1], 3)
                out["ahead_lead_min_s"] = round(min(self.ahead_leads), 3)
            if self.ahead_reports:
                last, drift, _ = self.ahead_reports[-1]
                out["ahead_score"] = round(last.score, 4)
                drifts = [d for _, d, _ in self.ahead_reports if math.isfinite(d)]
                if math.isfinite(drift):
                    out["ahead_drift_mm_last"] = round(drift, 2)
                if drifts:
                    out["ahead_drift_mm_mean"] = round(float(np.mean(drifts)), 2)
        return out

    def shutdown(self) -> None:
        # The verdict is the last thing the node says (a2w.shadow.summary); `make demo` ends with it.
        if self.off:
            self.log.info("%s", self.summary.text(False, off=self.off))
            return
        self.log.info("shadow node: %s", " ".join(f"{k}={v}" for k, v in self.diagnostics().items()
                                                   if k not in ("last_error", "last_unpaired", "last_frozen",
                                                                "ahead_last_refusal")))
        self.log.info("%s", self.summary.text(self.thresholds is not None, self.skipped, self.failed))
