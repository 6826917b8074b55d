"""The monitor's behaviour as a library: domain messages in, Rerun log calls out.

``MonitorLog`` has one method per message type. Each takes the message and ``now`` (the node's
clock, for what has no stamp of its own: a chunk's arrival) and logs on the timeline ``stamp``
at the message's own stamp, so the recording lines up with the rig's time (sim time under the
sim). It touches no host, topic or thread: the component feeds it from one worker thread, tests
feed it directly.

Entities (``<view>`` from ``a2w.msgs.cameras.VIEW_NAMES``, ``<arm>`` left/right):

* ``cameras/<view>/real``, ``cameras/<view>/predicted``: the camera's frame and the policy's
  prediction of that time (a prediction is logged at the time it predicts, when it arrives);
  ``cameras/<view>/diff``: |real - predicted| where both exist within ``pair_tolerance`` of each
  other, at the prediction's stamp, and ``cameras/<view>/diff_mae`` its mean (0-255);
* ``policy/chunk/{obs_age,lead,steps}``: per chunk at its arrival; ``policy/plan/<arm>/{tcp,
  gripper}``: the chunk's targets over its step times (``tcp``: x, y, z in one entity);
  ``arms/<arm>/plan``: the same positions as a 3-D line strip (arm base frame);
* ``arms/<arm>/state/{tcp,gripper,force}``, ``arms/<arm>/target/{tcp,gripper}`` (at most
  ``max_state_rate`` per second each), ``arms/<arm>/tcp`` (3-D point), ``arms/mode``;
  ``arms/status`` and ``sim/status`` as text when they change, ``sim/realtime_factor``,
  ``sim/success``; ``sim/faults`` and ``episode/events`` as text;
* ``diagnostics/<node name>/level`` and ``.../<key>`` for every value that parses as a finite number;
  ``diagnostics/<node name>`` the message as text when it changes.

A message the monitor cannot show (an image that is not HxWx3 uint8, a non-finite stamp, NaN in a
target, ...) is skipped and counted in ``skipped`` by kind and reason, never raised: the monitor
runs beside the rig and must outlive any input. Adding a message type (the shadow node's reports)
is one method here and one subscription in the component.
"""

from __future__ import annotations

import bisect
import collections
import logging
import math
from dataclasses import dataclass, field
from typing import Any, Iterable

import cv2
import numpy as np
import rerun as rr
import rerun.blueprint as rrb

from a2w.msgs.arms import ARM_NAMES, ArmsStatus, RigState, RigTarget
from a2w.msgs.cameras import CameraFrame
from a2w.msgs.diagnostics import DiagnosticStatus
from a2w.msgs.episode import EpisodeEvent
from a2w.msgs.policy import ActionChunk
from a2w.msgs.shadow import ShadowReport
from a2w.msgs.sim import FaultEvent, SimStatus

log = logging.getLogger(__name__)

TIMELINE = "stamp"
# Streams a monitor can show; the component subscribes only to the topics of the chosen ones.
STREAMS: tuple[str, ...] = ("cameras", "predicted", "diff", "policy", "shadow", "arms", "sim", "diagnostics",
                            "episode")
# A stamp above this is seconds since the epoch (wall time, after 2001); below, sim time from 0.
EPOCH_STAMP = 1e9
MAX_PENDING_PREDICTIONS = 60  # per view: three chunks of 20


def blueprint(views: Iterable[str], streams: Iterable[str]) -> rrb.Blueprint:
    """The viewer's default layout: per view the real frame, the prediction and their difference
    side by side; beside them the policy's timing, the arms, and the status texts."""
    on, views = set(streams), list(views)
    rows = []
    for v in views:
        cols = [rrb.Spatial2DView(origin=f"cameras/{v}/{what}", name=f"{v} {what}")
                for what, stream in (("real", "cameras"), ("predicted", "predicted"), ("diff", "diff"))
                if stream in on]
        if cols:
            rows.append(rrb.Horizontal(*cols))
    side = []
    if "diff" in on:
        side.append(rrb.TimeSeriesView(origin="cameras", contents=[f"cameras/{v}/diff_mae" for v in views],
                                       name="diff (mean, 0-255)"))
    if "policy" in on:
        side.append(rrb.TimeSeriesView(origin="policy", name="policy: chunks and plans"))
    if "shadow" in on:
        side.append(rrb.TimeSeriesView(origin="shadow", name="shadow: divergence and threshold"))
    if "arms" in on:
        side.append(rrb.TimeSeriesView(origin="arms", name="arms: state and targets"))
    if "diagnostics" in on:
        side.append(rrb.TimeSeriesView(origin="diagnostics", name="diagnostics"))
    side.append(rrb.TextLogView(origin="/", name="status and events"))
    main = [rrb.Vertical(*rows)] if rows else []
    return rrb.Blueprint(rrb.Horizontal(*main, rrb.Tabs(*side)), collapse_panels=False)


