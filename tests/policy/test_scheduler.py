"""The chunk scheduler with a fake clock: request timing, reference stamp, dropping what passed,
the RTC prefix, the blend fallback, and bad chunks refused with the committed actions kept."""

from __future__ import annotations

import math

import numpy as np
import pytest

from a2w.actions import compose_chunk, decode_dual
from a2w.msgs.common import Pose
from a2w.policy import ActionQueue, ChunkScheduler, DelayWindow, Mode
from a2w.policy.scheduler import blend_targets, soft_mask

P = 1.0 / 30.0
H = 60


def measured(x: float = 0.4) -> tuple[Pose, Pose]:
    q = np.array([0.0, 0.0, 0.3826834, 0.9238795])  # 45 degrees about z: deltas are in the TCP frame
    return Pose(np.array([x, 0.2, 0.3]), q), Pose(np.array([x, -0.2, 0.3]), q)


def steps(dx: float = 1e-3, n: int = H) -> np.ndarray:
    d = np.zeros((n, 14))
    d[:, 0] = d[:, 7] = dx
    d[:, 6] = d[:, 13] = 0.5
    return d


def sched(mode: Mode = Mode.NAIVE, delay: float = 0.3, **kw: object) -> ChunkScheduler:
    return ChunkScheduler(ActionQueue(P), mode, H, delays=DelayWindow(initial=delay), **kw)


def first_chunk(s: ChunkScheduler, t: float = 0.0) -> None:
    req = s.request(t, t, measured())
    assert s.on_chunk(t, req.seq, t, steps()).accepted
    s.delays = DelayWindow(initial=s.delays.initial)  # forget the instant delay this start measured


def test_p95_not_max_so_one_cold_start_does_not_inflate_the_estimate() -> None:
    w = DelayWindow(size=20, initial=0.7)
    assert w.p95() == 0.7 and len(w) == 0
    w.add(5.0)  # cold start: compiling, cache warm-up
    for _ in range(40):
        w.add(0.2)
    assert len(w) == 20 and w.p95() == pytest.approx(0.2)
    for bad in (-0.1, math.nan, math.inf):
        with pytest.raises(ValueError):
            w.add(bad)


@pytest.mark.parametrize("delay,margin", [(0.2, 0.1), (0.5, 0.1), (1.0, 0.05)])
def test_async_requests_when_the_remaining_horizon_falls_below_p95_plus_margin(delay: float, margin: float) -> None:
    s = sched(Mode.NAIVE, delay, margin=margin)
    assert s.should_request(0.0)  # nothing committed
    first_chunk(s)  # measures an instant delay of 0; the window's p95 must still follow the bulk
    for _ in range(30):
        s.delays.add(delay)
    last = H * P
    ticks = np.arange(1, H + 1) * P
    asked = [t for t in ticks if s.should_request(t)]
    assert asked and asked[0] == pytest.approx(ticks[ticks > last - delay - margin + 1e-9][0])
    s.request(asked[0], asked[0], measured())
    assert not s.should_request(asked[0] + P), "a second request while one is in flight"


def test_sync_requests_only_when_nothing_is_left() -> None:
    s = sched(Mode.SYNC, 0.3)
    first_chunk(s)
    assert not any(s.should_request(k * P) for k in range(1, H))
    assert s.should_request(H * P)


def test_the_chunk_is_referenced_to_its_observation_and_composed_onto_the_measured_pose() -> None:
    s = sched(Mode.NAIVE)
    first_chunk(s)
    for k in range(1, 16):
        s.queue.due(k * P)
    obs, arrival = 15 * P, 15 * P + 0.24
    req = s.request(obs + 0.05, obs, measured(0.43))
    res = s.on_chunk(arrival, req.seq, obs, steps(2e-3))
    assert res.accepted and res.delay == pytest.approx(0.19)
    expected = compose_chunk(steps(2e-3), measured(0.43), obs, P, req.seq)
    n_past = int(np.count_nonzero(expected.times <= arrival - P / 2))  # their tick window has closed
    assert res.stale == n_past == res.first_step and res.switch_at == pytest.approx(expected.times[n_past])
    new = s.queue.times >= res.switch_at - 1e-9
    np.testing.assert_allclose(s.queue.times[new], expected.times[n_past:])
    np.testing.assert_allclose(s.queue.targets[new], expected.targets[n_past:])


