"""The 30 Hz grid (a2w.record.rows): one frame per camera per row, stalled or dropped cameras
duplicated and flagged, never shifted; arm state and commanded target beside each row."""

from __future__ import annotations

from typing import Iterable

import numpy as np
import pytest

from a2w.msgs.arms import ArmState, ArmTarget, ControlMode, RigState, RigTarget
from a2w.msgs.cameras import CameraFrame
from a2w.msgs.common import Pose
from a2w.record.rows import RowGrid

VIEWS = ("left_wrist", "right_wrist", "front")
P = 1 / 30


def _frame(view: str, n: int, stamp: float) -> CameraFrame:
    img = np.zeros((4, 4, 3), np.uint8)
    img[0, 0, 0], img[0, 0, 1] = n % 256, n // 256  # the frame number, to tell frames apart
    return CameraFrame(view, img, stamp, frame_number=n)


def _number(img: np.ndarray) -> int:
    return int(img[0, 0, 0]) + 256 * int(img[0, 0, 1])


def _state(t: float, x: float = 0.0) -> RigState:
    arm = ArmState(Pose(np.array([x, 0, 0.3]), np.array([0, 0, 0, 1.0])), np.zeros(7), np.zeros(7), np.zeros(6),
                   0.5, t)
    return RigState(arm, arm, ControlMode.POLICY, t)


def _run(drops: dict[str, set[int]], offsets: dict[str, float], jitter: float = 0.003, n: int = 60,
         seed: int = 0) -> tuple[list, dict[str, dict[int, float]]]:
    """Cameras at 30 fps with per-view phase offsets and jitter, minus the dropped frame numbers;
    arm state at 100 Hz. Everything arrives in stamp order, the grid is polled at 100 Hz."""
    rng = np.random.default_rng(seed)
    events: list[tuple[float, object]] = []
    stamps: dict[str, dict[int, float]] = {v: {} for v in VIEWS}
    for v in VIEWS:
        for i in range(n):
            if i in drops.get(v, set()):
                continue
            t = 10.0 + i * P + offsets.get(v, 0.0) + rng.uniform(-jitter, jitter)
            stamps[v][i] = t
            events.append((t, _frame(v, i, t)))
    for j in range(int(n * P * 100) + 10):
        t = 10.0 + j * 0.01
        events.append((t, _state(t, x=t)))
    events.sort(key=lambda e: e[0])
    grid = RowGrid(VIEWS, start=9.99)
    rows = []
    for t, ev in events:
        if isinstance(ev, CameraFrame):
            grid.add_frame(ev)
        else:
            grid.add_state(ev)
        rows += grid.due(t)
    rows += grid.due(10.0 + (n - 1) * P + grid.delay)  # up to the last frames, no trailing stall
    return rows, stamps


def _check_invariants(rows: Iterable, stamps: dict[str, dict[int, float]]) -> None:
    prev = None
    for k, row in enumerate(rows):
        assert set(row.images) == set(VIEWS), "every row has exactly one frame per camera"
        for i, v in enumerate(VIEWS):
            n = _number(row.images[v])
            assert row.camera_stamps[i] == stamps[v][n], "the frame's own capture stamp is kept"
            if row.camera_stalled[i]:
                assert prev is not None and _number(prev.images[v]) == n, "a stalled view repeats its last frame"
            else:
                assert abs(stamps[v][n] - row.stamp) <= P / 2 + 1e-9, f"row {k} {v}: frame {n} is not this row's"
                assert prev is None or _number(prev.images[v]) < n
        prev = row


@pytest.mark.parametrize("seed", range(3))
def test_healthy_cameras_give_one_fresh_frame_per_view_per_row(seed: int) -> None:
    rows, stamps = _run({}, {"left_wrist": 0.004, "right_wrist": -0.005}, seed=seed)
    _check_invariants(rows, stamps)
    assert len(rows) >= 58 and not any(r.camera_stalled.any() for r in rows)
    assert [_number(r.images["front"]) for r in rows] == list(range(len(rows)))
    np.testing.assert_allclose(np.diff([r.stamp for r in rows]), P, atol=1e-9)


