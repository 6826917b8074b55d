"""The shadow's pure pieces: executed motion in A2World-sim's 10 Hz convention (against a2w.actions and
a2world.history), SSIM, conformal thresholds and the alarm's hysteresis."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from a2w.actions import encode_dual
from a2w.shadow.alarm import AlarmState, Level, Thresholds, conformal_threshold
from a2w.shadow.motion import actions_10hz, grid_poses, moving_steps
from a2w.shadow.scores import FROZEN_MIN_KEYS, frozen_seconds, ssim, view_score
from a2world.history import HistoryBuffer, sample_history_indices, step_lengths


def _path(n: int, seed: int = 0) -> np.ndarray:
    """(n, 2, 8) smooth dual-arm poses on the 30 Hz grid with turning orientations and a gripper ramp."""
    t = np.arange(n) / 30.0
    out = np.zeros((n, 2, 8))
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.5, 1.5, size=(2, 3))
    for a in range(2):
        out[:, a, :3] = 0.4 + 0.05 * np.sin(np.outer(t, w[a]))
        out[:, a, 3:7] = Rotation.from_euler("xyz", 0.3 * np.sin(np.outer(t, w[a][::-1]))).as_quat()
        out[:, a, 7] = np.clip(1.0 - t / t[-1], 0, 1)
    return out


def test_composed_10hz_actions_equal_encoding_every_third_pose() -> None:
    poses = _path(61)
    acts = actions_10hz(poses)
    assert acts.shape == (20, 14)
    assert np.allclose(acts, encode_dual(poses[::3]), atol=1e-9)


@pytest.mark.parametrize("n", [0, 3, 60, 62])
def test_composition_refuses_a_partial_grid(n: int) -> None:
    with pytest.raises(ValueError):
        actions_10hz(np.zeros((n, 2, 8)))


def test_grid_poses_hold_the_newest_sample_and_refuse_a_time_before_the_first() -> None:
    stamps = np.array([0.0, 0.01, 0.025, 0.05])
    poses = np.arange(4)[:, None, None] * np.ones((4, 2, 8))
    got = grid_poses(stamps, poses, np.array([0.0, 0.02, 0.0333, 0.06]))
    assert got[:, 0, 0].tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="no pose at or before"):
        grid_poses(stamps, poses, np.array([-0.1]))


def test_executed_windows_feed_the_release_history_in_arc_length() -> None:
    """Windows of executed motion appended to a2world.history.HistoryBuffer: the history nodes it picks
    are the release's arc-length-uniform sampling over every executed 10 Hz action."""
    poses = _path(3 * 60 + 1)  # three 2 s windows
    frames = [np.zeros((16, 16, 3), np.uint8)] * 3
    hist = HistoryBuffer(frames)
    windows = [actions_10hz(poses[60 * k: 60 * k + 61]) for k in range(3)]
    for w in windows:
        hist.append([[np.zeros((16, 16, 3), np.uint8)] * 20] * 3, w)
    executed = np.concatenate(windows)
    assert np.allclose(hist.actions[-60:], executed)
    _, state, idx = hist.select(windows[0])
    assert np.array_equal(idx, sample_history_indices(hist.actions, 20))
    assert state.shape == (20, 20, 22)
    # A 10 Hz step covers three 30 Hz steps' arc length (to first order on a smooth path).
    fine = step_lengths(encode_dual(poses[:61]))
    assert np.allclose(step_lengths(windows[0]), fine.reshape(20, 3).sum(1), rtol=0.05)


def test_ssim_is_one_for_equal_frames_symmetric_and_falls_with_noise() -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    assert ssim(a, a) == pytest.approx(1.0)
    noisy = np.clip(a.astype(int) + rng.normal(0, 40, a.shape), 0, 255).astype(np.uint8)
    s = ssim(a, noisy)
    assert s < 0.9 and s == pytest.approx(ssim(noisy, a))
    assert ssim(a, np.zeros_like(a)) < s
    with pytest.raises(ValueError):
        ssim(a, a[:10])
    with pytest.raises(ValueError):
        ssim(a.astype(np.float32), a.astype(np.float32))
    vs = view_score("front", np.stack([a, a]), np.stack([a, noisy]), latent_mse=0.5, latent_weight=2.0)
    assert vs.score == pytest.approx(1 - vs.ssim + 1.0)