def test_actions_that_passed_while_inferring_are_dropped_not_queued() -> None:
    s = sched(Mode.NAIVE)
    first_chunk(s)
    for k in range(1, 31):
        s.queue.due(k * P)
    req = s.request(30 * P, 30 * P, measured())
    for k in range(31, 41):
        s.queue.due(k * P)
    res = s.on_chunk(40.2 * P, req.seq, 30 * P, steps())
    assert res.accepted and res.first_step == 10 and res.stale == 10
    assert s.queue.times[0] == pytest.approx(41 * P)


@pytest.mark.parametrize("delay,margin,max_prefix,expect", [(0.3, 0.1, 20, 12), (0.1, 0.0, 20, 3),
                                                             (1.0, 0.1, 20, 20), (0.3, 0.1, 5, 5)])
def test_rtc_prefix_is_the_committed_actions_of_the_inference_window(delay: float, margin: float, max_prefix: int,
                                                                     expect: int) -> None:
    s = sched(Mode.RTC, delay, margin=margin, max_prefix=max_prefix)
    first_chunk(s)
    for k in range(1, 21):
        s.queue.due(k * P)
    # The arm lags its targets: the measured pose is not the committed one.
    lagging = measured(0.4 + 0.015)
    committed_t, committed_x = s.queue.after(20 * P)
    req = s.request(20 * P, 20 * P, lagging)
    assert req.prefix is not None and len(req.prefix) == expect
    np.testing.assert_allclose(req.prefix_times, committed_t[:expect])
    # Composed back onto the measured pose the prefix gives exactly the committed targets.
    np.testing.assert_allclose(decode_dual(lagging, req.prefix.astype(np.float64))[:, :, :3],
                               committed_x[:expect, :, :3], atol=1e-6)
    # The model continues the prefix; the prefix stays committed, untouched, and the chunk follows it.
    chunk = steps(2e-3)
    chunk[:expect] = req.prefix
    res = s.on_chunk(20 * P + 0.5 * delay, req.seq, 20 * P, chunk)
    assert res.accepted and res.prefix_length == expect and res.blended == 0
    np.testing.assert_array_equal(s.queue.targets[:expect], committed_x[:expect])
    assert res.switch_at == pytest.approx(committed_t[expect - 1] + P)


@pytest.mark.parametrize("age_ticks", [1, 3, 6])
def test_rtc_prefix_starts_right_after_an_observation_older_than_the_last_tick(age_ticks: int) -> None:
    """Camera latency: some committed actions after the observation were already sent; they belong
    to the prefix all the same, since the chunk's step 1 is one period after the observation."""
    s = sched(Mode.RTC, 0.3)
    first_chunk(s)
    for k in range(1, 21):
        s.queue.due(k * P)
    obs = (20 - age_ticks) * P
    all_t = np.concatenate([P * np.arange(1, 21), s.queue.times])
    req = s.request(20 * P, obs, measured())
    assert req.prefix is not None and len(req.prefix) == math.ceil((age_ticks * P + 0.4) / P - 1e-6)
    np.testing.assert_allclose(req.prefix_times, all_t[20 - age_ticks:20 - age_ticks + len(req.prefix)])
    chunk = steps()
    chunk[: len(req.prefix)] = req.prefix
    res = s.on_chunk(20 * P + 0.3, req.seq, obs, chunk)
    assert res.accepted and res.switch_at == pytest.approx(req.prefix_times[-1] + P)


def test_a_dropped_action_ends_the_prefix() -> None:
    s = sched(Mode.RTC, 0.3)
    first_chunk(s)
    for k in (1, 2, 3, 5, 6):  # the tick at 4P was missed: its action was dropped, never sent
        s.queue.due(k * P)
    req = s.request(6 * P, 2 * P, measured())
    np.testing.assert_allclose(req.prefix_times, [3 * P])


def test_without_rtc_there_is_no_prefix() -> None:
    for mode in (Mode.NAIVE, Mode.BLEND, Mode.SYNC):
        s = sched(mode)
        first_chunk(s)
        assert s.request(P, P, measured()).prefix is None


