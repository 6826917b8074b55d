"""The shadow node in the sim stack with the scripted expert driving the arms: windows of executed
motion are predicted by a tiny random A2World-sim and reported with their lag; a camera that stops
makes its view unjudgeable (inf), which the calibrated alarm raises; bad configurations fail at start.
With ``ahead`` on, a scripted policy's chunks are predicted before they are executed, then scored; bad
chunks are refused and counted; the history stays the real one."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest

from a2w.actions import compose_chunk, rig_pose
from a2w.arms.component import STATE_TOPIC
from a2w.host import Host
from a2w.host.component import Component, NodeHandle
from a2w.host.host import NodeSpec
from a2w.host.params import Params
from a2w.host.qos import QoS
from a2w.launch import LaunchRunner
from a2w.msgs.arms import RigState
from a2w.msgs.cameras import CameraFrame
from a2w.msgs.diagnostics import DiagnosticLevel
from a2w.msgs.policy import ActionChunk
from a2w.policy.topics import CHUNK_TOPIC
from a2w.shadow.alarm import Level, Thresholds
from a2w.shadow.component import AheadJob, ShadowNode, ahead_topic, predicted_topic
from a2w.shadow.motion import CHUNK
from a2w.shadow.predictor import Keyframe, Window
from tests.policy.stack import Relay
from tests.shadow.support import tiny_worldmodel

SIM_LAUNCH = Path(__file__).resolve().parents[2] / "launch" / "sim.launch.xml"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_worldmodel(tmp_path_factory.mktemp("worldmodel"))


class FrameProbe(Component):
    """Keeps the shadow's predicted front frames."""

    def __init__(self, node: NodeHandle, params: Params) -> None:
        super().__init__(node, params)
        self.frames: list[CameraFrame] = []
        node.create_subscription(predicted_topic("front"), CameraFrame, self.frames.append, QoS.reliable(100))


class AheadProbe(Component):
    """Keeps the shadow's ahead front frames with the clock time each arrived."""

    def __init__(self, node: NodeHandle, params: Params) -> None:
        super().__init__(node, params)
        self.frames: list[tuple[float, CameraFrame]] = []
        node.create_subscription(ahead_topic("front"), CameraFrame,
                                 lambda f: self.frames.append((node.clock.now(), f)), QoS.reliable(100))


class Planner(Component):
    """A scripted policy: every second of the clock a 2 s chunk (60 steps at 30 Hz) that holds the measured
    poses, observed at the newest arm state; the expert moves the arms meanwhile (the drift measured)."""

    def __init__(self, node: NodeHandle, params: Params) -> None:
        super().__init__(node, params)
        self.pub = node.create_publisher(CHUNK_TOPIC, ActionChunk, QoS.reliable(5))
        self.state: RigState | None = None
        self.seq = 1
        self.sent: dict[int, ActionChunk] = {}
        node.create_subscription(STATE_TOPIC, RigState, self._on_state, QoS.sensor())
        node.create_timer(1.0, self._tick)

    def _on_state(self, state: RigState) -> None:
        self.state = state

    def chunk(self, seq: int, obs_offset: float = 0.0, first: float = 1 / 30) -> ActionChunk:
        s = self.state
        pose = rig_pose(s)
        deltas = np.zeros((60, 14))
        deltas[:, 6], deltas[:, 13] = pose[0, 7], pose[1, 7]
        c = compose_chunk(deltas, (s.arm(0).tcp_pose, s.arm(1).tcp_pose), s.stamp + obs_offset, 1 / 30, seq)
        return ActionChunk(c.deltas, c.targets, c.times - 1 / 30 + first, seq, c.obs_stamp)

    def send(self, chunk: ActionChunk) -> None:
        self.sent[chunk.seq] = chunk
        self.pub.publish(chunk)

    def _tick(self) -> None:
        if self.state is not None:
            self.send(self.chunk(self.seq))
            self.seq += 1