def test_conformal_threshold_is_the_right_order_statistic_and_refuses_too_few_scores() -> None:
    scores = np.arange(1, 20, dtype=float)  # 19 scores
    assert conformal_threshold(scores, 0.1) == 18.0  # ceil(20 * 0.9) = 18th smallest
    assert conformal_threshold(scores, 0.05) == 19.0
    with pytest.raises(ValueError, match="need at least"):
        conformal_threshold(scores[:5], 0.05)
    with pytest.raises(ValueError):
        conformal_threshold([1.0, math.nan, 2.0], 0.5)
    # The guarantee is marginal: over many calibration sets and a fresh nominal score each, the
    # false-alarm rate is at most alpha (and close to it).
    rng = np.random.default_rng(1)
    trials = 4000
    cal, fresh = rng.normal(size=(trials, 99)), rng.normal(size=trials)
    warn = np.array([conformal_threshold(c, 0.1) for c in cal])
    assert 0.08 <= np.mean(fresh > warn) <= 0.1 + 0.012


def test_alarm_levels_enter_and_leave_with_hysteresis(tmp_path) -> None:
    t = Thresholds(warn=1.0, alarm=2.0)
    t.save(tmp_path / "t.json")
    assert Thresholds.load(tmp_path / "t.json") == t
    a = AlarmState(t, enter=2, leave=3, release=0.8)
    seq = [0.5, 3.0, 0.5, 3.0, 3.0, 1.9, 1.9, 1.5, 1.5, 1.5, 0.9, 0.7, 0.7, 0.7]
    got = [a.update(s) for s in seq]
    # one high score is not enough; the alarm holds until three scores fall under 0.8 of its threshold,
    # then the warning until three fall under 0.8 of the warning threshold
    assert got == [Level.OK] * 4 + [Level.ALARM] * 5 + [Level.WARN] * 4 + [Level.OK]
    assert a.alarms == 1
    b = AlarmState(t, enter=2)
    assert [b.update(x) for x in (math.inf, math.nan)] == [Level.OK, Level.ALARM]  # non-finite is not nominal
    with pytest.raises(ValueError):
        Thresholds(warn=2.0, alarm=1.0)
    with pytest.raises(ValueError, match="not shadow thresholds"):
        (tmp_path / "bad.json").write_text("{}")
        Thresholds.load(tmp_path / "bad.json")


def test_the_history_is_bounded_and_starts_again_from_the_next_window() -> None:
    from a2w.shadow.evaluate import CopyLastFrame
    from a2w.shadow.predictor import Keyframe, ShadowPredictor, Window

    poses = _path(3 * 60 + 1)
    img = np.zeros((8, 8, 3), np.uint8)
    wins = [Window(k, [Keyframe(0.1 * (20 * k + i), {"front": img + k}) for i in range(21)],
                   actions_10hz(poses[60 * k: 60 * k + 61])) for k in range(3)]
    unbounded = ShadowPredictor(CopyLastFrame(), ["front"], [2], latent_weight=0.0)
    bounded = ShadowPredictor(CopyLastFrame(), ["front"], [2], latent_weight=0.0, max_history=50)
    for w in wins:
        unbounded.score(w)
        bounded.score(w)
    assert unbounded.history.n_nodes == 20 + 60 and unbounded.restarts == 0
    # 20 initial nodes + 20 per window: past 50 after the second window, so the third starts afresh
    assert bounded.restarts == 1
    assert bounded.history.n_nodes == 20 + 20
    assert bounded.history.frames[0][0][0, 0, 0] == 2  # seeded from the third window's first frame


def _still_path(n: int) -> np.ndarray:
    """(n, 2, 8) poses on the 30 Hz grid of a rig holding still (grippers open)."""
    out = np.zeros((n, 2, 8))
    out[:, :, :3] = 0.4
    out[:, :, 6] = 1.0  # identity quaternion (x, y, z, w)
    out[:, :, 7] = 1.0
    return out


