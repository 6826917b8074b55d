"""The policy node in the sim stack, through the real arm node: ownership, 30 Hz targets, stale actions
dropped, RTC continuity against a naive switch, every fault of issue 16 item 6 ending in a hold, the
services, and the errors at start."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from a2w.arms.component import SET_MODE_SERVICE
from a2w.host import Host
from a2w.host.host import NodeSpec
from a2w.msgs.arms import ControlMode
from a2w.msgs.diagnostics import DiagnosticLevel
from a2w.msgs.services import SetInstructionRequest, StartPolicyRequest, StopRequest
from a2w.policy.component import PolicyNode, State
from tests.policy.stack import INSTRUCTION, PERIOD, PathModel, Stack, start_stack, switch_jump, tiny_checkpoint

REST_M = 1e-3  # an arm whose TCP moves less than this over the window is at rest
DECEL_M = 0.03  # at most this far from where a fault found it (speeds here are < 10 cm/s)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("policy"))


def _policy_targets(st: Stack, since: float = -np.inf) -> list:
    return [(t, m) for t, m in st.probe.snapshot("targets") if m.requester == "policy_node" and t >= since]


def _spread(pos: np.ndarray) -> float:
    """Largest distance of any TCP from where it was at the start of the window."""
    return float(np.linalg.norm(pos - pos[:1], axis=-1).max()) if len(pos) else 0.0


def _assert_held(st: Stack, since: float, settle: float = 0.8, window: float = 0.8) -> None:
    """From ``since`` the arms decelerate within ``DECEL_M`` and are at rest after ``settle`` s."""
    st.sim_sleep(max(0.0, since + settle + window - st.probe.now()))
    _, after = st.probe.positions(since)
    assert len(after) > 10, "no arm state after the event"
    assert _spread(after) < DECEL_M, f"moved {_spread(after) * 1e3:.1f} mm after {since:.2f}"
    _, rest = st.probe.positions(since + settle, since + settle + window)
    assert _spread(rest) < REST_M, f"still moving: {_spread(rest) * 1e3:.2f} mm in the rest window"


def test_the_tiny_policy_drives_the_arms_through_the_arm_node(checkpoint: Path) -> None:
    st = start_stack(checkpoint)
    try:
        st.wait(lambda: st.policy.scheduler.chunks >= 3, 180, "three chunks")
        status = st.probe.snapshot("status")[-1]
        assert status.owner == "policy_node" and status.mode is ControlMode.POLICY, status
        st.sim_sleep(1.0)
        sent = _policy_targets(st)
        arrived = np.array([t for t, _ in sent])
        stamps = np.array([m.stamp for _, m in sent])
        assert np.all(np.diff(stamps) > 0), "a target was sent twice or out of order"
        # Never a past action: each target is stamped at (or after) the moment it arrives.
        assert np.all(stamps - arrived > -PERIOD), (stamps - arrived).min()
        # 30 Hz of sim time over the last second
        last = stamps[stamps > stamps[-1] - 1.0]
        assert abs(np.median(np.diff(last)) - PERIOD) < 0.1 * PERIOD
        assert len(last) >= 0.8 * 30, len(last)
        chunk = st.probe.snapshot("chunks")[-1]
        assert chunk.deltas.shape == (60, 14) and np.all(np.isfinite(chunk.targets))
        d = st.policy.diagnostics()
        assert d["state"] == "running" and d["chunks"] >= 3 and "inference_p95_s" in d, d

        assert st.probe.call("stop", StopRequest("test over")).success
        st.wait(lambda: st.probe.snapshot("status")[-1].owner == "", 30, "the arms released")
        assert st.probe.snapshot("status")[-1].mode is ControlMode.HOLD
        t_stop = st.probe.now()
        _assert_held(st, t_stop)
        assert not _policy_targets(st, t_stop + 0.1), "targets after stop"
    finally:
        st.host.shutdown()


def test_stale_actions_are_dropped_never_replayed(checkpoint: Path) -> None:
    st = start_stack(checkpoint, model=PathModel())
    try:
        st.wait(lambda: st.policy.scheduler.chunks >= 2, 120, "two chunks")
        before = st.policy.queue.dropped
        # Block the node's executor for a while: the actions due meanwhile go stale.
        st.policy.node.post(lambda: time.sleep(1.0))
        st.sim_sleep(0.5)
        st.wait(lambda: st.policy.queue.dropped > before, 30, "dropped actions")
        st.sim_sleep(0.5)
        stamps = np.array([m.stamp for _, m in _policy_targets(st)])
        assert np.all(np.diff(stamps) > 0)
        gaps = np.diff(stamps)
        assert gaps.max() > 3 * PERIOD, "the executor was never blocked"
        assert st.policy.diagnostics()["dropped_actions"] > before
    finally:
        st.host.shutdown()


def test_rtc_continues_the_committed_prefix_where_a_naive_switch_jumps(checkpoint: Path) -> None:
    jumps = {}
    for mode in ("rtc", "naive"):
        st = start_stack(checkpoint, {"mode": mode, "initial_delay": 0.3}, model=PathModel(seed=1))
        try:
            st.wait(lambda: st.policy.scheduler.chunks >= 6, 180, "six chunks")
            jumps[mode] = switch_jump(st)
            if mode == "rtc":
                assert max(st.policy.scheduler.prefix_lengths) > 0
        finally:
            st.host.shutdown()
    # chunks differ by ~1 cm (their "modes"); the naive switch shows it, RTC continues the prefix
    assert jumps["naive"] > 4e-3, jumps
    assert jumps["rtc"] < 0.4 * jumps["naive"], jumps


@pytest.mark.parametrize("fault, words", [
    ("nan", "non-finite"),
    ("raise", "inference failed: RuntimeError: scripted inference failure"),
    ("slow", "inference timed out"),
])
def test_a_bad_chunk_or_inference_ends_in_a_hold(checkpoint: Path, fault: str, words: str) -> None:
    params = {"inference_timeout": 1.0} if fault == "slow" else {}
    st = start_stack(checkpoint, params, model=PathModel(fault=fault, fault_at=3, slow_s=4.0))
    try:
        st.wait(lambda: st.policy.state is State.FAULT, 180, f"the {fault} fault")
        t_fault = st.probe.now()
        assert words in st.policy.fault, st.policy.fault
        level, message = st.policy.health()
        assert level is DiagnosticLevel.ERROR and words in message
        st.wait(lambda: st.probe.snapshot("status")[-1].owner == "", 30, "the arms handed back")
        assert st.probe.snapshot("status")[-1].mode is ControlMode.HOLD
        _assert_held(st, t_fault)
        assert not _policy_targets(st, t_fault + 0.1), "targets after the fault"
        assert any(d.level is DiagnosticLevel.ERROR and words in d.message for d in st.probe.snapshot("diags"))
    finally:
        st.host.shutdown()


def test_losing_the_policy_mode_holds_without_touching_the_new_owner(checkpoint: Path) -> None:
    st = start_stack(checkpoint, model=PathModel())
    try:
        st.wait(lambda: st.policy.scheduler.chunks >= 2, 120, "two chunks")
        assert st.probe.take_arms(ControlMode.TELEOP, requester="operator").success
        t_taken = st.probe.now()
        st.wait(lambda: st.policy.state is State.FAULT, 30, "the ownership fault")
        assert "lost the policy mode" in st.policy.fault
        assert not _policy_targets(st, t_taken + 0.2)
        status = st.probe.snapshot("status")[-1]
        assert status.owner == "operator" and status.mode is ControlMode.TELEOP, status  # not stopped by us
    finally:
        st.host.shutdown()


def test_the_policy_waits_for_the_mode_service_instead_of_failing(checkpoint: Path) -> None:
    """Under DDS the arm node's state arrives before its service is matched: the node says what it
    waits for and does not take that for a refusal."""
    st = start_stack(checkpoint, model=PathModel(), arm_remaps={SET_MODE_SERVICE: "/arms/set_mode_elsewhere"})
    try:
        st.wait(lambda: SET_MODE_SERVICE in st.policy.waiting, 60, "the node to wait for the service")
        st.sim_sleep(1.0)
        assert st.policy.state is State.STARTING and SET_MODE_SERVICE in st.policy.waiting, st.policy.diagnostics()
        assert not _policy_targets(st)
    finally:
        st.host.shutdown()


def test_stale_or_skewed_cameras_finish_the_committed_actions_then_hold_and_resume(checkpoint: Path) -> None:
    st = start_stack(checkpoint, {"camera_timeout": 0.2}, relay=True, model=PathModel())
    try:
        st.wait(lambda: st.policy.scheduler.chunks >= 2, 120, "two chunks")
        for fault in ("drop", "skew"):
            if fault == "drop":
                st.relay.drop.add("front")
            else:
                st.relay.skew["front"] = 0.05  # 50 ms apart: over the 16 ms spread limit
            t0 = st.probe.now()
            n = st.policy.scheduler.chunks
            st.wait(lambda: st.policy.health() is not None, 60, "the hold after the committed actions")
            level, message = st.policy.health()
            assert level is DiagnosticLevel.WARN and "no usable observation" in message, message
            assert st.policy.state is State.RUNNING
            assert st.policy.scheduler.chunks <= n + 1  # at most the one already in flight
            _assert_held(st, st.probe.now(), settle=0.5, window=0.6)
            assert st.probe.now() - t0 < 2.0 + 1.5, "held later than the committed horizon"
            kinds = st.policy.refusals
            assert any(k.startswith("cameras_") for k in kinds), kinds
            st.relay.drop.clear()
            st.relay.skew.clear()
            st.wait(lambda: st.policy.scheduler.chunks > n + 1, 60, "chunks again")
        assert st.probe.snapshot("status")[-1].owner == "policy_node"
    finally:
        st.host.shutdown()


def test_pause_resume_instruction_and_stop_services(checkpoint: Path) -> None:
    model = PathModel()
    st = start_stack(checkpoint, model=model)
    try:
        st.wait(lambda: st.policy.scheduler.chunks >= 2, 120, "two chunks")
        out = st.probe.call("instruction", SetInstructionRequest("juggle"))
        assert not out.success and "juggle" in out.message and INSTRUCTION in out.message
        other = "lift the box with both arms"
        assert st.probe.call("instruction", SetInstructionRequest(other)).success
        n = model.calls
        st.wait(lambda: model.calls > n + 1, 60, "a chunk with the new instruction")
        assert model.instructions[-1] == other

        assert st.probe.call("pause", StopRequest("coffee")).success
        assert st.policy.state is State.PAUSED
        t_pause = st.probe.now()
        _assert_held(st, t_pause)
        assert st.probe.snapshot("status")[-1].owner == "policy_node"  # paused keeps the arms
        n = st.policy.scheduler.chunks
        assert st.probe.call("start", StartPolicyRequest(INSTRUCTION)).success
        st.wait(lambda: st.policy.scheduler.chunks > n, 60, "chunks after resume")
        assert not st.probe.call("start", StartPolicyRequest("juggle")).success
        assert st.probe.call("stop", StopRequest()).success
        st.wait(lambda: st.probe.snapshot("status")[-1].owner == "", 30, "released")
        assert st.policy.state is State.IDLE
    finally:
        st.host.shutdown()


@pytest.mark.parametrize("params, words", [
    ({"instruction": "juggle"}, "'juggle' is not in the text-embedding cache"),
    ({"checkpoint": ""}, "checkpoint: a policy checkpoint directory is required"),
    ({"checkpoint": "/nonexistent/policy"}, "/nonexistent/policy"),
    ({"views": ["front"]}, "differ from the views"),
    ({"horizon": 61}, "horizon: 61 actions"),
    ({"max_prefix": 21}, "max_prefix: 21"),
    ({"image_size": [30, 30]}, "multiples of"),
])
def test_a_checkpoint_or_parameter_that_does_not_fit_is_an_error_at_start(checkpoint: Path, params: dict,
                                                                          words: str) -> None:
    host = Host(diagnostics_period=0)
    with pytest.raises(Exception) as exc:
        host.add(NodeSpec(PolicyNode, "policy_node", params={"checkpoint": str(checkpoint), "threads": 1, **params}))
    assert words in str(exc.value), str(exc.value)


def test_a_text_cache_of_another_model_is_named_at_start(checkpoint: Path, tmp_path: Path) -> None:
    import torch

    from a2world.text_embeddings import TextEmbeddingCache

    cache = TextEmbeddingCache(max_length=8, dim=32)
    cache.add(INSTRUCTION, torch.zeros(3, 32))
    bad = tmp_path / "other.safetensors"
    cache.save(bad)
    with pytest.raises(Exception) as exc:
        Host(diagnostics_period=0).add(NodeSpec(PolicyNode, "policy_node", params={
            "checkpoint": str(checkpoint), "text_embeddings": str(bad)}))
    assert str(bad) in str(exc.value) and "32-dim" in str(exc.value), str(exc.value)


@pytest.mark.parametrize("backend, dtype", [("torch", "float32"), ("torch", "bfloat16"), ("onnx", "float32")])
def test_each_backend_and_dtype_predicts_a_chunk_from_paired_views(checkpoint: Path, backend: str, dtype: str) -> None:
    """The node's parameters reach the engine: one inference through the node's own predict path."""
    from a2w.msgs.common import Pose
    from a2w.policy.inputs import Observation

    host = Host(diagnostics_period=0)
    node = host.add(NodeSpec(PolicyNode, "policy_node", params={
        "checkpoint": str(checkpoint), "threads": 1, "steps": 1, "backend": backend, "dtype": dtype}))
    rng = np.random.default_rng(0)
    images = {v: rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for v in (0, 1, 2)}
    now = node.clock.now()
    pose = Pose(np.array([0.4, 0.0, 0.3]), np.array([0.0, 0.0, 0.0, 1.0]))
    obs = Observation(images, {v: now for v in images}, now, (pose, pose), 0.0)
    out = node._predict((obs, INSTRUCTION, np.zeros((3, 14), np.float32), 0))  # noqa: SLF001
    assert out.actions.shape == (60, 14) and np.all(np.isfinite(out.actions))
    assert np.array_equal(out.actions[:3], np.zeros((3, 14))) and out.prefix_length == 3
    frames = node._decode(out)[1]  # noqa: SLF001
    assert frames.shape == (3, 20, 32, 32, 3) and frames.dtype == np.uint8
