"""``a2w shadow eval``: the shadow's alarms against the sim's seeded faults (issue 18 item 6).

Each case is one scripted-expert episode of a task, nominal or with one fault injected at a seeded
onset (``a2w.sim.faults``). The sim renders the three views every 0.1 s of sim time through the
same camera path the camera node uses (so ``camera_freeze`` and ``camera_black`` act on the frames,
as they do live) and the measured TCP poses are read on the 30 Hz grid. The episode is then cut into
the shadow node's windows (21 keyframes 0.1 s apart, the 20 executed 10 Hz actions between them),
scored by the node's own ``ShadowPredictor`` with a fresh history, and the scores go through the node's
``AlarmState`` with the calibrated thresholds.

A fault case is detected when the level reaches ALARM at a window ending after the onset; its latency
is that window's end minus the onset (the moment the last real frame of the window exists: the live
node adds its compute lag on top, reported by the node itself). An ALARM in a nominal episode, or
before the onset in a fault episode, is a false alarm. Replaying the episode offline rather than
through the live host measures the detector, not the machine: on 2 CPU cores the live shadow skips
windows when it falls behind, which would make the table depend on the load.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import cv2
import numpy as np

from a2w.actions import rig_pose
from a2w.msgs.arms import ControlMode, RigState
from a2w.shadow.alarm import AlarmState, Level, Thresholds
from a2w.shadow.motion import CHUNK, COMPOSE, KEYFRAME_PERIOD, RATE_HZ, actions_10hz, grid_poses
from a2w.shadow.predictor import Keyframe, ShadowPredictor, Window, window_starts
from a2w.shadow.scores import overall
from a2w.sim.faults import FAULT_NAMES, FaultSpec, random_faults
from a2w.sim.world import VIEW_CAMERAS

log = logging.getLogger(__name__)

NOMINAL = "nominal"
# A fault counts for the detection rate when it changed at least 1 % of some view's pixels (by more than
# PIXEL_CHANGE of 255 in a channel, at the model's size) at some keyframe after its onset. Scripted
# episodes are deterministic, so the nominal episode of the same seed is the reference. A fault with no
# visible change (a gripper jammed after it already closed, a frozen view of a still scene) is reported
# apart: no camera monitor can see it, so it would only measure the draw of onsets.
PIXEL_CHANGE = 16
VISIBLE_CHANGE = 0.01


@dataclass
class Capture:
    """One episode as the shadow sees it: keyframes (every 0.1 s) and measured poses (30 Hz)."""

    keys: list[Keyframe]
    pose_stamps: np.ndarray  # (n,)
    poses: np.ndarray  # (n, 2, 8)
    onset: float | None  # the fault's actual onset (sim s), None when nominal or not reached
    success: bool


@dataclass
class CaseResult:
    fault: str  # a fault name or "nominal"
    seed: int
    target: str
    onset: float | None
    windows: int
    scores: list[float] = field(default_factory=list)
    levels: list[int] = field(default_factory=list)
    window_ends: list[float] = field(default_factory=list)
    detected_at: float | None = None  # end of the first window at ALARM after the onset
    false_alarm: bool = False
    raw_exceed_at: float | None = None  # end of the first window above the ALARM threshold after the onset
    # Share of pixels the fault changed (the most of any view and keyframe after the onset, against the
    # nominal episode of the same seed); None for a nominal case.
    change: float | None = None

    @property
    def visible(self) -> bool:
        """Whether the fault changed what the cameras saw (``VISIBLE_CHANGE``); a nominal case is not a fault."""
        return self.change is not None and self.change >= VISIBLE_CHANGE

    @property
    def latency(self) -> float | None:
        return None if self.detected_at is None or self.onset is None else self.detected_at - self.onset


class CopyLastFrame:
    """The baseline predictor: every future frame is the window's first (what a monitor with no world model
    compares against). It stands where a ``WorldModelRollout`` does in ``ShadowPredictor`` (latent_weight 0:
    it has no tokenizer), so the same windows and alarm logic rate it."""

    def predict_chunk(self, current: Sequence[np.ndarray], view_ids: Sequence[int], chunk: np.ndarray,
                      history: Any, seed: int) -> np.ndarray:
        return np.repeat(np.stack(current)[:, None], CHUNK + 1, axis=1)


class _Grab:
    """A camera stream of the sim world (``a2w.sim.world.FrameSink``) keeping frames at the model's size."""

    def __init__(self, view: str, render_size: tuple[int, int], model_size: tuple[int, int]) -> None:
        self.view = view
        self.camera = VIEW_CAMERAS[view]
        self.width, self.height = render_size[1], render_size[0]
        self.period = KEYFRAME_PERIOD
        self.model_size = model_size
        self.frames: list[tuple[float, np.ndarray]] = []

    def deliver(self, image: np.ndarray, stamp: float) -> None:
        h, w = self.model_size
        if image.shape[:2] != (h, w):
            image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
        self.frames.append((stamp, image))