def _stack(checkpoint: Path, shadow: dict, relay: bool = False,
           realtime_factor: float = 1.0) -> tuple[Host, ShadowNode, Relay | None]:
    specs = LaunchRunner().load(SIM_LAUNCH, {"task": "pick_cube", "seed": "3"}).nodes
    for spec in specs:
        if spec.name == "sim_node":
            spec.params.update(realtime_factor=realtime_factor)
        elif spec.name == "camera_node":
            spec.params.update(width=64, height=48)
        elif spec.name == "expert_node":
            spec.params.update(exit_when_done=False, timeout=600.0)
    host = Host(diagnostics_period=0)
    for spec in specs:
        host.add(spec)
    rel = host.add(NodeSpec(Relay, "relay", params={"use_sim_time": True})) if relay else None
    host.add(NodeSpec(FrameProbe, "frame_probe", params={"use_sim_time": True}))
    if shadow.get("ahead"):
        host.add(NodeSpec(AheadProbe, "ahead_probe", params={"use_sim_time": True}))
        host.add(NodeSpec(Planner, "planner", params={"use_sim_time": True}))
    node = host.add(NodeSpec(ShadowNode, "shadow_node", params={
        "use_sim_time": True, "checkpoint": str(checkpoint), "steps": 1, "threads": 1, "latent_weight": 0.1,
        **({"camera_prefix": "/relay"} if relay else {}), **shadow}))
    host.start()
    return host, node, rel


def _wait(cond, timeout: float, what: str, node: ShadowNode) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}: {node.diagnostics()}")


def test_windows_of_executed_motion_are_predicted_and_reported(checkpoint: Path) -> None:
    host, node, _ = _stack(checkpoint, {})
    seen = next(c for c in host.components.values() if isinstance(c, FrameProbe)).frames
    try:
        _wait(lambda: len(node.reports) >= 3, 240, "three reports", node)
        # each predicted window's 20 frames per view, stamped with the keyframe times they predict (windows
        # overlap: the first 20 frames published are the first window's)
        first = node.reports[0]
        front = seen[:CHUNK]
        assert all(first.stamp - 2.0 < f.stamp <= first.stamp + 1e-9 for f in front)
        assert len(front) == 20 and front[-1].stamp == pytest.approx(first.stamp)
        assert np.allclose(np.diff([f.stamp for f in front]), 0.1, atol=1e-6)
        assert front[0].image.shape == (*node.size, 3) and front[0].frame_id.endswith("optical_frame")
        reports = list(node.reports)
        assert [r.window for r in reports] == sorted(r.window for r in reports)
        for r in reports:
            assert r.views == ("left_wrist", "right_wrist", "front") and r.horizon == pytest.approx(2.0)
            assert all(math.isfinite(s) and s >= 0 for s in r.view_scores), (r.window, node.last_unpaired)
            assert 0 < min(r.view_ssim) <= 1
            assert r.level == 0  # uncalibrated: scores only
        assert all(math.isfinite(x) and x >= 0 for x in node.lags)  # measured, reported (bench/shadow.py)
        assert node.predictor.history is not None and node.predictor.history.actions.shape[1] == 14
        # the executed actions reach the history: once the expert moves, they are not zeros
        _wait(lambda: np.abs(node.predictor.history.actions[:, :3]).max() > 1e-4, 240, "the expert's motion", node)
    finally:
        host.shutdown(timeout=120.0)  # a prediction in flight finishes first (torch cannot be interrupted)


def test_a_shadow_slower_than_real_time_skips_ahead_instead_of_queueing(checkpoint: Path) -> None:
    host, node, _ = _stack(checkpoint, {})
    inner = node.rollout.predict_chunk

    def slow(*args, **kwargs):  # noqa: ANN002, ANN003 - the rollout's own signature
        node.node.shutdown_event.wait(3.0)  # longer than a 2 s window even at real time
        return inner(*args, **kwargs)

    node.rollout.predict_chunk = slow
    try:
        _wait(lambda: len(node.reports) >= 3 and node.skipped >= 1, 300, "skipped windows", node)
        windows = [r.window for r in node.reports]  # indices count keyframes: one window ends at each
        # it jumped ahead: a 3 s prediction puts 30 keyframes or more between predicted windows
        assert windows == sorted(set(windows)) and min(np.diff(windows)) >= 30, windows
        # the windows passed over still extend the history: every executed step since the start is there
        n_hist = len(node.predictor.history.actions) - 19  # HistoryBuffer starts with 19 zero actions
        assert n_hist >= windows[-1] - windows[0] + 1, (n_hist, windows)
    finally:
        host.shutdown(timeout=120.0)  # a prediction in flight finishes first (torch cannot be interrupted)