@pytest.mark.parametrize("drops", [
    {"front": set(range(20, 26))},  # a camera stalls for 6 frames mid-episode
    {"left_wrist": {31}},  # one dropped frame
    {"right_wrist": set(range(10, 60, 2))},  # a camera at half rate
    {"front": {15, 16}, "left_wrist": {16, 17}, "right_wrist": set(range(30, 40))},
])
def test_stalled_or_dropped_frames_are_duplicated_and_flagged_never_shifted(drops: dict[str, set[int]]) -> None:
    rows, stamps = _run(drops, {"front": 0.006})
    _check_invariants(rows, stamps)
    by_first = {_number(r.images["front"]): r for r in rows if not r.camera_stalled[2]}
    base = min(by_first)
    for v_i, v in enumerate(VIEWS):
        flagged = {k + base for k, r in enumerate(rows) if r.camera_stalled[v_i]}
        assert flagged == {d for d in drops.get(v, set()) if base <= d < base + len(rows)}, v


def test_a_frame_that_belongs_to_a_later_row_waits_for_it() -> None:
    # front's frame 12 is 14 ms late: it is nearest row 12 (half a period is 16.7 ms) and must not
    # be pulled into row 11, whose front frame is 11
    grid = RowGrid(VIEWS, start=0.0)
    got = []
    for i in range(20):
        for v in VIEWS:
            t = 1.0 + i * P + (0.014 if (v == "front" and i == 12) else 0.0)
            grid.add_frame(_frame(v, i, t))
        grid.add_state(_state(1.0 + i * P))
        got += grid.due(1.0 + i * P)
    got += grid.due(1.0 + 19 * P + grid.delay)
    assert [_number(r.images["front"]) for r in got] == list(range(20))
    assert not any(r.camera_stalled.any() for r in got)
    assert grid.stats.late == {v: 0 for v in VIEWS}


def test_frames_delivered_later_than_the_delay_stall_their_rows_and_are_counted_late() -> None:
    # the right wrist's frames reach the recorder 0.3 s after capture, longer than the grid waits
    grid = RowGrid(VIEWS, start=0.0)
    lag = 0.3
    rows, pending = [], []
    for j in range(300):
        now = 1.0 + j * 0.01
        i = int(round((now - 1.0) * 30))
        if abs(now - (1.0 + i * P)) < 0.005 and (not pending or pending[-1][1] != i):
            for v in ("left_wrist", "front"):
                grid.add_frame(_frame(v, i, 1.0 + i * P))
            pending.append((1.0 + i * P + lag, i))
        while pending and pending[0][0] <= now:
            _, n = pending.pop(0)
            grid.add_frame(_frame("right_wrist", n, 1.0 + n * P))
        grid.add_state(_state(now))
        rows += grid.due(now)
    assert rows and all(r.camera_stalled.tolist() == [False, True, False] for r in rows[1:])
    assert grid.stats.late["right_wrist"] >= len(rows) - int(lag * 30) - 2  # the last few are in flight
    assert grid.stats.late["left_wrist"] == grid.stats.late["front"] == 0


def test_rows_carry_the_nearest_state_and_the_target_due_next() -> None:
    grid = RowGrid(VIEWS, start=0.0)
    for i in range(10):
        t = 1.0 + i * P
        for v in VIEWS:
            grid.add_frame(_frame(v, i, t))
    for j in range(40):
        grid.add_state(_state(1.0 + j * 0.01 + 0.002, x=j))
    pose = Pose(np.array([0.1, 0, 0.3]), np.array([0, 0, 0, 1.0]))
    for i in range(12):
        grid.add_target(RigTarget(ArmTarget(pose, i / 20), ArmTarget(pose, i / 20), 1.0 + (i + 1) * P,
                                  ControlMode.POLICY, "expert"))
    rows = grid.due(1.0 + 9 * P + grid.delay)
    assert len(rows) == 10
    for k, r in enumerate(rows):
        assert abs(r.state_stamp - r.stamp) <= 0.005 + 1e-9
        assert r.target[7] == pytest.approx(k / 20), "the target due one step after the row's time"


def test_flush_at_the_end_records_the_rows_whose_frames_are_in_and_no_stalled_tail() -> None:
    grid = RowGrid(VIEWS, start=0.0)
    rows: list = []
    for i in range(30):
        t = 1.0 + i * P
        for v in VIEWS:
            if v != "front" or i < 28:  # the front camera's last two frames are still on their way
                grid.add_frame(_frame(v, i, t))
        grid.add_state(_state(t))
        rows += grid.due(t)  # the delay holds back the last rows
    assert len(rows) < 28
    rows += grid.flush(1.0 + 29 * P)
    assert [_number(r.images["front"]) for r in rows] == list(range(28))
    assert not any(r.camera_stalled.any() for r in rows)
