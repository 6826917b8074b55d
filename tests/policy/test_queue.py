"""The action queue's executor step with a fake clock: due, stale, stall, hold, splice."""

from __future__ import annotations

import numpy as np
import pytest

from a2w.policy import ActionQueue

P = 1.0 / 30.0


def targets(n: int, x0: float = 0.0) -> np.ndarray:
    """n dual-arm targets moving 1 mm per step in x."""
    out = np.zeros((n, 2, 8))
    out[:, :, 0] = x0 + 1e-3 * np.arange(n)[:, None]
    out[:, :, 6] = 1.0
    out[:, :, 7] = 0.5
    return out


def filled(n: int = 5, t0: float = P) -> ActionQueue:
    q = ActionQueue(P)
    q.splice(t0 + P * np.arange(n), targets(n))
    return q


def test_each_action_is_sent_at_its_tick_then_the_queue_holds_its_last_target() -> None:
    q = filled(5)
    sent = []
    for k in range(1, 6):
        tick = q.due(k * P + 0.3 * P)  # ticks a little out of phase with the action grid
        assert not tick.hold and tick.dropped == 0
        assert tick.stamp == pytest.approx(k * P)
        sent.append(tick.target[0, 0])
    np.testing.assert_allclose(sent, 1e-3 * np.arange(5))
    for k in range(6, 9):
        tick = q.due(k * P)
        assert tick.hold and tick.stamp is None
        np.testing.assert_array_equal(tick.target, targets(5)[-1])
    assert (q.sent, q.stalls, q.dropped, len(q)) == (5, 3, 0, 0)


def test_before_anything_was_sent_an_empty_queue_holds_without_a_target_and_is_no_stall() -> None:
    q = ActionQueue(P)
    for k in range(3):
        tick = q.due(k * P)
        assert tick.hold and tick.target is None
    assert q.stalls == 0


@pytest.mark.parametrize("late_ticks", [1, 2, 4])
def test_stale_actions_are_dropped_and_counted_never_replayed(late_ticks: int) -> None:
    q = filled(10)
    assert q.due(P).stamp == pytest.approx(P)
    # The executor misses late_ticks ticks; the actions of the missed ticks are stale.
    t = (2 + late_ticks) * P
    tick = q.due(t)
    assert tick.stamp == pytest.approx(t) and tick.dropped == late_ticks
    stamps = [q.due(t + k * P).stamp for k in range(1, 10 - 1 - late_ticks)]
    assert all(s > t for s in stamps), "a dropped action came back"
    assert q.dropped == late_ticks and q.sent == 1 + 1 + len(stamps)


def test_a_gap_in_the_queue_is_a_stall_and_a_hold() -> None:
    q = ActionQueue(P)
    q.splice(np.array([P, 2 * P, 5 * P]), targets(3))
    assert not q.due(P).hold and not q.due(2 * P).hold
    assert q.due(3 * P).hold and q.due(4 * P).hold
    assert q.due(5 * P).stamp == pytest.approx(5 * P)
    assert q.stalls == 2 and q.dropped == 0


def test_splice_keeps_what_comes_before_and_replaces_what_follows() -> None:
    q = filled(6)
    replaced = q.splice(P * np.array([4.0, 5.0, 6.0, 7.0, 8.0]), targets(5, x0=1.0))
    assert replaced == 3
    np.testing.assert_allclose(q.times, P * np.arange(1, 9))
    np.testing.assert_allclose(q.targets[:3, 0, 0], [0.0, 1e-3, 2e-3])
    np.testing.assert_allclose(q.targets[3:, 0, 0], 1.0 + 1e-3 * np.arange(5))


def _bad_runs() -> list[tuple[str, np.ndarray, np.ndarray]]:
    t = P * np.arange(10, 13)
    nan, inf, ninf = targets(3), targets(3), targets(3)
    nan[1, 0, 2] = np.nan
    inf[2, 1, 7] = np.inf
    ninf[0, 0, 4] = -np.inf
    return [
        ("nan target", t, nan), ("inf target", t, inf), ("-inf quaternion", t, ninf),
        ("nan time", np.array([t[0], np.nan, t[2]]), targets(3)),
        ("times not increasing", t[::-1].copy(), targets(3)),
        ("repeated time", np.array([t[0], t[0], t[2]]), targets(3)),
        ("shape per step", t, np.zeros((3, 2, 7))),
        ("count mismatch", t, targets(4)),
    ]


@pytest.mark.parametrize("name,times,bad", _bad_runs(), ids=[b[0] for b in _bad_runs()])
def test_a_bad_run_is_refused_and_the_committed_actions_stay(name: str, times: np.ndarray, bad: np.ndarray) -> None:
    q = filled(5)
    before_t, before_x = q.times, q.targets
    with pytest.raises(ValueError):
        q.splice(times, bad)
    np.testing.assert_array_equal(q.times, before_t)
    np.testing.assert_array_equal(q.targets, before_x)
    ticks = [q.due(k * P) for k in range(1, 9)]
    assert all(np.all(np.isfinite(tk.target)) for tk in ticks)
    assert [tk.hold for tk in ticks] == [False] * 5 + [True] * 3


@pytest.mark.parametrize("bad_now", [np.nan, np.inf])
def test_a_non_finite_tick_time_is_an_error(bad_now: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        filled().due(bad_now)


def test_ticks_must_not_go_back_in_time() -> None:
    q = filled()
    q.due(3 * P)
    with pytest.raises(ValueError, match="back in time"):
        q.due(2 * P)


def test_clear_drops_and_counts_everything() -> None:
    q = filled(5)
    q.due(P)
    assert q.clear() == 4 and q.dropped == 4 and len(q) == 0
    assert q.due(2 * P).hold


@pytest.mark.parametrize("history", [1, 3, 90])
def test_committed_after_gives_the_recently_sent_then_the_pending_actions(history: int) -> None:
    q = ActionQueue(P, history=history)
    q.splice(P * np.arange(1, 11), targets(10))
    for k in range(1, 6):
        q.due(k * P)
    t, x = q.committed_after(0.0)
    kept = min(history, 5)
    np.testing.assert_allclose(t, P * np.arange(6 - kept, 11))
    np.testing.assert_allclose(x, targets(10)[5 - kept:])
    t, _ = q.committed_after(3.5 * P)
    np.testing.assert_allclose(t, P * np.arange(max(4, 6 - kept), 11))
