"""Codec round trips through real CDR bytes of the rosbags Jazzy typestore (with a2w_interfaces)."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Callable

import numpy as np
import pytest

from a2w import frames
from a2w.msgs.arms import ArmsStatus, ArmState, ArmTarget, ControlMode, JointStates, RigState, RigTarget
from a2w.msgs.cameras import CameraFrame, CameraIntrinsics, DepthFrame, FrameMetadata
from a2w.msgs.common import Pose
from a2w.msgs.diagnostics import DiagnosticLevel, DiagnosticStatus
from a2w.msgs.episode import (
    EpisodeCommand,
    EpisodeControlRequest,
    EpisodeControlResponse,
    EpisodeEvent,
    EpisodeEventKind,
)
from a2w.msgs.policy import ActionChunk
from a2w.msgs.services import (
    Outcome,
    RecoverRequest,
    SetControlModeRequest,
    SetControlModeResponse,
    SetInstructionRequest,
    StartPolicyRequest,
    StopRequest,
)
from a2w.msgs.shadow import ShadowReport
from a2w.msgs.sim import ClockTick, FaultEvent, SimStatus, TaskFacts
from a2w.msgs.tf import FrameTransform, FrameTransforms, RobotDescription
from a2w.ros import codec
from a2w.ros.codec import RosbagsKit
from a2w.ros.interfaces import jazzy_typestore

STAMP = 1_760_000_123.456789  # a realistic wall-clock stamp: needs the sec/nanosec split
RNG = np.random.default_rng(7)


def _quat() -> np.ndarray:
    q = RNG.normal(size=4)
    return q / np.linalg.norm(q)


def _pose() -> Pose:
    return Pose(RNG.normal(size=3), _quat())


def _arm_state(fault: str = "") -> ArmState:
    return ArmState(_pose(), RNG.normal(size=7), RNG.normal(size=7), RNG.normal(size=6),
                    float(RNG.uniform()), STAMP - 0.01, fault=fault, enabled=not fault)


def _chunk(n: int = 60) -> ActionChunk:
    targets = np.empty((n, 2, 8))
    for i in range(n):
        for a in range(2):
            targets[i, a] = np.concatenate([RNG.normal(size=3), _quat(), [RNG.uniform()]])
    return ActionChunk(RNG.normal(size=(n, 14)).astype(np.float32), targets,
                       STAMP + np.arange(n) / 30.0, seq=42, obs_stamp=STAMP, source="policy:ckpt-3")


def _intrinsics() -> CameraIntrinsics:
    return CameraIntrinsics(64, 48, 61.5, 60.25, 31.7, 23.2, "plumb_bob", (0.1, -0.02, 0.001, 0.0, 0.003))


def _depth() -> DepthFrame:
    d = RNG.uniform(0.1, 2.0, (6, 8)).astype(np.float32)
    d[0, 0] = np.nan
    return DepthFrame("left_wrist", d, STAMP, frame_id=frames.optical_frame("left_wrist"))


JOINTS = tuple(f"{arm}_joint{i}" for arm in ("left", "right") for i in range(1, 8))

EXAMPLES: dict[type, Callable[[], Any]] = {
    CameraFrame: lambda: CameraFrame("front", RNG.integers(0, 256, (48, 64, 3), dtype=np.uint8), STAMP),
    DepthFrame: _depth,
    FrameMetadata: lambda: FrameMetadata("right_wrist", "000000000003", 1234, STAMP, 1.76e12 + 0.25, "global_time",
                                         STAMP + 0.004, 8123.0, float("nan")),
    Pose: _pose,
    RigState: lambda: RigState(_arm_state("joint 3 over torque"), replace(_arm_state("estop"), fresh=False),
                               ControlMode.TELEOP, STAMP),
    JointStates: lambda: JointStates(JOINTS, RNG.normal(size=14), RNG.normal(size=14), STAMP),
    ArmsStatus: lambda: ArmsStatus(ControlMode.POLICY, "streaming", "policy took the arms", ("left: fault: x",),
                                   STAMP, False, "/policy_node", ("right gripper: jammed: 3 N",)),
    ArmTarget: lambda: ArmTarget(_pose(), 0.25),
    RigTarget: lambda: RigTarget(ArmTarget(_pose(), 1.0), ArmTarget(_pose(), 0.0), STAMP, ControlMode.POLICY,
                                 "policy_node"),
    ActionChunk: _chunk,
    EpisodeEvent: lambda: EpisodeEvent(EpisodeEventKind.SAVE, STAMP, 12, "fold the towel", "clean"),
    DiagnosticStatus: lambda: DiagnosticStatus("/cameras/front", DiagnosticLevel.WARN, "slow",
                                               {"rate": "29.1", "drops": "3"}, STAMP),
    ClockTick: lambda: ClockTick(12.5),
    FrameTransforms: lambda: FrameTransforms((FrameTransform("world", "left_base", _pose(), STAMP),
                                              FrameTransform("left_base", "left_link1", _pose(), STAMP))),
    RobotDescription: lambda: RobotDescription('<?xml version="1.0"?><robot name="rig"><link name="world"/></robot>'),
    SimStatus: lambda: SimStatus(12.5, "pick_cube", 3, False, True, ("object_slip@2.100:cube",), 0.93),
    TaskFacts: lambda: TaskFacts(12.5, "pick_cube", 3, "cube", _pose(), (_pose(), _pose()), "left"),
    FaultEvent: lambda: FaultEvent("camera_freeze", "front", 2.105, 2.1, "frozen for 0.5 s"),
    # float32 fields: values float32 holds exactly; inf is a view the shadow could not judge
    ShadowReport: lambda: ShadowReport(STAMP, 7, ("front", "left_wrist"), (float("inf"), 0.25), (0.0, 0.875),
                                       float("inf"), 0.5, 2, 2.0, 0.75),
}

SERVICE_EXAMPLES: dict[type, tuple[Any, Any]] = {
    SetControlModeRequest: (SetControlModeRequest(ControlMode.POLICY, "/policy", override=True),
                            SetControlModeResponse(False, ControlMode.HOLD, "pass through HOLD first")),
    StartPolicyRequest: (StartPolicyRequest("put the cup on the plate"), Outcome(True, "started")),
    StopRequest: (StopRequest("operator"), Outcome(True)),
    SetInstructionRequest: (SetInstructionRequest("pick up the cube"), Outcome(False, "not in the cache")),
    RecoverRequest: (RecoverRequest(None), Outcome(False, "e-stop pressed")),
    EpisodeControlRequest: (EpisodeControlRequest(EpisodeCommand.START, "lift the box", 7),
                            EpisodeControlResponse(True, "episode 3: recording", 3)),
}


@pytest.fixture(scope="module")
def store() -> Any:
    return jazzy_typestore()


def _cdr_round_trip(store: Any, msg: Any, ros_type: str) -> Any:
    raw = store.serialize_cdr(msg, ros_type)
    assert raw[:4] == b"\x00\x01\x00\x00"  # CDR little-endian encapsulation (ros2_facts.md §2)
    return store.deserialize_cdr(raw, ros_type), raw


def _assert_same(a: Any, b: Any, path: str = "") -> None:
    """Field-by-field equality of domain values; float stamps within the 1 ns of ROS time."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=1e-6 if "times" in path else 0,
                                   err_msg=path)  # NaN equals NaN here (missing depth, unknown velocity)
    elif hasattr(a, "__dataclass_fields__"):
        assert type(a) is type(b), path
        for name in a.__dataclass_fields__:
            _assert_same(getattr(a, name), getattr(b, name), f"{path}.{name}")
    elif isinstance(a, tuple) and isinstance(b, tuple):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, float):
        assert math.isclose(a, b, abs_tol=1e-6) or (math.isnan(a) and math.isnan(b)), f"{path}: {a} != {b}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def test_every_registered_topic_type_has_an_example() -> None:
    assert set(EXAMPLES) == set(codec.TOPICS)
    assert set(SERVICE_EXAMPLES) == set(codec.SERVICES)