def capture_episode(task: str, seed: int, fault: FaultSpec | None, views: Sequence[str],
                    model_size: tuple[int, int], render_size: tuple[int, int] = (96, 128),
                    hold_after: float = 4.0, max_time: float = 30.0) -> Capture:
    """Run the scripted expert for ``task``/``seed`` with ``fault`` and capture it (rendering on), then
    ``hold_after`` seconds of the rig holding still; at most ``max_time`` s of sim time in all. Frames are
    rendered at ``render_size`` (H, W; the datasets' 96x128) and resized to ``model_size`` as the node does."""
    from a2w.sim.episode import Episode
    from a2w.sim.scene import SceneConfig

    scene = SceneConfig(task=task, max_width=max(640, render_size[1]), max_height=max(480, render_size[0]))
    ep = Episode(task, seed, scene=scene, faults=(fault,) if fault else ())
    grabs = [_Grab(v, render_size, model_size) for v in views]
    stamps: list[float] = []
    poses: list[np.ndarray] = []

    def on_chunk(t: float) -> None:
        if not stamps:  # the cameras start with the motion: no keyframe before the first pose
            for g in grabs:
                ep.world.attach_camera(g)
        left, right = ep.rig.read()
        stamps.append(t)
        poses.append(rig_pose(RigState(left, right, ControlMode.IDLE, t)))
        if t > max_time:
            raise _Stop

    steps = int(round(1.0 / RATE_HZ / ep.world.dt))
    try:
        try:
            success = ep.run(on_chunk=on_chunk, chunk_steps=steps).success
        except _Stop:
            success = False
        # The rig holds its last target afterwards, as a real one does between tasks; this gives the
        # shadow windows after a late fault (a task can end 1-2 s after the onset).
        for _ in range(int(round(hold_after * RATE_HZ))):
            ep.world.step(steps)
            on_chunk(ep.world.time)
    except _Stop:
        pass
    finally:
        events = list(ep.injector.events)
        ep.close()
    by_stamp: dict[float, dict[str, np.ndarray]] = {}
    for g in grabs:
        for t, img in g.frames:
            by_stamp.setdefault(round(t, 6), {})[g.view] = img
    keys = [Keyframe(t, frames) for t, frames in sorted(by_stamp.items()) if len(frames) == len(views)]
    onset = events[0].onset if events else None
    return Capture(keys, np.asarray(stamps), np.asarray(poses), onset, success)


class _Stop(Exception):
    """The episode ran past ``max_time`` (an expert that cannot finish after a fault)."""


def capture_windows(cap: Capture, stride: int = CHUNK) -> list[Window]:
    """The node's windows over a capture: one starting every ``stride`` keyframes, 21 keyframes each,
    the executed motion between them."""
    out: list[Window] = []
    for w, start in enumerate(window_starts(len(cap.keys), stride)):
        keys = cap.keys[start:start + CHUNK + 1]
        times = keys[0].stamp + np.arange(CHUNK * COMPOSE + 1) / RATE_HZ
        try:
            poses = grid_poses(cap.pose_stamps, cap.poses, times)
        except ValueError:
            continue  # a window that starts before the first pose: not one the node would form either
        out.append(Window(w, keys, actions_10hz(poses), stride))
    return out


def visible_change(cap: Capture, reference: Capture) -> float:
    """The largest share of one view's pixels that differ by more than ``PIXEL_CHANGE`` between ``cap`` and
    the ``reference`` episode, over the keyframes at both stamps from the onset on (0 without an onset)."""
    if cap.onset is None:
        return 0.0
    ref = {round(k.stamp, 6): k.frames for k in reference.keys}
    worst = 0.0
    for k in cap.keys:
        other = ref.get(round(k.stamp, 6))
        if k.stamp < cap.onset or other is None or k.frames is None:
            continue
        for v, img in k.frames.items():
            diff = np.abs(img.astype(np.int16) - other[v].astype(np.int16)).max(axis=-1)
            worst = max(worst, float((diff > PIXEL_CHANGE).mean()))
    return worst