def test_soft_mask_starts_at_one_and_decays_to_zero() -> None:
    w = soft_mask(30)
    assert w[0] == 1.0 and np.all(np.diff(w) < 0) and 0 < w[-1] < 0.05
    assert np.all(w <= 1.0 - np.arange(30) / 30 + 1e-12), "hands over no later than a linear ramp"


def test_blend_continues_the_committed_trajectory_then_hands_over() -> None:
    s = sched(Mode.BLEND, 0.2)
    first_chunk(s)
    for k in range(1, 21):
        s.queue.due(k * P)
    req = s.request(20 * P, 20 * P, measured())
    old_t, old_x = s.queue.after(26 * P - 1e-9)
    far = steps(1e-3)
    far[0, 1] = far[0, 8] = 0.05  # the new chunk's mode is 5 cm to the side
    res = s.on_chunk(25.5 * P, req.seq, 20 * P, far)
    assert res.accepted and res.blended == len(old_t) == 35
    new_x = compose_chunk(far, measured(), 20 * P, P, req.seq).targets[5:]
    got = s.queue.targets[s.queue.times >= res.switch_at - 1e-9]
    np.testing.assert_allclose(got[0], old_x[0], atol=1e-12)
    side = np.abs(got[: res.blended, 0, 1] - old_x[:, 0, 1]) / np.abs(new_x[:35, 0, 1] - old_x[:, 0, 1])
    assert np.all(np.diff(side) > 0) and side[-1] > 0.9
    np.testing.assert_allclose(got[res.blended:], new_x[35:])
    assert np.allclose(np.linalg.norm(got[:, :, 3:7], axis=-1), 1.0)


def test_blend_slerps_quaternions() -> None:
    old = np.zeros((1, 2, 8))
    new = np.zeros((1, 2, 8))
    old[..., 6] = 1.0
    new[..., 5], new[..., 6] = -np.sin(np.pi / 4), -np.cos(np.pi / 4)  # 90 deg about z, the long-way sign
    q = blend_targets(old, new, np.array([0.5]))[0, 0, 3:7]
    np.testing.assert_allclose(q, [0, 0, np.sin(np.pi / 8), np.cos(np.pi / 8)], atol=1e-12)


def _bad_chunks() -> list[tuple[str, np.ndarray, str]]:
    nan, inf, ninf, huge = steps(), steps(), steps(), steps()
    nan[10, 3] = np.nan
    inf[0, 7] = np.inf
    ninf[59, 13] = -np.inf
    huge[:, 0] = 1e308  # finite deltas whose composition overflows
    return [("nan", nan, "non-finite"), ("inf", inf, "non-finite"), ("-inf gripper", ninf, "non-finite"),
            ("overflow", huge, "non-finite"), ("short", steps(n=H - 1), "wrong shape"),
            ("long", steps(n=H + 1), "wrong shape"), ("width", np.zeros((H, 13)), "wrong shape"),
            ("flat", np.zeros(H * 14), "wrong shape"), ("strings", np.full((H, 14), "a"), "non-finite")]


@pytest.mark.parametrize("mode", [Mode.NAIVE, Mode.RTC, Mode.BLEND])
@pytest.mark.parametrize("name,bad,reason", _bad_chunks(), ids=[b[0] for b in _bad_chunks()])
def test_a_bad_chunk_is_refused_the_committed_actions_run_out_then_hold(mode: Mode, name: str, bad: np.ndarray,
                                                                        reason: str) -> None:
    s = sched(mode)
    first_chunk(s)
    for k in range(1, 41):
        s.queue.due(k * P)
    before_t, before_x = s.queue.times, s.queue.targets
    req = s.request(40 * P, 40 * P, measured())
    res = s.on_chunk(45 * P, req.seq, 40 * P, bad)
    assert not res.accepted and res.reason.startswith(reason), res.reason
    assert s.refused[reason] == 1 and s.in_flight is None and s.chunks == 1
    np.testing.assert_array_equal(s.queue.times, before_t)
    np.testing.assert_array_equal(s.queue.targets, before_x)
    ticks = [s.queue.due(k * P) for k in range(41, 70)]
    assert all(np.all(np.isfinite(tk.target)) for tk in ticks)
    assert [tk.hold for tk in ticks] == [False] * 20 + [True] * 9
    np.testing.assert_array_equal(ticks[-1].target, before_x[-1])


