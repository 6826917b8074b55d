import numpy as np
import pytest

from a2w.msgs.arms import ArmState, ArmTarget, ControlMode, RigState, RigTarget
from a2w.msgs.cameras import VIEW_IDS, VIEW_NAMES, CameraFrame, CameraIntrinsics, MultiViewObservation
from a2w.msgs.common import Pose
from a2w.msgs.diagnostics import DiagnosticLevel, DiagnosticStatus
from a2w.msgs.episode import EpisodeEvent
from a2w.msgs.policy import ActionChunk

Q = np.array([0.0, 0.0, 0.0, 1.0])


def intr(w=4, h=3):
    return CameraIntrinsics(w, h, 2.0, 2.0, 1.5, 1.0)


def frame(view="front", stamp=1.0, **kw):
    return CameraFrame(view, np.zeros((3, 4, 3), np.uint8), stamp, **kw)


def arm_state(**kw):
    base = dict(tcp_pose=Pose(np.zeros(3), Q), joint_positions=np.zeros(7), joint_velocities=np.zeros(7),
                wrench=np.zeros(6), gripper_open=1.0, stamp=0.0)
    base.update(kw)
    return ArmState(**base)


@pytest.mark.parametrize("kwargs, field", [
    (dict(image=np.zeros((3, 4, 3), np.float32)), "image"),
    (dict(image=np.zeros((3, 4), np.uint8)), "image"),
    (dict(stamp=float("nan")), "stamp"),
    (dict(view=""), "view"),
    (dict(intrinsics=intr(5, 3)), "intrinsics"),
    (dict(depth=np.zeros((2, 2), np.float32)), "depth"),
])
def test_camera_frame_rejects_bad_fields(kwargs, field):
    args = dict(view="front", image=np.zeros((3, 4, 3), np.uint8), stamp=1.0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=field):
        CameraFrame(**args)


def test_camera_frame_is_read_only_without_copy():
    img = np.zeros((3, 4, 3), np.uint8)
    f = CameraFrame("front", img, 0.5, intr())
    assert np.shares_memory(f.image, img)
    with pytest.raises(ValueError):
        f.image[0, 0, 0] = 1


def test_intrinsics_validation():
    with pytest.raises(ValueError, match="fx"):
        CameraIntrinsics(640, 480, 0.0, 600.0, 320.0, 240.0)
    with pytest.raises(ValueError, match="width"):
        CameraIntrinsics(0, 480, 600.0, 600.0, 320.0, 240.0)


def test_pose_rejects_non_unit_quaternion_and_nan():
    with pytest.raises(ValueError, match="quaternion.*unit"):
        Pose(np.zeros(3), np.array([0.0, 0.0, 0.0, 2.0]))
    with pytest.raises(ValueError, match="position.*non-finite"):
        Pose(np.array([0.0, np.nan, 0.0]), Q)
    with pytest.raises(ValueError, match="position.*shape"):
        Pose(np.zeros(4), Q)


def test_multiview_stamp_and_spread():
    obs = MultiViewObservation({"front": frame("front", 1.000), "left_wrist": frame("left_wrist", 1.010),
                                "right_wrist": frame("right_wrist", 1.004)})
    assert obs.stamp == pytest.approx(1.004)
    assert obs.spread == pytest.approx(0.010)
    with pytest.raises(ValueError, match="frames"):
        MultiViewObservation({"front": frame("left_wrist")})


def test_arm_state_and_targets_validate():
    with pytest.raises(ValueError, match="gripper_open"):
        arm_state(gripper_open=1.5)
    with pytest.raises(ValueError, match="joint_velocities"):
        arm_state(joint_velocities=np.zeros(6))
    with pytest.raises(ValueError, match="wrench"):
        arm_state(wrench=np.full(6, np.inf))
    s = arm_state()
    RigState(s, s, "hold", 1.0)
    with pytest.raises(ValueError, match="mode|hold"):
        RigState(s, s, "dance", 1.0)
    t = ArmTarget(Pose(np.zeros(3), Q), 0.5)
    with pytest.raises(ValueError, match="source"):
        RigTarget(t, t, 0.0, "joystick")
    assert RigTarget(t, t, 0.0, "teleop").source is ControlMode.TELEOP


def test_action_chunk_validation():
    n = 4
    targets = np.zeros((n, 2, 8))
    targets[:, :, 6] = 1.0
    ok = dict(deltas=np.zeros((n, 14)), targets=targets, times=np.arange(n) * 0.1, seq=0, obs_stamp=0.0)
    chunk = ActionChunk(**ok)
    assert chunk.deltas.dtype == np.float32 and len(chunk) == n
    assert chunk.target_at(2).stamp == pytest.approx(0.2)
    for change, field in [
        (dict(deltas=np.zeros((n, 13))), "deltas"),
        (dict(deltas=np.full((n, 14), np.nan)), "deltas"),
        (dict(times=np.zeros(n)), "times"),
        (dict(targets=np.zeros((n, 2, 8))), "targets"),
        (dict(seq=-1), "seq"),
    ]:
        with pytest.raises(ValueError, match=field):
            ActionChunk(**{**ok, **change})


def test_events_and_diagnostics():
    assert EpisodeEvent("save", 1.0).kind.value == "save"
    with pytest.raises(ValueError, match="kind"):
        EpisodeEvent("explode", 1.0)
    with pytest.raises(ValueError, match="level"):
        DiagnosticStatus("x", 7, "", {}, 0.0)


def test_diagnostic_status_level_is_the_level_enum_for_every_accepted_value():
    for level in DiagnosticLevel:
        for raw in (int(level), np.uint8(level), level):
            status = DiagnosticStatus("x", raw, "", {}, 0.0)
            assert type(status.level) is DiagnosticLevel and status.level is level
    for bad in (-1, 4, 7, 1.5, "1", None, float("nan")):
        with pytest.raises(ValueError, match="level"):
            DiagnosticStatus("x", bad, "", {}, 0.0)


def test_view_ids_follow_the_release_and_agree_with_the_models_package():
    # a2world does not import a2w (models sit below the runtime), so it keeps its own ids.
    from a2world.policy.engine import VIEW_NAMES as MODEL_VIEW_NAMES

    assert VIEW_IDS == {"left_wrist": 0, "right_wrist": 1, "front": 2}
    assert tuple(VIEW_IDS) == VIEW_NAMES
    for name, view_id in VIEW_IDS.items():
        assert MODEL_VIEW_NAMES[view_id].replace(" ", "_") == name


def test_every_view_list_of_the_runtime_is_the_one_set_of_views():
    from a2w.cameras.component import CameraParams
    from a2w.sim.cli import TILE_ORDER
    from a2w.sim.world import VIEW_CAMERAS

    for where, views in (("camera node default", CameraParams().views), ("sim cameras", VIEW_CAMERAS),
                         ("sim video tiles", TILE_ORDER)):
        assert sorted(views) == sorted(VIEW_NAMES), where