def test_a_camera_that_stops_raises_the_calibrated_alarm(checkpoint: Path, tmp_path: Path) -> None:
    Thresholds(warn=0.9, alarm=1.5).save(tmp_path / "t.json")
    host, node, relay = _stack(checkpoint, {"thresholds": str(tmp_path / "t.json")}, relay=True)
    try:
        _wait(lambda: len(node.reports) >= 1, 240, "a first report", node)
        assert node.reports[-1].level == Level.OK
        relay.drop.add("front")
        _wait(lambda: node.reports and node.reports[-1].level == Level.ALARM, 240, "the alarm", node)
        last = node.reports[-1]
        assert math.isinf(last.view_scores[last.views.index("front")]) and last.alarm
        level, message = node.health()
        assert level is DiagnosticLevel.ERROR and "shadow alarm" in message
    finally:
        host.shutdown(timeout=120.0)  # a prediction in flight finishes first (torch cannot be interrupted)


def test_a_camera_frozen_while_the_arms_move_raises_the_alarm_and_says_which(checkpoint: Path,
                                                                            tmp_path: Path) -> None:
    Thresholds(warn=0.9, alarm=1.5).save(tmp_path / "t.json")
    host, node, relay = _stack(checkpoint, {"thresholds": str(tmp_path / "t.json")}, relay=True)
    relay.freeze.add("front")  # the front stream keeps coming, stamps advancing, always the same image
    try:
        _wait(lambda: node.reports and node.reports[-1].level == Level.ALARM, 240, "the alarm", node)
        last = node.reports[-1]
        front = last.view_scores[last.views.index("front")]
        assert math.isfinite(front) and front == last.score > 1.5  # judged (not missing) and the worst view
        diag = node.diagnostics()
        assert diag["frozen_windows"] >= 1 and "front still" in diag["last_frozen"]
        assert "left_wrist" not in diag["last_frozen"] and "right_wrist" not in diag["last_frozen"]
    finally:
        host.shutdown(timeout=120.0)  # a prediction in flight finishes first (torch cannot be interrupted)


def test_overlapping_windows_start_every_stride_and_the_history_moves_on_by_it(checkpoint: Path) -> None:
    host, node, _ = _stack(checkpoint, {"stride": 10, "publish_frames": False})
    try:
        _wait(lambda: len(node.reports) >= 3, 240, "three reports", node)
        reports = list(node.reports)
        # window indices count keyframes (one window ends at each, 0.1 s apart); predicted ones are 10 or
        # more apart (exactly 10 while the worker keeps up, more on a loaded machine: always the newest)
        steps = np.diff([r.window for r in reports])
        assert min(steps) >= 10, steps
        for r in reports:
            assert r.stamp - reports[0].stamp == pytest.approx(0.1 * (r.window - reports[0].window), abs=1e-6)
            assert r.horizon == pytest.approx(2.0)  # each window still predicts 2 s
        # the history holds each executed keyframe once: 20 start copies, then one per window handled
        # (predicted or not; the worker may be past the last report)
        grown = node.predictor.history.n_nodes - 20
        assert grown >= reports[-1].window + 1, (grown, reports[-1].window)
        assert np.array_equal(node.predictor.node_stamps[20:], sorted(set(node.predictor.node_stamps[20:])))
    finally:
        host.shutdown(timeout=120.0)  # a prediction in flight finishes first (torch cannot be interrupted)