class Skip(ValueError):
    """A message the monitor cannot show; ``reason`` is a short key for the counters."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def _finite_stamp(stamp: Any) -> float:
    try:
        t = float(stamp)
    except (TypeError, ValueError):
        raise Skip("stamp", f"not a number: {stamp!r}") from None
    if not math.isfinite(t):
        raise Skip("stamp", f"not finite: {t}")
    return t


def _image(img: Any) -> np.ndarray:
    if not isinstance(img, np.ndarray):
        raise Skip("image_type", f"not an array: {type(img).__name__}")
    if img.dtype != np.uint8:
        raise Skip("image_dtype", f"dtype {img.dtype}, expected uint8")
    if img.ndim != 3 or img.shape[2] != 3 or img.shape[0] < 1 or img.shape[1] < 1:
        raise Skip("image_shape", f"shape {img.shape}, expected (H, W, 3)")
    return img


def _finite_array(name: str, value: Any, shape: tuple[int | None, ...]) -> np.ndarray:
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise Skip(name, "not numeric") from None
    if a.ndim != len(shape) or any(s is not None and s != n for s, n in zip(shape, a.shape)):
        raise Skip(name, f"shape {a.shape}, expected {shape}")
    if not np.all(np.isfinite(a)):
        raise Skip(name, "not finite")
    return a


def _number(text: str) -> float | None:
    """A diagnostic value as a finite number, or None (text, NaN, inf, booleans as text)."""
    try:
        v = float(text)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _path_part(name: str) -> str:
    return rr.escape_entity_path_part(name) if name else "_"


def _node_path(name: str) -> str:
    # "/camera_node/front" -> "camera_node/front": a node's statuses group under its name
    parts = [p for p in str(name).split("/") if p]
    return "/".join(_path_part(p) for p in parts) or "_"


@dataclass
class _Pending:
    stamp: float
    image: np.ndarray


@dataclass
class _ViewState:
    last_real_logged: float = -math.inf
    last_diff_logged: float = -math.inf
    # recent real frames, oldest first, for predictions that arrive after their time has passed
    history: collections.deque = field(default_factory=collections.deque)
    pending: list[_Pending] = field(default_factory=list)  # sorted by stamp, not yet paired


class MonitorLog:
    """Turns domain messages into Rerun log calls on one recording stream.

    ``views``: the camera views shown (a frame of another view is skipped); ``max_image_rate``:
    real frames per second and view at most, by stamp (0 = every frame); ``jpeg_quality``: images
    are logged JPEG-encoded at this quality (0 = raw RGB, ~0.9 MB per 640x480 frame);
    ``pair_tolerance``: a prediction and a real frame this close in time are compared;
    ``history``: seconds of real frames kept to compare predictions that arrive after their time;
    ``image_width``: images are shown (and compared) scaled down to this width (0 = as received),
    which makes encoding and differencing 4x cheaper at 320 for 640x480 cameras;
    ``max_state_rate``: arm states and targets logged per second at most, by stamp (0 = all).
    """

    def __init__(self, rec: rr.RecordingStream, views: Iterable[str], *, max_image_rate: float = 10.0,
                 jpeg_quality: int = 80, pair_tolerance: float = 0.05, history: float = 2.0,
                 image_width: int = 0, max_state_rate: float = 0.0) -> None:
        self.rec = rec
        self.views = tuple(views)
        self.min_image_period = 1.0 / max_image_rate if max_image_rate > 0 else 0.0
        self.image_width = int(image_width)
        self.min_state_period = 1.0 / max_state_rate if max_state_rate > 0 else 0.0
        self._last_state = -math.inf
        self._last_target = -math.inf
        self.jpeg_quality = int(jpeg_quality)
        self.pair_tolerance = float(pair_tolerance)
        self.history = float(history)
        self.logged: collections.Counter[str] = collections.Counter()
        self.skipped: collections.Counter[str] = collections.Counter()
        self.unpaired = 0  # predictions no real frame came near
        self.seen: set[str] = set()  # entity paths logged so far (send_columns ones aside)
        self._state = {v: _ViewState() for v in self.views}
        self._epoch: bool | None = None  # the stamp timeline's kind, fixed by the first stamp
        self._last_text: dict[str, str] = {}
        self._named: set[str] = set()

    # -- plumbing ----------------------------------------------------------------------------

    def handle(self, kind: str, msg: Any, now: float) -> bool:
        """Log ``msg`` with the method named ``kind``; False (and counted) when it was skipped."""
        try:
            getattr(self, kind)(msg, now)
            return True
        except Skip as exc:
            self._skip(kind, exc)
        except (AttributeError, TypeError, ValueError, IndexError, KeyError) as exc:
            # a message that is not what its type says (a field missing or of another type)
            self._skip(kind, Skip("malformed", f"{type(exc).__name__}: {exc}"))
        return False

    def _skip(self, kind: str, exc: Skip) -> None:
        key = f"{kind}:{exc.reason}"
        self.skipped[key] += 1
        n = self.skipped[key]
        if n in (1, 10, 100) or n % 1000 == 0:  # a bad stream must not flood the log
            log.warning("monitor skipped %s (%d so far): %s", kind, n, exc)

    def _at(self, stamp: float) -> None:
        if self._epoch is None:
            self._epoch = stamp >= EPOCH_STAMP
        if self._epoch:
            self.rec.set_time(TIMELINE, timestamp=stamp)
        else:
            self.rec.set_time(TIMELINE, duration=stamp)

    def _time_column(self, stamps: np.ndarray) -> rr.TimeColumn:
        if self._epoch is None:
            self._epoch = bool(stamps[0] >= EPOCH_STAMP)
        if self._epoch:
            return rr.TimeColumn(TIMELINE, timestamp=stamps)
        return rr.TimeColumn(TIMELINE, duration=stamps)

    def _log(self, path: str, archetype: Any) -> None:
        self.rec.log(path, archetype)
        self.logged[path.split("/", 1)[0]] += 1
        self.seen.add(path)

    def _xyz(self, path: str) -> str:
        """``path``, its three series named x, y, z (static, logged with its first values)."""
        if path not in self._named:
            self._named.add(path)
            self.rec.log(path, rr.SeriesLines(names=["x", "y", "z"]), static=True)
        return path

    def _scalar(self, path: str, value: float) -> None:
        self._log(path, rr.Scalars(float(value)))

    def _text_on_change(self, path: str, text: str, level: str = rr.TextLogLevel.INFO) -> None:
        if self._last_text.get(path) != text:
            self._last_text[path] = text
            self._log(path, rr.TextLog(text, level=level))

    def _picture(self, img: np.ndarray) -> Any:
        if self.jpeg_quality <= 0:
            return rr.Image(img, color_model="RGB")
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        if not ok:
            raise Skip("encode", "JPEG encoding failed")
        return rr.EncodedImage(contents=buf.tobytes(), media_type="image/jpeg")

    def _fit(self, img: np.ndarray) -> np.ndarray:
        w = self.image_width
        if w <= 0 or img.shape[1] <= w:
            return img
        h = max(1, round(img.shape[0] * w / img.shape[1]))
        return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)

    @staticmethod
    def _due(t: float, last: float, period: float) -> bool:
        # by stamp; a stamp that went back (a restarted clock) starts the count again
        return t - last >= period - 1e-9 or t < last

    def _view(self, frame: Any) -> tuple[str, _ViewState]:
        view = getattr(frame, "view", None)
        if view not in self._state:
            raise Skip("view", f"{view!r} is not one of {list(self.views)}")
        return view, self._state[view]

    # -- cameras and predictions -------------------------------------------------------------

    def camera_frame(self, frame: CameraFrame, now: float) -> None:
        """A real camera frame: logged at most ``max_image_rate`` per second; it also completes
        the comparison of every prediction whose time it has reached."""
        view, st = self._view(frame)
        t = _finite_stamp(frame.stamp)
        img = self._fit(_image(frame.image))
        if self._due(t, st.last_real_logged, self.min_image_period):
            st.last_real_logged = t
            self._at(t)
            self._log(f"cameras/{view}/real", self._picture(img))
        hist = st.history
        while hist and hist[-1].stamp >= t:  # a camera that restarted its stamps
            hist.pop()
        hist.append(_Pending(t, img))
        due = [p for p in st.pending if p.stamp <= t]
        if due:
            st.pending = [p for p in st.pending if p.stamp > t]
            for p in due:
                self._compare(view, st, p)
        # Keep the last two frames always (a prediction between them pairs with the nearer), older
        # ones only every pair_tolerance, so `history` seconds cost little memory.
        if len(hist) >= 3 and hist[-2].stamp - hist[-3].stamp < self.pair_tolerance:
            del hist[-2]
        while hist and hist[0].stamp < t - self.history:
            hist.popleft()

    def predicted_frame(self, frame: CameraFrame, now: float) -> None:
        """The policy's prediction of a view at ``frame.stamp``: logged at that time at once,
        compared with the real frame nearest that time once the cameras have reached it."""
        view, st = self._view(frame)
        t = _finite_stamp(frame.stamp)
        img = self._fit(_image(frame.image))
        self._at(t)
        self._log(f"cameras/{view}/predicted", self._picture(img))
        p = _Pending(t, img)
        if st.history and st.history[-1].stamp >= t:
            self._compare(view, st, p)
            return
        stamps = [q.stamp for q in st.pending]
        i = bisect.bisect_left(stamps, t)
        if i < len(stamps) and stamps[i] == t:
            st.pending[i] = p  # a newer chunk's prediction of the same time replaces the older
        else:
            st.pending.insert(i, p)
        if len(st.pending) > MAX_PENDING_PREDICTIONS:
            del st.pending[0]
            self.unpaired += 1

    def _compare(self, view: str, st: _ViewState, p: _Pending) -> None:
        best = min(st.history, key=lambda r: abs(r.stamp - p.stamp), default=None)
        if best is None or abs(best.stamp - p.stamp) > self.pair_tolerance:
            self.unpaired += 1
            return
        real, pred = best.image, p.image
        if pred.shape != real.shape:  # the model predicts at its own resolution
            pred = cv2.resize(pred, (real.shape[1], real.shape[0]), interpolation=cv2.INTER_LINEAR)
        diff = cv2.absdiff(real, pred)
        self._at(p.stamp)
        self._scalar(f"cameras/{view}/diff_mae", float(diff.mean()))
        if self._due(p.stamp, st.last_diff_logged, self.min_image_period):
            st.last_diff_logged = p.stamp
            self._log(f"cameras/{view}/diff", self._picture(diff))

    # -- the policy --------------------------------------------------------------------------

    def chunk(self, chunk: ActionChunk, now: float) -> None:
        """A planned chunk: its timing at arrival (``now``) and its targets over its step times."""
        now = _finite_stamp(now)
        obs = _finite_stamp(chunk.obs_stamp)
        times = _finite_array("times", chunk.times, (None,))
        n = times.shape[0]
        if n == 0 or (n > 1 and np.any(np.diff(times) <= 0)):
            raise Skip("times", "empty or not strictly increasing")
        targets = _finite_array("targets", chunk.targets, (n, 2, 8))
        self._at(now)
        self._scalar("policy/chunk/obs_age", now - obs)
        self._scalar("policy/chunk/lead", float(times[0]) - now)
        self._scalar("policy/chunk/steps", n)
        col = self._time_column(times)
        for a, arm in enumerate(ARM_NAMES):
            self.rec.send_columns(self._xyz(f"policy/plan/{arm}/tcp"), indexes=[col],
                                  columns=rr.Scalars.columns(scalars=targets[:, a, :3]))
            self.rec.send_columns(f"policy/plan/{arm}/gripper", indexes=[col],
                                  columns=rr.Scalars.columns(scalars=targets[:, a, 7]))
            self._log(f"arms/{arm}/plan", rr.LineStrips3D([targets[:, a, :3]]))
        self.logged["policy"] += 4

    def diagnostic(self, status: DiagnosticStatus, now: float) -> None:
        """A node's status: its level, every finite numeric value, its message when it changes."""
        t = _finite_stamp(status.stamp)
        base = f"diagnostics/{_node_path(status.name)}"
        self._at(t)
        self._scalar(f"{base}/level", int(status.level))
        for key, text in dict(status.values).items():
            v = _number(text)
            if v is not None:
                self._scalar(f"{base}/{_path_part(str(key))}", v)
        level = rr.TextLogLevel.INFO if int(status.level) == 0 else (
            rr.TextLogLevel.WARN if int(status.level) == 1 else rr.TextLogLevel.ERROR)
        self._text_on_change(base, f"[{int(status.level)}] {status.message}", level)

    # -- the arms, the sim, episodes ---------------------------------------------------------

    def rig_state(self, state: RigState, now: float) -> None:
        t = _finite_stamp(state.stamp)
        arms = []
        for arm in ARM_NAMES:
            s = getattr(state, arm)
            pos = _finite_array("position", s.tcp_pose.position, (3,))
            wrench = np.asarray(s.wrench, dtype=np.float64)
            grip = _finite_array("gripper", s.gripper_open, ())
            arms.append((arm, pos, float(grip), wrench))
        self._at(t)
        self._text_on_change("arms/mode", str(getattr(state.mode, "value", state.mode)))
        if not self._due(t, self._last_state, self.min_state_period):
            return
        self._last_state = t
        for arm, pos, grip, wrench in arms:
            self._log(self._xyz(f"arms/{arm}/state/tcp"), rr.Scalars(pos))
            self._scalar(f"arms/{arm}/state/gripper", grip)
            if wrench.shape == (6,) and np.all(np.isfinite(wrench)):
                self._scalar(f"arms/{arm}/state/force", float(np.linalg.norm(wrench[:3])))
            self._log(f"arms/{arm}/tcp", rr.Points3D([pos], radii=0.01))

    def rig_target(self, target: RigTarget, now: float) -> None:
        t = _finite_stamp(target.stamp)
        arms = []
        for arm in ARM_NAMES:
            a = getattr(target, arm)
            arms.append((arm, _finite_array("position", a.tcp_pose.position, (3,)),
                         float(_finite_array("gripper", a.gripper_open, ()))))
        if not self._due(t, self._last_target, self.min_state_period):
            return
        self._last_target = t
        self._at(t)
        for arm, pos, grip in arms:
            self._log(self._xyz(f"arms/{arm}/target/tcp"), rr.Scalars(pos))
            self._scalar(f"arms/{arm}/target/gripper", grip)

    def arms_status(self, status: ArmsStatus, now: float) -> None:
        t = _finite_stamp(status.stamp)
        self._at(t)
        text = f"{getattr(status.mode, 'value', status.mode)} / {status.motion}"
        if status.owner:
            text += f" (owner {status.owner})"
        if status.message:
            text += f": {status.message}"
        for f in status.faults:
            text += f"\nfault: {f}"
        for w in status.warnings:
            text += f"\nwarning: {w}"
        level = rr.TextLogLevel.ERROR if status.faults else (
            rr.TextLogLevel.WARN if status.warnings else rr.TextLogLevel.INFO)
        self._text_on_change("arms/status", text, level)

    def shadow_report(self, report: ShadowReport, now: float) -> None:
        """The shadow's divergence per view and overall (inf, a view it could not judge, is shown as a
        text, not a point), its WARN threshold, and the level as a text when it changes."""
        t = _finite_stamp(report.stamp)
        self._at(t)
        for view, score in zip(report.views, report.view_scores):
            if math.isfinite(score):
                self._scalar(f"shadow/{view}", float(score))
        if math.isfinite(report.score):
            self._scalar("shadow/score", float(report.score))
        if report.warn_threshold > 0:
            self._scalar("shadow/warn_threshold", float(report.warn_threshold))
        self._scalar("shadow/lag_s", float(report.lag))
        level = ("OK", "WARN", "ALARM")[int(report.level)]
        unjudged = [v for v, s in zip(report.views, report.view_scores) if not math.isfinite(s)]
        text = f"shadow {level}: score {report.score:.3f}" + (f"; no frames from {unjudged}" if unjudged else "")
        self._text_on_change("shadow/level", text, (rr.TextLogLevel.INFO, rr.TextLogLevel.WARN,
                                                    rr.TextLogLevel.ERROR)[int(report.level)])

    def sim_status(self, status: SimStatus, now: float) -> None:
        t = _finite_stamp(status.stamp)
        self._at(t)
        rtf = _number(str(status.realtime_factor))
        if rtf is not None:
            self._scalar("sim/realtime_factor", rtf)
        self._scalar("sim/success", 1.0 if status.success else 0.0)
        text = f"{status.task} seed {status.seed}: success={status.success} expert_done={status.expert_done}"
        if status.faults:
            text += f" faults={list(status.faults)}"
        self._text_on_change("sim/status", text)

    def fault_event(self, ev: FaultEvent, now: float) -> None:
        t = _finite_stamp(ev.onset)
        self._at(t)
        self._log("sim/faults", rr.TextLog(f"{ev.name} on {ev.target or '-'} {ev.detail}".rstrip(),
                                           level=rr.TextLogLevel.WARN))

    def episode_event(self, ev: EpisodeEvent, now: float) -> None:
        t = _finite_stamp(ev.stamp)
        self._at(t)
        kind = getattr(ev.kind, "value", ev.kind)
        text = f"{kind} episode {ev.episode_index}"
        if ev.task:
            text += f": {ev.task}"
        if ev.note:
            text += f" ({ev.note})"
        self._log("episode/events", rr.TextLog(text))
