"""Codec round trips through real CDR bytes of the rosbags Jazzy typestore (with a2w_interfaces)."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Callable

import numpy as np
import pytest

from a2w.msgs.arms import ArmState, ArmTarget, ControlMode, RigState, RigTarget
from a2w.msgs.cameras import CameraFrame, CameraIntrinsics
from a2w.msgs.common import Pose
from a2w.msgs.diagnostics import DiagnosticLevel, DiagnosticStatus
from a2w.msgs.episode import EpisodeEvent, EpisodeEventKind
from a2w.msgs.policy import ActionChunk
from a2w.msgs.services import (
    Outcome,
    RecoverRequest,
    SetControlModeRequest,
    SetControlModeResponse,
    StartPolicyRequest,
    StopRequest,
)
from a2w.msgs.sim import ClockTick
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


EXAMPLES: dict[type, Callable[[], Any]] = {
    CameraFrame: lambda: CameraFrame("front", RNG.integers(0, 256, (48, 64, 3), dtype=np.uint8), STAMP),
    CameraIntrinsics: _intrinsics,
    Pose: _pose,
    ArmState: lambda: _arm_state("joint 3 over torque"),
    RigState: lambda: RigState(_arm_state(), replace(_arm_state("estop"), fresh=False), ControlMode.TELEOP, STAMP),
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
}

SERVICE_EXAMPLES: dict[type, tuple[Any, Any]] = {
    SetControlModeRequest: (SetControlModeRequest(ControlMode.POLICY, "/policy", override=True),
                            SetControlModeResponse(False, ControlMode.HOLD, "pass through HOLD first")),
    StartPolicyRequest: (StartPolicyRequest("put the cup on the plate"), Outcome(True, "started")),
    StopRequest: (StopRequest("operator"), Outcome(True)),
    RecoverRequest: (RecoverRequest(None), Outcome(False, "e-stop pressed")),
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
                                   err_msg=path)
    elif hasattr(a, "__dataclass_fields__"):
        assert type(a) is type(b), path
        for name in a.__dataclass_fields__:
            _assert_same(getattr(a, name), getattr(b, name), f"{path}.{name}")
    elif isinstance(a, tuple) and isinstance(b, tuple):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, float):
        assert math.isclose(a, b, abs_tol=1e-6), f"{path}: {a} != {b}"
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
        header=codec.header(kit, 0.0), height=2, width=2, encoding="16UC1", is_bigendian=0, step=4,
        data=mm.view(np.uint8).reshape(-1))
    m = codec.decode_depth(msg)
    assert np.isnan(m[0, 0])
    np.testing.assert_allclose(m[1], [1.5, 65.535], rtol=1e-6)


def test_joint_states_and_stamped_helpers(store: Any) -> None:
    kit = RosbagsKit(store)
    rig = EXAMPLES[RigState]()
    names = ([f"left_joint{i}" for i in range(1, 8)], [f"right_joint{i}" for i in range(1, 8)])
    js, _ = _cdr_round_trip(store, codec.encode_joint_state(kit, rig, names), "sensor_msgs/msg/JointState")
    assert list(js.name) == names[0] + names[1]
    np.testing.assert_array_equal(js.position[7:], rig.right.joint_positions)
    with pytest.raises(ValueError, match="joint_names"):
        codec.encode_joint_state(kit, rig, (names[0], names[1][:3]))
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