def judge(cap: Capture, windows: Sequence[Window], predictor: ShadowPredictor, thresholds: Thresholds,
          fault: str, seed: int, target: str, enter: int = 1, leave: int = 3,
          change: float | None = None) -> CaseResult:
    """Score every window in order and apply the node's alarm logic (its ``alarm_enter``/``alarm_leave``)."""
    alarm = AlarmState(thresholds, enter, leave)
    res = CaseResult(fault, seed, target, cap.onset, len(windows), change=change)
    for win in windows:
        score = overall(predictor.score(win))
        level = alarm.update(score)
        end = win.keys[-1].stamp
        res.scores.append(score)
        res.levels.append(int(level))
        res.window_ends.append(end)
        after_onset = cap.onset is not None and end > cap.onset
        if after_onset and res.raw_exceed_at is None and not score <= thresholds.alarm:
            res.raw_exceed_at = end
        if level is Level.ALARM:
            if after_onset and res.detected_at is None and not res.false_alarm:
                res.detected_at = end
            elif not after_onset:
                res.false_alarm = True
    return res


@dataclass
class Row:
    """One line of the table: a fault (or nominal, or all faults)."""

    name: str
    episodes: int  # visible faults (all episodes for nominal)
    detected: int
    false_alarms: int  # over every episode of the row, visible or not
    latencies: list[float]
    invisible: int = 0  # fault episodes left out: the fault changed no view (VISIBLE_CHANGE)

    @property
    def rate(self) -> float:
        return self.detected / self.episodes if self.episodes else math.nan

    def latency_q(self, q: float) -> float:
        return float(np.quantile(self.latencies, q)) if self.latencies else math.nan


def summarize(results: Sequence[CaseResult]) -> dict[str, Row]:
    """Per fault, ``all faults`` and ``nominal``: detections (TPR, over the faults that changed what the
    cameras saw) and false alarms (FPR on nominal; any fault episode's alarm before its onset counts too)."""
    rows: dict[str, Row] = {}
    faults = [r for r in results if r.fault != NOMINAL]
    for name in [n for n in FAULT_NAMES if any(r.fault == n for r in faults)] + ["all faults"]:
        every = faults if name == "all faults" else [r for r in faults if r.fault == name]
        rs = [r for r in every if r.visible]
        # an ALARM before the onset is a false alarm whether or not the fault went on to change a view
        rows[name] = Row(name, len(rs), sum(r.detected_at is not None for r in rs), sum(r.false_alarm for r in every),
                         [r.latency for r in rs if r.latency is not None], len(every) - len(rs))
    nominal = [r for r in results if r.fault == NOMINAL]
    if nominal:
        rows[NOMINAL] = Row(NOMINAL, len(nominal), 0, sum(r.false_alarm for r in nominal), [])
    return rows


def table(rows: dict[str, Row]) -> str:
    head = f"{'case':<16} {'episodes':>8} {'TPR':>6} {'FPR':>6} {'latency p50':>12} {'p90':>7} {'no change':>9}"
    lines = [head, "-" * len(head)]
    for r in rows.values():
        tpr = "" if r.name == NOMINAL else (f"{r.rate:.2f}" if r.episodes else "-")
        total = r.episodes + r.invisible
        fpr = f"{r.false_alarms / total:.2f}" if total else ""
        p50 = "" if r.name == NOMINAL else (f"{r.latency_q(0.5):.2f} s" if r.latencies else "-")
        p90 = "" if r.name == NOMINAL else (f"{r.latency_q(0.9):.2f} s" if r.latencies else "-")
        hidden = "" if r.name == NOMINAL else str(r.invisible)
        lines.append(f"{r.name:<16} {r.episodes:>8} {tpr:>6} {fpr:>6} {p50:>12} {p90:>7} {hidden:>9}")
    return "\n".join(lines)


@dataclass
class Case:
    fault: str  # a fault name or "nominal"
    seed: int
    spec: FaultSpec | None
    capture: Capture
    windows: list[Window]
    change: float | None = None  # visible_change against the nominal episode of the seed (fault cases)