@pytest.mark.parametrize("arm, dim, size, moves", [
    (0, 0, 0.0009, False), (0, 0, 0.0011, True),  # TCP translation per 0.1 s step: 1 mm
    (1, 2, 0.0011, True),
    (0, "yaw", 0.4, False), (0, "yaw", 0.6, True), (1, "roll", 0.6, True),  # rotation: 0.5 deg
    (0, 7, 0.015, False), (1, 7, 0.03, True),  # gripper opening: 0.02
])
def test_a_step_moves_an_arm_when_its_tcp_or_gripper_changes_past_the_limits(arm: int, dim, size: float,
                                                                               moves: bool) -> None:
    poses = _still_path(61)
    k = 3 * 10  # the 10th 10 Hz step changes, by `size` over its three 30 Hz steps
    if dim in ("yaw", "roll"):
        axis = "z" if dim == "yaw" else "x"
        poses[k:, arm, 3:7] = Rotation.from_euler(axis, size, degrees=True).as_quat()
    else:
        poses[k:, arm, dim] += size
    acts = actions_10hz(poses)
    name = ("left", "right")[arm]
    other = ("left", "right")[1 - arm]
    steps = moving_steps(acts, (name,))
    assert steps[9] is np.True_ if moves else not steps.any()
    assert steps.sum() == moves  # one step moved, the rest held still
    assert not moving_steps(acts, (other,)).any()  # the other arm held still
    assert moving_steps(acts, ("left", "right")).sum() == moves
    assert not moving_steps(acts, ()).any()


def test_moving_steps_refuses_actions_of_the_wrong_shape() -> None:
    with pytest.raises(ValueError, match="actions must be"):
        moving_steps(np.zeros((20, 7)), ("left",))


def test_a_view_is_frozen_only_when_it_stands_bit_still_through_motion_for_three_keyframes() -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (21, 8, 8, 3), dtype=np.uint8)
    moving = np.ones(20, dtype=bool)
    assert frozen_seconds(frames, moving, 0.1) == 0.0  # every frame new
    for still in (1, 2):  # a dropped frame or two repeat the last one: not frozen
        f = frames.copy()
        f[5:6 + still] = f[5]
        assert frozen_seconds(f, moving, 0.1) == 0.0
    f = frames.copy()
    f[12:] = f[12]  # frozen from keyframe 12 on: eight repeats
    assert frozen_seconds(f, moving, 0.1) == pytest.approx(0.8)
    held = moving.copy()
    held[14:] = False  # the rig stopped at step 14: a still image is what it should see from then on
    assert FROZEN_MIN_KEYS == 3 and frozen_seconds(f, held, 0.1) == 0.0  # two repeats through motion only
    f[15, 0, 0, 0] ^= 1  # one bit of sensor noise breaks the run: two repeats, then four
    assert frozen_seconds(f, moving, 0.1) == pytest.approx(0.4)
    with pytest.raises(ValueError, match="one more frame"):
        frozen_seconds(frames, moving[:-1], 0.1)


def test_a_camera_frame_paired_again_is_a_drop_not_a_freeze() -> None:
    """The live node pairs a late camera's last frame again (same camera stamp): those steps neither count as
    frozen nor break a frozen stretch; a frozen camera keeps sending new stamps with the same image."""
    rng = np.random.default_rng(2)
    frames = rng.integers(0, 255, (21, 8, 8, 3), dtype=np.uint8)
    stamps = np.arange(21) * 0.1
    moving = np.ones(20, dtype=bool)
    late = frames.copy()
    late[4:9] = late[4]
    held = stamps.copy()
    held[4:9] = held[4]  # one camera frame paired with five keyframes: a stalled stream, not a frozen one
    assert frozen_seconds(late, moving, 0.1, held) == 0.0
    assert frozen_seconds(late, moving, 0.1) == pytest.approx(0.4)  # without stamps it would look frozen
    frozen = frames.copy()
    frozen[10:] = frozen[10]  # frozen from keyframe 10, new stamps every time...
    gap = stamps.copy()
    gap[14:16] = gap[13]  # ...and two keyframes in the middle paired with the same late frame
    assert frozen_seconds(frozen, moving, 0.1, gap) == pytest.approx(0.8)  # 10 steps, 2 of them repeats
    with pytest.raises(ValueError, match="source stamp"):
        frozen_seconds(frames, moving, 0.1, stamps[:-1])


def test_a_frozen_view_adds_to_its_score_and_only_to_its_own() -> None:
    rng = np.random.default_rng(1)
    real = rng.integers(0, 255, (20, 16, 16, 3), dtype=np.uint8)
    base = view_score("front", real, real)
    assert base.score == pytest.approx(0.0, abs=1e-9) and base.frozen == 0.0
    frozen = view_score("front", real, real, frozen=0.4, freeze_weight=3.0)
    assert frozen.score == pytest.approx(1.2) and frozen.frozen == 0.4
    assert view_score("front", real, real, frozen=0.4, freeze_weight=0.0).score == pytest.approx(0.0, abs=1e-9)
