"""A2World-sim history: arc-length sampling edge cases, path features, bookkeeping."""

from __future__ import annotations

import numpy as np
import pytest

from a2world.history import (
    HistoryBuffer,
    action_path_features,
    node_grippers,
    sample_history_indices,
    step_lengths,
)


def _actions(n, rng=None, scale=0.01):
    rng = rng or np.random.default_rng(0)
    a = rng.normal(0, scale, (n, 14))
    a[:, 6] = 1.0
    a[:, 13] = 0.0
    return a


def test_step_length_weights_both_arms_and_ignores_grippers():
    a = np.zeros((1, 14))
    a[0, [0, 1, 2]] = [3, 0, 0]  # left translation
    a[0, 10] = 4  # right rotation
    a[0, [6, 13]] = [9, 9]  # grippers ignored
    assert step_lengths(a)[0] == pytest.approx(np.sqrt(9 + 0.25 * 16))


def test_zero_arc_gives_first_node_then_last():
    idx = sample_history_indices(np.zeros((19, 14)), 20)
    assert idx.tolist() == [0] * 19 + [19]
    # the very first chunk: 20 copies of the start frame (all sampled nodes show frame 0)
    assert sample_history_indices(np.zeros((0, 14)), 20).tolist() == [0] * 20


def test_uniform_motion_picks_evenly_spaced_nodes():
    a = np.zeros((38, 14))
    a[:, 0] = 0.01  # constant speed -> arc proportional to node index
    idx = sample_history_indices(a, 20)
    assert idx.tolist() == list(range(0, 39, 2))


def test_sampling_concentrates_where_the_arm_moves_and_keeps_anchors():
    a = np.zeros((59, 14))
    a[40:, 3] = 0.2  # only the last 19 actions move (rotation only)
    idx = sample_history_indices(a, 20)
    assert idx[0] == 0 and idx[-1] == 59
    assert np.all(np.diff(idx) >= 0)
    # all but the forced first index land in the moving part
    assert np.all(idx[1:] >= 40)


def test_duplicates_when_fewer_nodes_than_budget():
    a = np.zeros((4, 14))
    a[:, 1] = 1.0
    idx = sample_history_indices(a, 20)
    assert len(idx) == 20 and idx[0] == 0 and idx[-1] == 4
    assert set(idx.tolist()) == {0, 1, 2, 3, 4}
    with pytest.raises(ValueError, match="budget"):
        sample_history_indices(a, 1)
    with pytest.raises(ValueError, match="actions"):
        sample_history_indices(np.zeros((4, 7)), 20)


def test_path_features_against_direct_computation():
    rng = np.random.default_rng(3)
    a = _actions(50, rng)
    a[10:20, 6] = 0.0  # two gripper toggles (at edges into node 11 and node 21)
    slots = [0, 5, 12, 30]
    targets = [31, 40, 50]
    f = action_path_features(a, slots, targets)
    assert f.shape == (3, 4, 22) and f.dtype == np.float32
    g = node_grippers(a)
    closed = g > 0.5
    toggle_edges = np.flatnonzero(closed[1:] != closed[:-1])
    for ti, tg in enumerate(targets):
        for si, sl in enumerate(slots):
            path = a[sl:tg, :6]
            mean = path.mean(0)
            exp = np.concatenate(
                [
                    np.tanh(mean[:3] / 0.05),
                    np.tanh(mean[3:] / 0.25),
                    np.abs(path).mean(0),
                    np.sqrt((path**2).mean(0)),
                    [(tg - sl) / 50, g[sl], g[tg]],
                    [np.sum((toggle_edges >= sl) & (toggle_edges < tg)) / len(toggle_edges)],
                ]
            )
            np.testing.assert_allclose(f[ti, si], exp, rtol=1e-5, atol=1e-6)


def test_path_features_reject_targets_before_slots():
    with pytest.raises(ValueError, match="after"):
        action_path_features(_actions(10), [5], [5])


def test_history_buffer_bookkeeping():
    first = [np.full((4, 4, 3), v, np.uint8) for v in (10, 20)]
    buf = HistoryBuffer(first)
    assert buf.n_nodes == 20 and buf.actions.shape == (19, 14)
    chunk = _actions(20)
    frames, state, idx = buf.select(chunk)
    assert idx.tolist() == [0] * 19 + [19]
    assert [f.shape for f in frames] == [(20, 4, 4, 3)] * 2
    assert np.all(frames[0] == 10) and np.all(frames[1] == 20)
    assert state.shape == (20, 20, 22)
    # Target k is k+1 edges past the current node (slot 19): length ratio (k+1)/39.
    np.testing.assert_allclose(state[:, -1, 18], (np.arange(20) + 1) / 39, rtol=1e-6)
    # zero-padded start has gripper 0, chunk has gripper 1: the toggle lies on every path
    assert np.all(state[:, :, 21] == 1.0)
    new = [np.stack([np.full((4, 4, 3), 100 + k, np.uint8) for k in range(20)])] * 2
    buf.append(new, chunk)
    assert buf.n_nodes == 40 and len(buf.frames[0]) == 40
    frames, state, idx = buf.select(_actions(20, np.random.default_rng(9)))
    assert idx[-1] == 39 and frames[0][-1][0, 0, 0] == 119
    with pytest.raises(ValueError, match="views"):
        buf.append(new[:1], chunk)