@pytest.mark.parametrize("domain", list(EXAMPLES), ids=lambda t: t.__name__)
def test_topic_round_trip_through_cdr(store: Any, domain: type) -> None:
    value = EXAMPLES[domain]()
    c = codec.topic_codec(domain)
    msg = c.encode(RosbagsKit(store), value)
    back, _ = _cdr_round_trip(store, msg, c.ros_type)
    decoded = c.decode(back)
    assert len(decoded) == 1
    if domain is CameraFrame:  # frame_id is filled in from the view on the way out
        assert decoded[0].frame_id == "cam_front_color_optical_frame"
        value = CameraFrame(value.view, value.image, value.stamp, frame_id=decoded[0].frame_id)
    _assert_same(value, decoded[0], domain.__name__)


def _headers(msg: Any, path: str = "msg") -> list[tuple[str, Any]]:
    """Every std_msgs/Header in ``msg`` (nested messages and sequences of them), with its path."""
    if type(msg).__name__ == "Header" and hasattr(msg, "frame_id"):
        return [(path, msg)]
    found: list[tuple[str, Any]] = []
    for name in getattr(msg, "__dataclass_fields__", {}):
        value = getattr(msg, name)
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            if hasattr(item, "__dataclass_fields__"):
                found += _headers(item, f"{path}.{name}" + (f"[{i}]" if isinstance(value, list) else ""))
    return found