@pytest.mark.parametrize("params, words", [
    ({"checkpoint": ""}, "checkpoint: an A2World-sim checkpoint directory is required"),
    ({"views": ["top"]}, "are not rig views"),
    ({"image_size": [60, 60]}, "multiples of 16"),
    ({"thresholds": "/nonexistent/t.json"}, "not shadow thresholds"),
])
def test_bad_configuration_is_an_error_at_start(checkpoint: Path, params: dict, words: str) -> None:
    with pytest.raises(Exception) as exc:
        Host(diagnostics_period=0).add(NodeSpec(ShadowNode, "shadow_node", params={"checkpoint": str(checkpoint),
                                                                                   **params}))
    assert words in str(exc.value), str(exc.value)


def test_a_world_model_without_history_is_refused(tmp_path: Path) -> None:
    import torch

    from a2world.checkpoint import save_checkpoint
    from a2world.config import tiny_config
    from a2world.dit import build_dit
    from a2world.tokenizer import WanTokenizer

    torch.manual_seed(0)
    save_checkpoint(build_dit(tiny_config("pretrained")), tmp_path)
    WanTokenizer.tiny().save(tmp_path / "tokenizer.safetensors")
    with pytest.raises(ValueError, match="needs A2World-sim"):
        Host(diagnostics_period=0).add(NodeSpec(ShadowNode, "shadow_node", params={"checkpoint": str(tmp_path)}))


def _component(host: Host, kind: type) -> Component:
    return next(c for c in host.components.values() if isinstance(c, kind))


def test_ahead_predicts_a_chunk_before_its_times_then_scores_it_and_refuses_bad_chunks(checkpoint: Path) -> None:
    # The sim at a quarter of real time: a prediction that takes ~2 s of wall time on 2 busy cores (and
    # may wait for a behind one) still comes out before most of the 2 s of sim time it predicts.
    host, node, _ = _stack(checkpoint, {"ahead": True, "image_size": [32, 32]}, realtime_factor=0.25)
    planner, seen = _component(host, Planner), _component(host, AheadProbe).frames
    try:
        # the first predictions can come late (the model's first calls): wait for one well ahead
        _wait(lambda: len(node.ahead_reports) >= 2 and max(lead for _, _, lead in node.ahead_reports) > -1.0, 240,
              "two ahead reports, one published before the middle of its predicted times", node)
        assert node.ahead_made >= 2 and len(node.ahead_leads) >= 2
        assert all(math.isfinite(x) for x in node.ahead_leads)  # measured and reported (negative when slow)
        early = 0
        # each prediction's 20 frames go out together; predictions of chunks 1 s apart overlap in time
        groups = {round(g[0][1].stamp - 0.1, 6): g for g in (seen[i:i + CHUNK] for i in range(0, len(seen), CHUNK))}
        for report, drift, lead in list(node.ahead_reports):
            chunk = planner.sent[report.window]  # window: the chunk's seq
            frames = groups[round(chunk.obs_stamp, 6)]
            # 20 frames stamped with the future times they predict: obs_stamp + 0.1 s ... + 2 s
            assert len(frames) == CHUNK, (report.window, len(frames))
            assert np.allclose([f.stamp for _, f in frames], chunk.obs_stamp + 0.1 * np.arange(1, 21), atol=1e-6)
            early += max(t for t, _ in frames) < frames[-1][1].stamp  # out before the clock reached its end
            assert lead >= frames[0][1].stamp - min(t for t, _ in frames) - 1e-9  # measured at publish, before receipt
            assert report.stamp == pytest.approx(chunk.obs_stamp + 2.0) and report.horizon == pytest.approx(2.0)
            assert all(math.isfinite(x) and x >= 0 for x in report.view_scores), f"{report} {node.diagnostics()}"
            assert report.level == 0 and math.isfinite(drift) and drift >= 0
        assert early >= 1, node.ahead_leads
        diag = node.diagnostics()
        assert diag["ahead_made"] >= 2 and "ahead_drift_mm_last" in diag and "ahead_lead_last_s" in diag
        assert not node.ahead_refused, node.ahead_refused
        # bad chunks: refused and counted by kind, never a crash, and good ones are still predicted after
        last = max(planner.sent)
        bad = {"malformed": planner.chunk(10_000, first=0.0), "future": planner.chunk(10_001, obs_offset=5.0),
               "stale": planner.chunk(10_002, obs_offset=-3.0), "seq": planner.chunk(last)}
        for kind, chunk in bad.items():  # one at a time: the subscription keeps 5
            planner.pub.publish(chunk)
            _wait(lambda k=kind: node.ahead_refused.get(k), 60, f"the {kind} refusal", node)
        assert sum(node.ahead_refused.values()) == len(bad), node.ahead_refused
        made = node.ahead_made
        _wait(lambda: node.ahead_made > made, 120, "an ahead prediction after the refusals", node)
    finally:
        host.shutdown(timeout=120.0)  # a prediction in flight finishes first (torch cannot be interrupted)