def test_out_of_order_and_unexpected_seqs_are_refused() -> None:
    s = sched(Mode.NAIVE)
    first_chunk(s)  # seq 0 accepted
    req = s.request(P, P, measured())
    assert s.on_chunk(2 * P, 0, 0.0, steps()).reason.startswith("out of order")
    assert s.on_chunk(2 * P, 7, P, steps()).reason.startswith("unexpected seq")
    assert s.in_flight is req, "a stray reply must not cancel the request in flight"
    assert s.on_chunk(3 * P, req.seq, P, steps()).accepted
    assert s.on_chunk(4 * P, req.seq, P, steps()).reason.startswith("out of order"), "a duplicate reply"


def test_a_chunk_older_than_the_executing_one_is_refused() -> None:
    s = sched(Mode.NAIVE)
    first_chunk(s, 1.0)
    with pytest.raises(ValueError, match="older than the executing"):
        s.request(1.1, 0.9, measured())
    req = s.request(1.1, 1.05, measured())
    res = s.on_chunk(1.2, req.seq, 0.5, steps())
    assert not res.accepted and res.reason.startswith("stamp mismatch")
    # An observation older than the executing chunk's, however it got into the request.
    s.executing_stamp = 1.08
    req = s.request(1.3, 1.08, measured())
    s.executing_stamp = 1.09
    res = s.on_chunk(1.4, req.seq, 1.08, steps())
    assert not res.accepted and res.reason.startswith("older than executing")


def test_an_inference_failure_frees_the_slot_without_counting_as_a_delay() -> None:
    s = sched(Mode.NAIVE, 0.3)
    req = s.request(0.0, 0.0, measured())
    res = s.on_failure(10.0, req.seq, "timeout")
    assert not res.accepted and res.reason == "inference failed: timeout"
    assert s.in_flight is None and len(s.delays) == 0 and s.should_request(10.0)
    assert s.on_failure(10.0, 99, "late").reason.startswith("out of order")


@pytest.mark.parametrize("mode", [Mode.SYNC, Mode.NAIVE, Mode.RTC])
def test_after_running_dry_the_chunk_resumes_at_the_first_unexecuted_action_on_the_next_tick(mode: Mode) -> None:
    s = sched(mode, 0.2)
    first_chunk(s)
    for k in range(1, H + 1):
        s.queue.due(k * P)
    req = s.request(H * P, H * P, measured())
    for k in range(H + 1, H + 16):  # 15 ticks of stall
        assert s.queue.due(k * P).hold
    res = s.on_chunk((H + 15.5) * P, req.seq, H * P, steps())
    assert res.accepted and res.first_step == 0 and res.stale == 0
    assert res.switch_at == pytest.approx((H + 16) * P)
    assert s.queue.due((H + 16) * P).stamp == pytest.approx((H + 16) * P)


def test_random_traffic_never_produces_a_non_finite_target() -> None:
    rng = np.random.default_rng(1)
    s = sched(Mode.RTC, 0.2)
    pending = None
    for k in range(600):
        t = k * P
        if pending is not None and rng.random() < 0.3:
            seq, obs = pending
            kind = rng.integers(4)
            d = steps(rng.normal(scale=2e-3))
            if kind == 1:
                d[rng.integers(H), rng.integers(14)] = rng.choice([np.nan, np.inf, -np.inf])
            elif kind == 2:
                d = d[: rng.integers(1, H)]
            elif kind == 3:
                seq += int(rng.integers(-2, 3))
            s.on_chunk(t, seq, obs, d)
            pending = None if s.in_flight is None else pending
        tick = s.queue.due(t)
        assert tick.target is None or np.all(np.isfinite(tick.target))
        if pending is None and s.should_request(t):
            pending = (s.request(t, t, measured()).seq, t)
    assert s.chunks > 5 and sum(s.refused.values()) > 5