@pytest.mark.parametrize("domain", list(EXAMPLES), ids=lambda t: t.__name__)
def test_every_header_names_a_frame(store: Any, domain: type) -> None:
    """RViz, Foxglove and tf2 cannot place a stamped message with an empty frame id."""
    c = codec.topic_codec(domain)
    kit = RosbagsKit(store)
    value = EXAMPLES[domain]()
    msgs = [c.encode(kit, value)] + [comp.encode(kit, value) for comp in c.companions]
    for msg in filter(None, msgs):
        for path, h in _headers(msg):
            assert h.frame_id, f"{domain.__name__}: {path}.frame_id is empty"
    with pytest.raises(ValueError, match="frame_id"):
        codec.header(kit, STAMP, "")


def test_arm_states_name_their_base_frames_and_the_rig_the_world(store: Any) -> None:
    kit = RosbagsKit(store)
    msg, _ = _cdr_round_trip(store, codec.encode_rig_state(kit, EXAMPLES[RigState]()), "a2w_interfaces/msg/RigState")
    assert (msg.header.frame_id, msg.left.frame_id, msg.right.frame_id) == ("world", "left_base", "right_base")
    msg.left.frame_id = "right_base"  # arms swapped or a pose in another frame: refused, not misread
    with pytest.raises(ValueError, match="left.frame_id"):
        codec.decode_rig_state(msg)


def test_one_camera_info_per_image_with_its_stamp_and_frame(store: Any) -> None:
    kit = RosbagsKit(store)
    c = codec.topic_codec(CameraFrame)
    assert codec.ros_topics("/cameras/front/color/image_raw", CameraFrame) == [
        ("/cameras/front/color/image_raw", "sensor_msgs/msg/Image"),
        ("/cameras/front/color/camera_info", "sensor_msgs/msg/CameraInfo")]
    frame = CameraFrame("front", RNG.integers(0, 256, (48, 64, 3), dtype=np.uint8), STAMP, _intrinsics())
    [companion] = c.companions
    image, info = c.encode(kit, frame), companion.encode(kit, frame)
    assert info.header == image.header
    assert codec.decode_camera_info(info) == frame.intrinsics
    assert companion.encode(kit, replace(frame, intrinsics=None)) is None
    # CameraIntrinsics have no topic of their own (that was a second, unstamped camera_info).
    with pytest.raises(TypeError, match="no ROS message mapping"):
        codec.topic_codec(CameraIntrinsics)


def test_depth_frames_mark_missing_depth_nan_on_both_sides(store: Any) -> None:
    kit = RosbagsKit(store)
    raw = RNG.uniform(0.1, 2.0, (6, 8)).astype(np.float32)
    raw[1, 2] = 0.0  # librealsense's "no data"
    d = DepthFrame("front", raw, STAMP)
    assert np.isnan(d.depth[1, 2]) and raw[1, 2] == 0.0 and not d.depth.flags.writeable
    msg, _ = _cdr_round_trip(store, codec.encode_depth_frame(kit, d), "sensor_msgs/msg/Image")
    assert (msg.encoding, msg.header.frame_id) == ("32FC1", "cam_front_color_optical_frame")
    back = codec.decode_depth_frame(msg)
    assert back.view == "front" and np.isnan(back.depth[1, 2])
    np.testing.assert_array_equal(back.depth, d.depth)
    for bad in (np.zeros((4, 4), np.float64), np.full((4, 4), -0.5, np.float32), np.zeros(4, np.float32)):
        with pytest.raises(ValueError, match="depth"):
            DepthFrame("front", bad, STAMP)
    # A CameraFrame's depth, which the camera node republishes as DepthFrame, follows the same rule.
    frame = CameraFrame("front", np.zeros((6, 8, 3), np.uint8), STAMP, depth=raw)
    np.testing.assert_array_equal(frame.depth, d.depth)
    with pytest.raises(ValueError, match="depth"):
        CameraFrame("front", np.zeros((6, 8, 3), np.uint8), STAMP, depth=-raw)