def _window(index: int, t0: float, rng: np.random.Generator, size: tuple[int, int] = (32, 32)) -> Window:
    keys = [Keyframe(t0 + 0.1 * k, {v: rng.integers(0, 255, (*size, 3), dtype=np.uint8)
                                    for v in ("left_wrist", "right_wrist", "front")}) for k in range(CHUNK + 1)]
    return Window(index, keys, rng.normal(0, 0.01, (CHUNK, 14)))


def test_an_ahead_prediction_reads_the_history_as_it_stood_and_never_appends_to_it(checkpoint: Path) -> None:
    node = Host(diagnostics_period=0).add(NodeSpec(ShadowNode, "shadow_node", params={
        "checkpoint": str(checkpoint), "steps": 1, "threads": 1, "image_size": [32, 32], "ahead": True}))
    rng = np.random.default_rng(0)
    pred = node.predictor
    assert pred.history_until(100.0) is None  # no history yet: the ahead prediction starts one of its own
    t0 = node.node.clock.now()
    for i in range(3):
        pred.extend(_window(i, t0 + 2.0 * i, rng))
    hist = pred.history
    before = (hist.n_nodes, hist.actions.copy(), [len(v) for v in hist.frames])
    assert before[0] == 20 + 3 * CHUNK
    # the history at a time inside it: the nodes up to that time only (no frame from after the observation)
    past = pred.history_until(t0 + 2.0 + 0.55)
    assert past.n_nodes == 20 + CHUNK + 5 and [len(v) for v in past.frames] == [past.n_nodes] * 3
    assert np.array_equal(past.actions, hist.actions[: past.n_nodes - 1])
    assert pred.history_until(t0 + 60.0) is hist
    with pytest.raises(ValueError, match="older than the history"):
        pred.history_until(t0 - 1.0)
    for obs in (t0 + 0.05, t0 + 3.0, t0 + 6.0):  # inside the history and at its end
        now = node.node.clock.now()
        start = {v: rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for v in node.views}
        node._run_ahead(AheadJob(7, obs, start, rng.normal(0, 0.01, (CHUNK, 14)),  # noqa: SLF001
                                 now + 0.1 * np.arange(1, 21), np.zeros((CHUNK, 2, 8))))
    assert node.ahead_made == 3 and node.ahead_failed == 0, node.last_error
    assert hist is pred.history and hist.n_nodes == before[0] and [len(v) for v in hist.frames] == before[2]
    assert np.array_equal(hist.actions, before[1])


@pytest.mark.parametrize("ahead", [False, True])
def test_only_an_ahead_shadow_listens_to_the_policy(checkpoint: Path, ahead: bool) -> None:
    host = Host(diagnostics_period=0)
    node = host.add(NodeSpec(ShadowNode, "shadow_node", params={"checkpoint": str(checkpoint), "ahead": ahead}))
    topic = host.bus.get(CHUNK_TOPIC)
    listeners = topic.info().subscribers if topic else ()
    assert (len(listeners) == 1) is ahead, listeners
    assert ("ahead_made" in node.diagnostics()) is ahead
