"""`a2w shadow eval`: sim episodes with seeded faults, cut into the node's windows, rated by the node's
predictor and alarm logic; the table's rates and latencies; clear refusals."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from a2w.shadow.alarm import Level, Thresholds
from a2w.shadow.evaluate import (
    NOMINAL,
    VISIBLE_CHANGE,
    Capture,
    CaseResult,
    CopyLastFrame,
    capture_episode,
    capture_windows,
    judge,
    summarize,
    table,
    visible_change,
)
from a2w.shadow.motion import actions_10hz, grid_poses
from a2w.shadow.predictor import Keyframe, ShadowPredictor, Window
from a2w.sim.faults import FaultSpec
from tests.shadow.support import tiny_worldmodel

ROOT = Path(__file__).resolve().parents[2]
VIEWS = ("left_wrist", "right_wrist", "front")


@pytest.fixture(scope="module")
def black() -> tuple:
    """pick_cube seed 0 with the right wrist camera going black at 3.1 s, and the same episode nominal."""
    spec = FaultSpec("camera_black", 3.1, "right_wrist")
    return (capture_episode("pick_cube", 0, spec, VIEWS, (32, 32), hold_after=2.0),
            capture_episode("pick_cube", 0, None, VIEWS, (32, 32), hold_after=2.0))


def _copy_last() -> ShadowPredictor:
    return ShadowPredictor(CopyLastFrame(), VIEWS, (0, 1, 2), latent_weight=0.0)


def test_captured_windows_are_the_nodes_keyframes_and_executed_motion(black: tuple) -> None:
    cap, _ = black
    assert cap.onset == pytest.approx(3.1, abs=1 / 600)
    steps = np.diff([k.stamp for k in cap.keys])
    assert np.allclose(steps, 0.1, atol=1e-6)  # a keyframe every 0.1 s of sim time, none missing
    assert all(k.frames[v].shape == (32, 32, 3) for k in cap.keys for v in VIEWS)
    assert cap.keys[0].stamp >= cap.pose_stamps[0]  # no keyframe before the first measured pose
    wins = capture_windows(cap)
    assert len(wins) >= 3
    for w in wins:
        assert len(w.keys) == 21 and w.keys[0] is cap.keys[20 * w.index]
        times = w.keys[0].stamp + np.arange(61) / 30.0
        assert np.allclose(w.actions, actions_10hz(grid_poses(cap.pose_stamps, cap.poses, times)))
    # the fault acts on the frames as the camera node would deliver them: black from the onset on
    after = [k for k in cap.keys if k.stamp >= cap.onset + 1e-6]
    before = [k for k in cap.keys if k.stamp < cap.onset - 1e-6]
    assert after and all(not k.frames["right_wrist"].any() for k in after)
    assert all(k.frames["right_wrist"].any() and k.frames["front"].any() for k in before)
    assert all(k.frames["front"].any() for k in after)


def test_a_black_camera_is_detected_after_its_onset_and_the_nominal_run_is_quiet(black: tuple) -> None:
    cap, nominal = black
    quiet = judge(nominal, capture_windows(nominal), _copy_last(), Thresholds(1e9, 1e9), NOMINAL, 0, "")
    top = max(quiet.scores)
    thresholds = Thresholds(warn=1.5 * top, alarm=2.0 * top)
    res = judge(cap, capture_windows(cap), _copy_last(), thresholds, "camera_black", 0, "right_wrist")
    # the first window with black frames in it scores far above any nominal window of the same episode
    first_after = next(i for i, end in enumerate(res.window_ends) if end > cap.onset)
    assert res.scores[first_after] > 2.0 * top
    assert res.levels[first_after] == Level.ALARM and not res.false_alarm
    assert res.detected_at == res.window_ends[first_after] == res.raw_exceed_at
    assert 0 < res.latency <= 2.0 + 1e-6  # within the window that saw the onset
    again = judge(nominal, capture_windows(nominal), _copy_last(), thresholds, NOMINAL, 0, "")
    assert not again.false_alarm and again.detected_at is None and max(again.levels) < Level.ALARM
    # the same thresholds with two windows required to enter: the black window alone no longer alarms
    late = judge(cap, capture_windows(cap), _copy_last(), thresholds, "camera_black", 0, "right_wrist", enter=2)
    assert late.detected_at is None or late.detected_at > res.detected_at


def test_the_table_counts_detections_false_alarms_and_latency_quantiles() -> None:
    def case(fault: str, onset: float | None, detected: float | None, false_alarm: bool = False,
             change: float | None = 0.5) -> CaseResult:
        return CaseResult(fault, 0, "", onset, 3, detected_at=detected, false_alarm=false_alarm,
                          change=None if fault == NOMINAL else change)

    results = [case("camera_black", 2.0, 2.5), case("camera_black", 2.0, 4.0), case("camera_black", 3.0, None),
               case("object_removed", 1.0, None, True), case(NOMINAL, None, None, True), case(NOMINAL, None, None),
               # faults that changed no view (or too little) are left out of the rates, and counted
               case("gripper_fail", 1.0, None, change=0.0), case("camera_black", 1.0, None, change=0.009),
               # an ALARM before the onset is a false alarm even when the fault then changed nothing
               case("gripper_fail", 3.0, None, True, change=0.0)]
    rows = summarize(results)
    assert list(rows) == ["object_removed", "camera_black", "gripper_fail", "all faults", NOMINAL]  # FAULT_NAMES order
    b = rows["camera_black"]
    assert (b.episodes, b.detected, b.rate, b.invisible) == (3, 2, pytest.approx(2 / 3), 1)
    assert b.latency_q(0.5) == pytest.approx(1.25) and b.latency_q(0.9) == pytest.approx(1.85)
    assert rows["all faults"].episodes == 4 and rows["all faults"].false_alarms == 2
    assert rows["all faults"].invisible == 3 and math.isnan(rows["gripper_fail"].rate)
    assert rows["gripper_fail"].false_alarms == 1 and rows["gripper_fail"].invisible == 2
    assert rows[NOMINAL].false_alarms == 1 and rows[NOMINAL].episodes == 2
    assert math.isnan(rows["object_removed"].latency_q(0.5))
    text = table(rows)
    assert "camera_black" in text and "0.67" in text and "1.25 s" in text and "0.50" in text
    assert "no change" in text.splitlines()[0]
    grip = next(line for line in text.splitlines() if line.startswith("gripper_fail")).split()
    assert grip[1:4] == ["0", "-", "0.50"] and grip[-1] == "2"  # no visible episode; 1 false alarm of 2


def test_a_fault_counts_only_where_it_changed_what_a_camera_saw(black: tuple) -> None:
    cap, nominal = black
    assert visible_change(nominal, nominal) == 0.0  # no onset: nothing changed
    black_view = visible_change(cap, nominal)
    assert black_view > 0.9 and black_view >= VISIBLE_CHANGE  # the whole right wrist view went dark
    # the same frames before the onset change nothing: a fault whose onset is after every keyframe
    late = Capture(cap.keys, cap.pose_stamps, cap.poses, cap.keys[-1].stamp + 1.0, cap.success)
    assert visible_change(late, nominal) == 0.0
    # one pixel too few of a 32x32 view is not visible; one more is
    n = int(np.ceil(VISIBLE_CHANGE * 32 * 32))
    for changed, visible in ((n - 1, False), (n, True)):
        keys = [Keyframe(k.stamp, {v: f.copy() for v, f in k.frames.items()}) for k in nominal.keys]
        keys[-1].frames["front"].reshape(-1, 3)[:changed] ^= 0x80  # by 128 levels: more than PIXEL_CHANGE
        edited = Capture(keys, nominal.pose_stamps, nominal.poses, nominal.keys[-2].stamp, True)
        res = CaseResult("camera_black", 0, "front", edited.onset, 1, change=visible_change(edited, nominal))
        assert res.visible is visible


def test_arm_faults_target_the_arms_the_task_moves() -> None:
    from a2w.sim.faults import random_faults
    from a2w.sim.tasks import get_task

    pick, lift = get_task("pick_cube"), get_task("lift_box")
    for seed in range(20):
        info = pick.sample(np.random.default_rng(seed))
        assert pick.active_arms(info) == (info["arm"],)
        for name in ("arm_stall", "gripper_fail"):
            assert random_faults(seed, [name], "cube", arms=pick.active_arms(info))[0].target == info["arm"]
    assert lift.active_arms(lift.sample(np.random.default_rng(0))) == ("left", "right")
    with pytest.raises(ValueError, match="arms"):
        random_faults(0, ["arm_stall"], "cube", arms=("middle",))
    with pytest.raises(ValueError, match="arms"):
        random_faults(0, ["arm_stall"], "cube", arms=())


def _eval(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "a2w.cli", "shadow", "eval", *args], capture_output=True,
                          text=True, timeout=900, cwd=ROOT)


def test_the_command_rates_a_checkpoint_and_the_baseline_on_the_same_episodes(tmp_path: Path) -> None:
    ckpt = tiny_worldmodel(tmp_path / "sim")
    out = tmp_path / "eval.json"
    r = _eval("--checkpoint", str(ckpt), "--baseline", "--calibrate", "1", "--warn-alpha", "0.5",
              "--alarm-alpha", "0.25", "--faults", "camera_black", "--episodes", "1", "--nominal", "1",
              "--steps", "1", "--image-size", "32", "32", "--views", "front", "--json", str(out))
    assert r.returncode == 0, r.stderr
    assert "A2World-sim on pick_cube" in r.stdout and "copy-last-frame on pick_cube" in r.stdout
    data = json.loads(out.read_text())
    for name in ("A2World-sim", "copy-last-frame"):
        rows = data[name]["rows"]
        assert set(rows) == {"camera_black", "all faults", NOMINAL}
        cases = data[name]["cases"]
        assert [c["fault"] for c in cases] == ["camera_black", NOMINAL]
        assert cases[0]["onset"] is not None and len(cases[0]["scores"]) == cases[0]["windows"] >= 3
    # the same captured episodes for both predictors
    assert data["A2World-sim"]["cases"][0]["window_ends"] == data["copy-last-frame"]["cases"][0]["window_ends"]


@pytest.mark.parametrize("args, words", [
    ([], "give --checkpoint, --baseline or both"),
    (["--baseline"], "--baseline needs --calibrate"),
    (["--baseline", "--calibrate", "2", "--faults", "meteor"], "unknown fault 'meteor'"),
    (["--baseline", "--calibrate", "2", "--views", "top"], "not rig views"),
    (["--baseline", "--calibrate", "2", "--episodes", "0", "--nominal", "0"], "nothing to evaluate"),
    (["--checkpoint", "CKPT"], "no calibrated thresholds"),
])
def test_the_command_refuses_what_it_cannot_rate(tmp_path: Path, args: list, words: str) -> None:
    if "CKPT" in args:
        args = [str(tiny_worldmodel(tmp_path / "sim")) if a == "CKPT" else a for a in args]
    r = _eval(*args)
    assert r.returncode == 2 and words in r.stderr, r.stderr


def test_overlapping_windows_move_the_history_on_by_their_stride(black: tuple) -> None:
    cap, _ = black
    back_to_back, overlapping = capture_windows(cap), capture_windows(cap, 10)
    assert [w.keys[0] for w in overlapping] == cap.keys[0:len(cap.keys) - 20:10]
    assert all(len(w.keys) == 21 and w.advance == 10 for w in overlapping)
    assert len(overlapping) in (2 * len(back_to_back) - 1, 2 * len(back_to_back))
    # after two windows 1 s apart the history holds exactly what one 2 s window leaves: the real frames and
    # executed actions up to the next window's start, each once
    a, b = _copy_last(), _copy_last()
    for w in overlapping[:2]:
        a.score(w)
    b.score(back_to_back[0])
    assert a.history.n_nodes == b.history.n_nodes == 20 + 20
    assert np.array_equal(a.history.actions, b.history.actions)
    assert all(np.array_equal(x, y) for va, vb in zip(a.history.frames, b.history.frames) for x, y in zip(va, vb))
    assert a.node_stamps == b.node_stamps
    with pytest.raises(ValueError, match="stride"):
        capture_windows(cap, 0)
    with pytest.raises(ValueError, match="advance"):
        Window(0, back_to_back[0].keys, back_to_back[0].actions, 21)
