"""The shadow node in the sim stack with the scripted expert driving the arms: windows of executed
motion are predicted by a tiny random A2World-sim and reported with their lag; a camera that stops
makes its view unjudgeable (inf), which the calibrated alarm raises; bad configurations fail at start."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest

from a2w.host import Host
from a2w.host.component import Component, NodeHandle
from a2w.host.host import NodeSpec
from a2w.host.params import Params
from a2w.host.qos import QoS
from a2w.launch import LaunchRunner
from a2w.msgs.cameras import CameraFrame
from a2w.msgs.diagnostics import DiagnosticLevel
from a2w.shadow.alarm import Level, Thresholds
from a2w.shadow.component import ShadowNode, predicted_topic
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


def _stack(checkpoint: Path, shadow: dict, relay: bool = False) -> tuple[Host, ShadowNode, Relay | None]:
    specs = LaunchRunner().load(SIM_LAUNCH, {"task": "pick_cube", "seed": "3"}).nodes
    for spec in specs:
        if spec.name == "camera_node":
            spec.params.update(width=64, height=48)
        elif spec.name == "expert_node":
            spec.params.update(exit_when_done=False, timeout=600.0)
    host = Host(diagnostics_period=0)
    for spec in specs:
        host.add(spec)
    rel = host.add(NodeSpec(Relay, "relay", params={"use_sim_time": True})) if relay else None
    host.add(NodeSpec(FrameProbe, "frame_probe", params={"use_sim_time": True}))
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
        # each predicted window's 20 frames per view, stamped with the keyframe times they predict
        first = node.reports[0]
        front = [f for f in seen if first.stamp - 2.0 < f.stamp <= first.stamp + 1e-9]
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
        windows = [r.window for r in node.reports]
        assert windows == sorted(set(windows)) and max(np.diff(windows)) >= 2, windows  # it jumped ahead
        # the skipped windows still extend the history: every executed action since the start is there
        n_hist = len(node.predictor.history.actions) - 19  # HistoryBuffer starts with 19 zero actions
        assert n_hist >= 20 * (windows[-1] - windows[0] + 1), (n_hist, windows)
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