@pytest.mark.parametrize("request_type", list(SERVICE_EXAMPLES), ids=lambda t: t.__name__)
def test_service_round_trip_through_cdr(store: Any, request_type: type) -> None:
    req, resp = SERVICE_EXAMPLES[request_type]
    c = codec.service_codec(request_type)
    kit = RosbagsKit(store)
    back, _ = _cdr_round_trip(store, c.encode_request(kit, req), c.ros_type + "_Request")
    assert c.decode_request(back) == req
    back, _ = _cdr_round_trip(store, c.encode_response(kit, resp), c.ros_type + "_Response")
    assert c.decode_response(back) == resp
    assert type(resp) is c.response


def test_recover_both_arms_is_minus_one_on_the_wire(store: Any) -> None:
    c = codec.service_codec(RecoverRequest)
    kit = RosbagsKit(store)
    assert c.encode_request(kit, RecoverRequest(None)).arm == -1
    assert c.decode_request(c.encode_request(kit, RecoverRequest(1))) == RecoverRequest(1)


def test_decoded_image_is_a_view_of_the_cdr_buffer(store: Any) -> None:
    frame = EXAMPLES[CameraFrame]()
    msg = codec.encode_image(RosbagsKit(store), frame)
    assert np.shares_memory(msg.data, frame.image), "encoding must not copy the frame"
    raw = store.serialize_cdr(msg, "sensor_msgs/msg/Image")
    back = codec.decode_image(store.deserialize_cdr(raw, "sensor_msgs/msg/Image"))
    assert np.shares_memory(back.image, np.frombuffer(raw, np.uint8)), "decoding must not copy"
    np.testing.assert_array_equal(back.image, frame.image)
    assert not back.image.flags.writeable


def test_padded_rows_and_bgr8_decode(store: Any) -> None:
    img = RNG.integers(0, 256, (4, 5, 3), dtype=np.uint8)
    padded = np.zeros((4, 5 * 3 + 3), np.uint8)
    padded[:, :15] = img.reshape(4, 15)
    Image = store.types["sensor_msgs/msg/Image"]
    kit = RosbagsKit(store)
    msg = Image(header=codec.header(kit, 1.0, "cam_left_wrist_color_optical_frame"), height=4, width=5,
                encoding="bgr8", is_bigendian=0, step=18, data=padded.reshape(-1))
    frame = codec.decode_image(msg)
    assert frame.view == "left_wrist"
    np.testing.assert_array_equal(frame.image, img[:, :, ::-1])


def test_camera_info_matches_realsense_layout(store: Any) -> None:
    intr = _intrinsics()
    msg = codec.encode_camera_info(RosbagsKit(store), intr, STAMP, "cam_front_color_optical_frame")
    back, _ = _cdr_round_trip(store, msg, "sensor_msgs/msg/CameraInfo")
    np.testing.assert_array_equal(back.k.reshape(3, 3), intr.matrix)
    np.testing.assert_array_equal(back.p.reshape(3, 4)[:, :3], intr.matrix)
    np.testing.assert_array_equal(back.r.reshape(3, 3), np.eye(3))
    assert codec.decode_camera_info(back) == intr


def test_depth_round_trip_and_realsense_millimetres(store: Any) -> None:
    kit = RosbagsKit(store)
    depth = RNG.uniform(0.1, 2.0, (6, 8)).astype(np.float32)
    depth[0, 0] = np.nan
    back, _ = _cdr_round_trip(store, codec.encode_depth(kit, depth, STAMP, "d"), "sensor_msgs/msg/Image")
    np.testing.assert_array_equal(codec.decode_depth(back), depth)
    mm = np.array([[0, 1000], [1500, 65535]], np.uint16)
    msg = store.types["sensor_msgs/msg/Image"](
        header=codec.header(kit, 0.0, "cam_front_color_optical_frame"), height=2, width=2, encoding="16UC1",
        is_bigendian=0, step=4,
        data=mm.view(np.uint8).reshape(-1))
    m = codec.decode_depth(msg)
    assert np.isnan(m[0, 0])
    np.testing.assert_allclose(m[1], [1.5, 65.535], rtol=1e-6)


