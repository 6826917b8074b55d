"""Multi-view pairing: choice of the set, spread reporting and rejection reasons."""

from __future__ import annotations

import math

import numpy as np
import pytest

from a2w.cameras.pairing import FramePairer, RejectReason, best_set, pair_frames
from a2w.msgs.cameras import CameraFrame

VIEWS = ("left_wrist", "right_wrist", "front")
IMG = np.zeros((4, 6, 3), np.uint8)


def frame(view: str, stamp: float, n: int = 0) -> CameraFrame:
    return CameraFrame(view=view, image=IMG, stamp=stamp, frame_number=n)


def feed(pairer: FramePairer, offsets: dict[str, float], count: int, period: float = 1 / 30,
         t0: float = 100.0) -> None:
    for i in range(count):
        for v in pairer.views:
            pairer.add(frame(v, t0 + i * period + offsets[v], i))


def test_latest_set_within_limit_and_spread_reported() -> None:
    p = FramePairer(VIEWS)
    offsets = {"left_wrist": 0.0, "right_wrist": 0.004, "front": -0.007}
    feed(p, offsets, 10)
    r = p.pair()
    assert r.ok and r.reason is None
    assert r.spread == pytest.approx(0.011, abs=1e-9)
    # The newest frames (index 9) are chosen for "latest".
    assert {v: f.frame_number for v, f in r.observation.frames.items()} == {v: 9 for v in VIEWS}
    assert r.observation.spread == pytest.approx(r.spread)


def test_target_picks_the_set_nearest_in_time() -> None:
    p = FramePairer(VIEWS)
    feed(p, dict.fromkeys(VIEWS, 0.0), 8)
    target = 100.0 + 3 / 30 + 0.01  # closer to frame 3 than frame 4
    r = p.pair(target)
    assert r.ok
    assert {f.frame_number for f in r.observation.frames.values()} == {3}


def test_lagging_view_falls_back_to_an_older_consistent_set() -> None:
    """One camera delivered late: the newest frames do not pair, the previous ones do."""
    p = FramePairer(VIEWS)
    feed(p, dict.fromkeys(VIEWS, 0.0), 5)
    p.add(frame("front", 100.0 + 5 / 30, 5))  # front got frame 5, the wrists did not yet
    r = p.pair()
    assert r.ok
    nums = {v: f.frame_number for v, f in r.observation.frames.items()}
    assert nums == dict.fromkeys(VIEWS, 4)


def test_spread_over_limit_is_rejected_with_the_reason() -> None:
    p = FramePairer(VIEWS, max_spread=0.016)
    offsets = {"left_wrist": 0.0, "right_wrist": 0.0, "front": 0.0166}  # half a period off
    feed(p, offsets, 6)
    r = p.pair()
    assert not r.ok and r.reason is RejectReason.SPREAD
    assert r.spread == pytest.approx(0.0166, abs=1e-6)
    assert "16.6 ms > limit 16.0 ms" in r.detail and "front" in r.detail
    assert p.stats.rejected["spread"] == 1
    # The same frames pass a looser limit.
    assert FramePairer(VIEWS, max_spread=0.02).pair().ok is False  # new pairer has no frames
    loose = FramePairer(VIEWS, max_spread=0.02)
    feed(loose, offsets, 6)
    assert loose.pair().ok


def test_missing_view_is_named() -> None:
    p = FramePairer(VIEWS)
    p.add(frame("front", 1.0))
    r = p.pair()
    assert r.reason is RejectReason.MISSING_VIEW and math.isnan(r.spread)
    assert "left_wrist" in r.detail and "right_wrist" in r.detail and "front" not in r.detail


def test_stale_and_not_newer() -> None:
    p = FramePairer(VIEWS, max_age=0.1)
    feed(p, dict.fromkeys(VIEWS, 0.0), 3)
    first = p.pair()
    assert first.ok
    again = p.pair(after=first.observation.stamp)
    assert again.reason is RejectReason.NOT_NEWER
    stale = p.pair(target=first.observation.stamp + 0.5)
    assert stale.reason is RejectReason.STALE and "500.0 ms" in stale.detail


def test_restarted_camera_does_not_pair_with_its_old_timeline() -> None:
    p = FramePairer(VIEWS, buffer=4)
    feed(p, dict.fromkeys(VIEWS, 0.0), 4, t0=100.0)
    p.add(frame("front", 50.0))  # older stamp: the device restarted / a replay began
    newest = p.newest("front")
    assert newest is not None and newest.stamp == 50.0
    r = p.pair()
    assert r.reason is RejectReason.SPREAD  # only the new front frame is left for that view


def test_bad_arguments_name_the_field() -> None:
    with pytest.raises(ValueError, match="max_spread"):
        FramePairer(VIEWS, max_spread=-1)
    with pytest.raises(ValueError, match="buffer"):
        FramePairer(VIEWS, buffer=0)
    with pytest.raises(ValueError, match="views"):
        FramePairer(("front", "front"))
    with pytest.raises(ValueError, match="frame.view"):
        FramePairer(VIEWS).add(frame("top", 1.0))


def test_best_set_minimises_distance_then_spread_on_random_jitter() -> None:
    """Against brute force over every combination, on jittered random stamps."""
    rng = np.random.default_rng(3)
    for _ in range(30):
        bufs = {v: [frame(v, 10 + i / 30 + rng.normal(0, 0.006)) for i in range(5)] for v in VIEWS}
        bufs = {v: sorted(fs, key=lambda f: f.stamp) for v, fs in bufs.items()}
        target = 10 + rng.uniform(0, 5 / 30)
        frames, spread, within = best_set(bufs, target, 0.016)
        combos = [(a, b, c) for a in bufs[VIEWS[0]] for b in bufs[VIEWS[1]] for c in bufs[VIEWS[2]]]
        valid = [c for c in combos if max(f.stamp for f in c) - min(f.stamp for f in c) <= 0.016]
        if not valid:
            assert not within
            tight = min(max(f.stamp for f in c) - min(f.stamp for f in c) for c in combos)
            assert spread >= tight - 1e-12
            continue
        assert within
        best = min(abs(float(np.median([f.stamp for f in c])) - target) for c in valid)
        got = abs(float(np.median([f.stamp for f in frames.values()])) - target)
        # Nearest-to-anchor search may skip exotic combos; it must stay within one jitter sigma.
        assert got <= best + 0.006


def test_pair_frames_offline() -> None:
    by_view = {v: [frame(v, 5 + i / 30 + (0.003 if v == "front" else 0)) for i in range(4)] for v in VIEWS}
    r = pair_frames(by_view, target=5 + 2 / 30)
    assert r.ok and r.spread == pytest.approx(0.003)
    assert str(r).startswith("paired 3 views")