def check_plan(faults: Sequence[str], episodes: int, nominal: int) -> None:
    """Refuse unknown faults and an empty or negative plan, before any episode runs."""
    for name in faults:
        if name not in FAULT_NAMES:
            raise ValueError(f"faults: unknown fault {name!r}; known: {list(FAULT_NAMES)}")
    if episodes < 0 or nominal < 0 or (episodes * len(faults) + nominal) < 1:
        raise ValueError(f"nothing to evaluate: {episodes} episode(s) per fault of {len(faults)}, {nominal} nominal")


def capture_cases(task: str, faults: Sequence[str], episodes: int, seed_start: int, nominal: int,
                  views: Sequence[str], model_size: tuple[int, int], onset_window: tuple[float, float] = (1.5, 4.0),
                  stride: int = CHUNK, progress: Callable[[str, int, int], None] | None = None) -> list[Case]:
    """``episodes`` seeds per fault (onset and target seeded by the episode's seed; an arm fault targets an
    arm the task moves), then ``nominal`` seeds. Each fault case is compared with the nominal episode of
    its seed (``visible_change``), captured as a reference when it is not one of the nominal cases."""
    from a2w.sim.tasks import get_task

    check_plan(faults, episodes, nominal)
    t = get_task(task)

    def spec(name: str, seed: int) -> FaultSpec:
        # Task.reset draws the episode with sample() first from the seed's generator: the same draw says
        # which arms this episode moves.
        arms = t.active_arms(t.sample(np.random.default_rng(seed)))
        return random_faults(seed, [name], t.object_name, onset_window, arms)[0]

    fault_seeds = list(range(seed_start, seed_start + episodes)) if faults else []
    nominal_seeds = list(range(seed_start, seed_start + nominal))
    plan: list[tuple[str, int, FaultSpec | None]] = [(NOMINAL, seed, None) for seed in nominal_seeds]
    plan += [("reference", seed, None) for seed in fault_seeds if seed not in nominal_seeds]
    plan += [(name, seed, spec(name, seed)) for name in faults for seed in fault_seeds]
    refs: dict[int, Capture] = {}
    nominals: list[Case] = []
    fault_cases: list[Case] = []
    for i, (name, seed, fault) in enumerate(plan):
        cap = capture_episode(task, seed, fault, views, model_size)
        if fault is None:
            refs[seed] = cap
        if name == NOMINAL:
            nominals.append(Case(name, seed, None, cap, capture_windows(cap, stride)))
        elif fault is not None:
            fault_cases.append(Case(name, seed, fault, cap, capture_windows(cap, stride),
                                    visible_change(cap, refs[seed])))
        if progress is not None:
            progress(f"{name} seed {seed}", i + 1, len(plan))
    return fault_cases + nominals


def nominal_scores(cases: Sequence[Case], predictor_factory: Callable[[], ShadowPredictor]) -> list[float]:
    """Every window's overall score on nominal captures (a fresh history per episode): what
    ``Thresholds.fit`` calibrates on, as ``a2w shadow calibrate`` does on recorded episodes."""
    scores: list[float] = []
    for case in cases:
        predictor = predictor_factory()
        scores += [overall(predictor.score(w)) for w in case.windows]
    return scores


def judge_cases(cases: Sequence[Case], predictor_factory: Callable[[], ShadowPredictor], thresholds: Thresholds,
                enter: int = 1, progress: Callable[[CaseResult, int, int], None] | None = None) -> list[CaseResult]:
    out = []
    for i, c in enumerate(cases):
        res = judge(c.capture, c.windows, predictor_factory(), thresholds, c.fault, c.seed,
                    c.spec.target if c.spec else "", enter, change=c.change)
        out.append(res)
        if progress is not None:
            progress(res, i + 1, len(cases))
    return out


def to_json(task: str, results: Sequence[CaseResult], rows: dict[str, Row], meta: dict[str, Any]) -> dict[str, Any]:
    """The table and every case, JSON-ready (NaN latencies as null)."""
    return {
        "task": task, **meta,
        "rows": {k: {"episodes": r.episodes, "detected": r.detected, "tpr": r.rate if k != NOMINAL else None,
                     "false_alarms": r.false_alarms,
                     "latency_p50": r.latency_q(0.5) if r.latencies else None,
                     "latency_p90": r.latency_q(0.9) if r.latencies else None} for k, r in rows.items()},
        "cases": [{**asdict(r), "latency": r.latency} for r in results],
    }
