"""a2w.monitor.log without a host: what each message becomes in the .rrd (read back with Rerun's
own reader), where on the timeline, how predictions pair with real frames, and that every kind of
input the monitor cannot show is skipped and counted instead of raised."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
import pytest
import rerun as rr
from rerun.chunk import RrdReader

from a2w.monitor.log import MonitorLog
from a2w.msgs.arms import ArmsStatus, ControlMode
from a2w.msgs.diagnostics import DiagnosticLevel, DiagnosticStatus
from a2w.msgs.episode import EpisodeEvent, EpisodeEventKind
from a2w.msgs.sim import FaultEvent, SimStatus
from tests.monitor.support import chunk, image, read_rrd, rig_state, rig_target, scalars


class Session:
    """A MonitorLog writing to an .rrd; ``read`` closes the file and reads it back."""

    def __init__(self, path: Path, views: tuple[str, ...] = ("front", "left_wrist"), **kw: Any) -> None:
        self.path = path
        self.rec = rr.RecordingStream("test_monitor")
        self.rec.set_sinks(rr.FileSink(path))
        self.m = MonitorLog(self.rec, views, **kw)

    def read(self) -> dict[str, list]:
        self.rec.flush()
        self.rec.disconnect()
        return read_rrd(self.path)


@pytest.fixture
def session(tmp_path: Path) -> Session:
    return Session(tmp_path / "s.rrd", max_image_rate=0)


def stamps(rows: list) -> list[float]:
    return [round(s, 6) for s, _ in rows]


def test_predictions_land_at_their_own_stamps_and_diff_where_real_frames_meet_them(session):
    m = session.m
    # a chunk's 10 predictions arrive together at t=0.9, before the cameras reach them
    for i in range(10):
        assert m.handle("predicted_frame", image("front", 1.0 + 0.1 * i, 100), 0.9)
    for i in range(30 * 2):  # 2 s of 30 fps frames from 0.96 on; only 1.0..1.9 have predictions
        assert m.handle("camera_frame", image("front", 0.96 + i / 30, 90 if i % 2 else 80), 0.0)
    rows = session.read()
    assert stamps(rows["/cameras/front/predicted"]) == [round(1.0 + 0.1 * i, 6) for i in range(10)]
    assert len(rows["/cameras/front/real"]) == 60
    diffs = scalars(rows["/cameras/front/diff_mae"])
    assert [round(s, 6) for s, _ in diffs] == [round(1.0 + 0.1 * i, 6) for i in range(10)]
    # each prediction is compared with the real frame nearest its time: frame i at 0.96 + i/30
    for s, v in diffs:
        i = round((s - 0.96) * 30)
        assert v == pytest.approx(100 - (90 if i % 2 else 80))
    assert stamps(rows["/cameras/front/diff"]) == [round(s, 6) for s, _ in diffs]
    assert m.unpaired == 0 and not m.skipped


def test_prediction_without_a_real_frame_within_tolerance_is_not_compared(session):
    m = session.m
    m.handle("camera_frame", image("front", 1.0), 0)
    m.handle("predicted_frame", image("front", 1.2, 50), 1.0)  # a gap in the cameras around 1.2
    m.handle("camera_frame", image("front", 1.3), 0)
    m.handle("predicted_frame", image("front", 1.04, 50), 1.3)  # late, 40 ms from a kept frame
    rows = session.read()
    assert stamps(rows["/cameras/front/diff"]) == [1.04]
    assert m.unpaired == 1


def test_prediction_at_the_model_resolution_is_resized_for_the_diff(session):
    m = session.m
    m.handle("predicted_frame", image("front", 1.0, 60, h=12, w=16), 0.9)
    m.handle("camera_frame", image("front", 1.0, 20), 1.0)
    rows = session.read()
    assert scalars(rows["/cameras/front/diff_mae"]) == [(1.0, pytest.approx(40.0))]


def test_real_frames_are_capped_at_the_image_rate_by_stamp(tmp_path):
    s = Session(tmp_path / "r.rrd", max_image_rate=10)
    for i in range(90):  # 3 s at 30 fps
        s.m.handle("camera_frame", image("front", 5.0 + i / 30), 0)
    assert len(s.read()["/cameras/front/real"]) == 30


def test_images_are_scaled_to_the_image_width_and_compared_at_it(tmp_path):
    s = Session(tmp_path / "w.rrd", max_image_rate=0, image_width=16)
    s.m.handle("predicted_frame", image("front", 1.0, 60, h=12, w=16), 0.9)  # the model's own size
    s.m.handle("camera_frame", image("front", 1.0, 20, h=48, w=64), 1.0)
    rows = s.read()
    for what in ("real", "predicted", "diff"):
        blob = np.asarray(rows[f"/cameras/front/{what}"][0][1]["EncodedImage:blob"][0], np.uint8)
        assert cv2.imdecode(blob, cv2.IMREAD_COLOR).shape == (12, 16, 3), what
    assert scalars(rows["/cameras/front/diff_mae"]) == [(1.0, pytest.approx(40.0, abs=1))]


def test_arm_states_and_targets_are_capped_at_the_state_rate_by_stamp(tmp_path):
    s = Session(tmp_path / "a.rrd", max_state_rate=20)
    for i in range(100):  # 1 s at 100 Hz
        s.m.handle("rig_state", rig_state(1.0 + i / 100), 0)
        s.m.handle("rig_target", rig_target(1.0 + i / 100), 0)
    rows = s.read()
    assert len(scalars(rows["/arms/left/state/tcp"])) == 20
    assert len(scalars(rows["/arms/right/target/gripper"])) == 20


def test_chunk_plan_is_a_series_over_its_step_times(session):
    session.m.handle("chunk", chunk(2.0), 1.9)
    rows = session.read()
    xs = scalars(rows["/policy/plan/left/tcp"])
    assert [round(t, 6) for t, _ in xs] == [round(2.0 + 0.1 * i, 6) for i in range(20)]
    assert xs[0][1] == pytest.approx(0.3) and xs[-1][1] == pytest.approx(0.4)
    assert scalars(rows["/policy/chunk/obs_age"]) == [(1.9, pytest.approx(0.1))]
    assert scalars(rows["/policy/chunk/lead"]) == [(1.9, pytest.approx(0.1))]
    assert "/arms/right/plan" in rows


def test_arms_sim_episode_and_diagnostics(session):
    m = session.m
    m.handle("rig_state", rig_state(3.0), 3.0)
    m.handle("rig_target", rig_target(3.0), 3.0)
    for t in (3.0, 3.1):  # latched and repeated: the text is logged when it changes
        m.handle("arms_status", ArmsStatus(ControlMode.TELEOP, "streaming", "ok", stamp=t), t)
    m.handle("sim_status", SimStatus(3.0, "pick_cube", 3, False, False, realtime_factor=0.9), 3.0)
    m.handle("fault_event", FaultEvent("camera_freeze", "front", 3.2, 3.2), 3.2)
    m.handle("episode_event", EpisodeEvent(EpisodeEventKind.START, 3.0, 0, "pick the cube"), 3.0)
    for t, msg in ((3.0, "ok"), (3.5, "ok"), (4.0, "slow")):
        m.handle("diagnostic", DiagnosticStatus("/policy_node", DiagnosticLevel.OK if msg == "ok" else
                                                DiagnosticLevel.WARN, msg,
                                                {"latency_ms": "41.5", "stalls": "2", "model": "tiny",
                                                 "p99": "nan"}, t), t)
    rows = session.read()
    assert scalars(rows["/arms/left/state/tcp"]) == [(3.0, pytest.approx(0.3))]
    assert scalars(rows["/arms/right/target/gripper"]) == [(3.0, pytest.approx(0.6))]
    assert len(rows["/arms/status"]) == 1
    assert scalars(rows["/sim/realtime_factor"]) == [(3.0, pytest.approx(0.9))]
    assert stamps(rows["/sim/faults"]) == [3.2]
    assert "pick the cube" in rows["/episode/events"][0][1]["TextLog:text"][0]
    assert scalars(rows["/diagnostics/policy_node/latency_ms"]) == [(3.0, 41.5), (3.5, 41.5), (4.0, 41.5)]
    assert scalars(rows["/diagnostics/policy_node/level"])[-1] == (4.0, 1.0)
    assert len(rows["/diagnostics/policy_node"]) == 2  # "ok", then "slow"
    # text and non-finite values are not series
    assert "/diagnostics/policy_node/model" not in rows and "/diagnostics/policy_node/p99" not in rows
    assert not session.m.skipped


def _timeline_type(path: Path) -> str:
    for c in RrdReader(path).stream().to_chunks():
        names = c.to_record_batch().schema.names
        if "stamp" in names:
            return str(c.to_record_batch().schema.field("stamp").type)
    raise AssertionError("no stamp timeline")


@pytest.mark.parametrize("t0, kind", [(12.5, "duration"), (1_764_600_000.0, "timestamp")])
def test_sim_time_is_a_duration_and_wall_time_a_date(tmp_path, t0, kind):
    s = Session(tmp_path / "t.rrd")
    s.m.handle("rig_state", rig_state(t0), t0)
    s.m.handle("chunk", chunk(t0 + 0.1), t0)
    rows = s.read()
    assert scalars(rows["/arms/left/state/tcp"])[0][0] == pytest.approx(t0)
    assert scalars(rows["/policy/plan/left/tcp"])[0][0] == pytest.approx(t0 + 0.1)
    assert _timeline_type(tmp_path / "t.rrd").startswith(kind)


# -- input the monitor cannot show ---------------------------------------------------------------
# Constructors validate every message; these reach the monitor only from a buggy or foreign
# publisher, so they are built valid and then broken the way such a publisher would break them.

def broken(msg: Any, **fields: Any) -> Any:
    for name, value in fields.items():
        obj, attr = msg, name
        while "." in attr:
            head, attr = attr.split(".", 1)
            obj = getattr(obj, head)
        object.__setattr__(obj, attr, value)
    return msg


NONFINITE = [math.nan, math.inf, -math.inf, None, "soon"]
BAD_IMAGES = [np.zeros((24, 32, 3), np.float32), np.zeros((24, 32, 3), np.uint16), np.zeros((24, 32), np.uint8),
              np.zeros((24, 32, 4), np.uint8), np.zeros((24, 32, 1), np.uint8), np.zeros((0, 32, 3), np.uint8),
              np.zeros((2, 24, 32, 3), np.uint8), [[0, 0, 0]], None]

CASES: list[tuple[str, Callable[[], Any], str]] = []
for kind in ("camera_frame", "predicted_frame"):
    CASES += [(kind, lambda i=i: broken(image("front", 1.0), image=i), "image") for i in BAD_IMAGES]
    CASES += [(kind, lambda v=v: broken(image("front", 1.0), stamp=v), "stamp") for v in NONFINITE]
    CASES += [(kind, lambda: broken(image("front", 1.0), view="rear"), "view")]


def _nan_at(a: np.ndarray, index: tuple, value: float = math.nan) -> np.ndarray:
    a = np.array(a)
    a[index] = value
    return a


CASES += [("chunk", lambda v=v: broken(chunk(1.0), targets=_nan_at(chunk(1.0).targets, (3, 1, 0), v)), "targets")
          for v in (math.nan, math.inf)]
CASES += [("chunk", lambda: broken(chunk(1.0), targets=np.zeros((20, 2, 7))), "targets"),
          ("chunk", lambda: broken(chunk(1.0), times=_nan_at(chunk(1.0).times, (5,))), "times"),
          ("chunk", lambda: broken(chunk(1.0), times=chunk(1.0).times[::-1].copy()), "times"),
          ("chunk", lambda: broken(chunk(1.0), times=np.zeros(0)), "times"),
          ("chunk", lambda: broken(chunk(1.0), targets=None), "targets")]
CASES += [("chunk", lambda v=v: broken(chunk(1.0), obs_stamp=v), "stamp") for v in NONFINITE]
CASES += [("rig_state", lambda v=v: broken(rig_state(1.0), stamp=v), "stamp") for v in NONFINITE]
CASES += [("rig_state", lambda: broken(rig_state(1.0), **{"left.tcp_pose.position": np.array([0, math.nan, 0])}),
           "position"),
          ("rig_state", lambda: broken(rig_state(1.0), **{"right.gripper_open": math.inf}), "gripper"),
          ("rig_state", lambda: broken(rig_state(1.0), left=None), "malformed")]
CASES += [("rig_target", lambda v=v: broken(rig_target(1.0), stamp=v), "stamp") for v in NONFINITE]
CASES += [("rig_target", lambda: broken(rig_target(1.0), **{"right.tcp_pose.position": np.full(3, math.inf)}),
           "position"),
          ("rig_target", lambda: broken(rig_target(1.0), **{"left.gripper_open": math.nan}), "gripper")]
CASES += [("diagnostic", lambda v=v: broken(DiagnosticStatus("/n", 0, "", {}, 1.0), stamp=v), "stamp")
          for v in NONFINITE]
CASES += [("arms_status", lambda v=v: broken(ArmsStatus(ControlMode.IDLE, "stopped", ""), stamp=v), "stamp")
          for v in NONFINITE]
CASES += [("sim_status", lambda v=v: broken(SimStatus(1.0, "t", 0, False, False), stamp=v), "stamp")
          for v in NONFINITE]
CASES += [("fault_event", lambda v=v: broken(FaultEvent("camera_black", "front", 1.0, 1.0), onset=v), "stamp")
          for v in NONFINITE]
CASES += [("episode_event", lambda v=v: broken(EpisodeEvent(EpisodeEventKind.MARK, 1.0), stamp=v), "stamp")
          for v in NONFINITE]


@pytest.mark.parametrize("kind, make, reason", CASES, ids=[f"{k}-{r}-{i}" for i, (k, _, r) in enumerate(CASES)])
def test_bad_input_is_skipped_and_counted(session, kind, make, reason):
    m = session.m
    assert m.handle(kind, make(), 1.0) is False
    keys = [k for k, n in m.skipped.items() if n]
    assert len(keys) == 1 and keys[0].startswith(f"{kind}:{reason}"), m.skipped  # image_dtype, image_shape...
    before = sum(m.logged.values())
    # the monitor goes on: the next good message of each kind is logged
    assert m.handle("camera_frame", image("front", 2.0), 2.0)
    assert m.handle("chunk", chunk(2.1), 2.0)
    assert m.handle("rig_state", rig_state(2.0), 2.0)
    assert sum(m.logged.values()) > before
    rows = session.read()
    assert stamps(rows["/cameras/front/real"]) == [2.0]  # nothing of the bad message reached the file
    assert scalars(rows["/arms/left/state/tcp"]) == [(2.0, pytest.approx(0.3))]


def test_a_chunk_at_a_non_finite_time_is_skipped(session):
    assert session.m.handle("chunk", chunk(1.0), math.nan) is False
    assert session.m.skipped == {"chunk:stamp": 1}


def test_shadow_reports_are_series_per_view_with_the_threshold_and_the_level_as_text(session):
    from a2w.msgs.shadow import ShadowReport

    views = ("front", "left_wrist")
    m = session.m
    m.handle("shadow_report", ShadowReport(4.0, 0, views, (0.2, 0.3), (0.8, 0.7), 0.3, 0.5, 0, 2.0, 0.6), 4.1)
    m.handle("shadow_report", ShadowReport(6.0, 1, views, (math.inf, 0.3), (0.0, 0.7), math.inf, 0.5, 2, 2.0, 0.7),
             6.1)
    rows = session.read()
    assert scalars(rows["/shadow/front"]) == [(4.0, pytest.approx(0.2))]  # inf (no frames) is not a point
    assert scalars(rows["/shadow/left_wrist"]) == [(4.0, pytest.approx(0.3)), (6.0, pytest.approx(0.3))]
    assert scalars(rows["/shadow/warn_threshold"]) == [(4.0, 0.5), (6.0, 0.5)]
    texts = [r[1]["TextLog:text"][0] for r in rows["/shadow/level"]]
    assert texts[0].startswith("shadow OK") and texts[1].startswith("shadow ALARM") and "front" in texts[1]
    assert not m.skipped