def test_joint_states_and_stamped_helpers(store: Any) -> None:
    kit = RosbagsKit(store)
    js = EXAMPLES[JointStates]()
    msg, _ = _cdr_round_trip(store, codec.encode_joint_states(kit, js), "sensor_msgs/msg/JointState")
    assert list(msg.name) == list(JOINTS) and msg.header.frame_id == "world" and len(msg.effort) == 0
    msg.velocity = np.zeros(0)  # JointState allows leaving velocities out
    assert np.isnan(codec.decode_joint_states(msg).velocity).all()
    for bad, field in (({"names": JOINTS[:3]}, "position"), ({"names": ("a",) * 14}, "names"),
                       ({"names": ("",) + JOINTS[1:]}, "names"), ({"stamp": float("nan")}, "stamp")):
        with pytest.raises(ValueError, match=field):
            replace(js, **bad)
    rig = EXAMPLES[RigState]()
    ps, _ = _cdr_round_trip(store, codec.encode_pose_stamped(kit, rig.left.tcp_pose, STAMP, "left_base"),
                            "geometry_msgs/msg/PoseStamped")
    _assert_same(codec.decode_pose(ps.pose), rig.left.tcp_pose)
    ws, _ = _cdr_round_trip(store, codec.encode_wrench_stamped(kit, rig.left.wrench, STAMP, "left_tcp"),
                            "geometry_msgs/msg/WrenchStamped")
    np.testing.assert_array_equal(codec.decode_wrench(ws.wrench), rig.left.wrench)


def test_diagnostic_array_with_several_statuses(store: Any) -> None:
    kit = RosbagsKit(store)
    a = DiagnosticStatus("/a", DiagnosticLevel.OK, "ok", {}, STAMP)
    b = DiagnosticStatus("/b", DiagnosticLevel.ERROR, "callback errors", {"last_error": "boom"}, STAMP)
    back, _ = _cdr_round_trip(store, codec.encode_diagnostics(kit, [a, b]), "diagnostic_msgs/msg/DiagnosticArray")
    assert codec.decode_diagnostics(back) == [a, b]


@pytest.mark.parametrize("level", list(DiagnosticLevel), ids=lambda lv: lv.name)
def test_diagnostics_decode_to_the_level_enum(store: Any, level: DiagnosticLevel) -> None:
    wire = codec.encode_diagnostics(RosbagsKit(store), [DiagnosticStatus("/a", int(level), "", {}, STAMP)])
    for raw in (int(level), bytes([level])):  # a byte field: rosbags gives an int, rclpy bytes
        back, _ = _cdr_round_trip(store, wire, "diagnostic_msgs/msg/DiagnosticArray")
        back.status[0].level = raw
        [decoded] = codec.decode_diagnostics(back)
        assert type(decoded.level) is DiagnosticLevel and decoded.level is level


def test_action_chunk_wire_layout(store: Any) -> None:
    chunk = _chunk(5)
    msg = codec.encode_action_chunk(RosbagsKit(store), chunk)
    assert (msg.num_steps, msg.action_dim) == (5, 14)
    assert msg.step_period == pytest.approx(1 / 30)
    np.testing.assert_array_equal(msg.targets.reshape(5, 2, 8), chunk.targets)
    raw = store.serialize_cdr(msg, "a2w_interfaces/msg/ActionChunk")
    assert len(raw) < 4096  # ros2_facts.md §6: a 60x14 chunk is ~3.4-3.9 KB; 5 steps far less


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda m: setattr(m, "action_dim", 7), "action_dim"),
        (lambda m: setattr(m, "num_steps", 4), "deltas"),
        (lambda m: setattr(m, "step_times", m.step_times[:-1]), "step_times"),
    ],
)
def test_malformed_action_chunk_is_rejected_naming_the_field(store: Any, mutate: Callable, field: str) -> None:
    msg = codec.encode_action_chunk(RosbagsKit(store), _chunk(5))
    mutate(msg)
    with pytest.raises(ValueError, match=field):
        codec.decode_action_chunk(msg)


def test_bad_values_are_rejected_naming_the_field(store: Any) -> None:
    kit = RosbagsKit(store)
    msg = codec.encode_rig_state(kit, EXAMPLES[RigState]())
    msg.mode = 9
    with pytest.raises(ValueError, match="mode"):
        codec.decode_rig_state(msg)
    img = codec.encode_image(kit, EXAMPLES[CameraFrame]())
    img.encoding = "mono16"
    with pytest.raises(ValueError, match="encoding"):
        codec.decode_image(img)
    with pytest.raises(ValueError, match="stamp"):
        codec.to_time(kit, float("nan"))
    with pytest.raises(TypeError, match="no ROS message mapping"):
        codec.topic_codec(dict)


def test_time_split_keeps_sub_microsecond_precision(store: Any) -> None:
    kit = RosbagsKit(store)
    for t in (0.0, 1e-9, 0.9999999996, STAMP, 2**31 - 1.5):
        m = codec.to_time(kit, t)
        assert 0 <= m.nanosec < 1_000_000_000
        assert abs(codec.from_time(m) - t) < 1e-6
