"""Message types (``a2w.msgs``) to ROS 2 messages and back, written once against field names.

Encoders take a ``MessageKit`` that knows how one toolchain builds messages: rosbags' typestore
classes (``RosbagsKit``: tests, bags, tools without ROS) or rclpy's generated classes
(``a2w.ros.rclpy_kit.RclpyKit``: the rclpy host). Decoders only read attributes, so they accept
either kind of message. Both toolchains take every field as a keyword, so encoders always set
every field: a field added to a ``.msg`` without a codec change fails loudly in rosbags.

Images avoid copies where the libraries allow: encoding hands the frame's buffer to the message
(rosbags: a numpy view; rclpy: one copy into the ``array.array`` rclpy requires), decoding
returns a numpy view of the message buffer (rosbags deserialises zero-copy; rclpy's ``array.array``
is viewed with ``np.frombuffer``) (ros2_facts.md §0, §3).

What a standard message cannot carry is documented at each codec (e.g. ``CameraFrame.serial``).

Every ``std_msgs/Header`` carries a frame id from ``a2w.frames`` (``header`` refuses an empty one):
the frame a message's geometry is in, or ``world``, the rig's root, for messages about the whole rig.
A ``TopicCodec`` may feed companion topics besides its own: a ``CameraFrame`` publishes one
``camera_info`` next to its image, with the image's stamp and frame id (``ros_topics`` lists them).
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import numpy as np

from a2w import frames
from a2w.msgs.arms import ARM_NAMES, ArmsStatus, ArmState, ArmTarget, ControlMode, JointStates, RigState, RigTarget
from a2w.msgs.cameras import CameraFrame, CameraIntrinsics, DepthFrame, FrameMetadata
from a2w.msgs.common import Pose
from a2w.msgs.diagnostics import DiagnosticStatus
from a2w.msgs.episode import (
    EpisodeCommand,
    EpisodeControlRequest,
    EpisodeControlResponse,
    EpisodeEvent,
    EpisodeEventKind,
)
from a2w.msgs.policy import ACTION_DIM, ActionChunk
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

IFACE = "a2w_interfaces"

# uint8 constants of RigState.mode / RigTarget.source / SetControlMode.mode (a2w_interfaces msgs).
MODE_CODES: dict[ControlMode, int] = {
    ControlMode.IDLE: 0, ControlMode.HOLD: 1, ControlMode.TELEOP: 2, ControlMode.POLICY: 3,
}
MODES_BY_CODE = {v: k for k, v in MODE_CODES.items()}
EVENT_CODES: dict[EpisodeEventKind, int] = {
    EpisodeEventKind.START: 0, EpisodeEventKind.SAVE: 1,
    EpisodeEventKind.DISCARD: 2, EpisodeEventKind.MARK: 3,
}
EVENTS_BY_CODE = {v: k for k, v in EVENT_CODES.items()}
# ArmsStatus.recovery (RECOVERY_NONE / _OK / _FAILED).
RECOVERY_CODES: dict[bool | None, int] = {None: 0, True: 1, False: 2}
RECOVERY_BY_CODE = {v: k for k, v in RECOVERY_CODES.items()}


# -- toolchains -----------------------------------------------------------------------------
class MessageKit(abc.ABC):
    """Builds messages of one toolchain from field values."""

    @abc.abstractmethod
    def new(self, type_name: str, **fields: Any) -> Any:
        """A message of ``type_name`` (``pkg/msg/Name`` or ``pkg/srv/Name_Request``)."""

    @abc.abstractmethod
    def seq(self, values: np.ndarray, dtype: type) -> Any:
        """Value for a variable-length primitive sequence field (``float64[]``, ``uint8[]``)."""

    @abc.abstractmethod
    def fixed(self, values: np.ndarray, dtype: type) -> Any:
        """Value for a fixed-size primitive array field (``float64[9]``)."""

    def byte(self, value: int) -> Any:
        """Value for a ``byte`` field (rosbags: an int; rclpy: a 1-byte ``bytes``)."""
        return value


class RosbagsKit(MessageKit):
    """Messages as rosbags typestore dataclasses (serialise with ``typestore.serialize_cdr``)."""

    def __init__(self, typestore: Any) -> None:
        self.typestore = typestore

    def new(self, type_name: str, **fields: Any) -> Any:
        try:
            cls = self.typestore.types[type_name]
        except KeyError:
            raise LookupError(f"type {type_name} is not in the rosbags typestore") from None
        return cls(**fields)

    def seq(self, values: np.ndarray, dtype: type) -> Any:
        return np.ascontiguousarray(values, dtype=dtype).reshape(-1)

    def fixed(self, values: np.ndarray, dtype: type) -> Any:
        return np.ascontiguousarray(values, dtype=dtype).reshape(-1)


def as_array(value: Any, dtype: type) -> np.ndarray:
    """A numpy view of a message's array field (numpy, ``array.array``, bytes or a list)."""
    if isinstance(value, np.ndarray):
        return value if value.dtype == np.dtype(dtype) else value.astype(dtype)
    try:
        return np.frombuffer(value, dtype=dtype)
    except TypeError:
        return np.asarray(list(value), dtype=dtype)


# -- time -----------------------------------------------------------------------------------
def to_time(kit: MessageKit, t: float) -> Any:
    """Seconds (float) as ``builtin_interfaces/Time``; splitting first keeps sub-µs precision."""
    if not math.isfinite(t) or t < 0:
        raise ValueError(f"stamp: must be a finite, non-negative time, got {t!r}")
    sec = math.floor(t)
    nanosec = int(round((t - sec) * 1e9))
    if nanosec >= 1_000_000_000:
        sec, nanosec = sec + 1, nanosec - 1_000_000_000
    if sec > 2**31 - 1:
        raise ValueError(f"stamp: {t} does not fit builtin_interfaces/Time (int32 seconds)")
    return kit.new("builtin_interfaces/msg/Time", sec=int(sec), nanosec=nanosec)


def from_time(msg: Any) -> float:
    return float(msg.sec) + float(msg.nanosec) * 1e-9


def header(kit: MessageKit, stamp: float, frame_id: str) -> Any:
    """``std_msgs/Header``; ``frame_id`` must name a frame (``a2w.frames``): RViz, Foxglove and tf2
    cannot place a message whose frame id is empty."""
    if not isinstance(frame_id, str) or not frame_id:
        raise ValueError(f"header.frame_id: must name a frame (a2w.frames), got {frame_id!r}")
    return kit.new("std_msgs/msg/Header", stamp=to_time(kit, stamp), frame_id=frame_id)


# -- geometry -------------------------------------------------------------------------------
def encode_pose(kit: MessageKit, pose: Pose) -> Any:
    p, q = pose.position, pose.quaternion
    return kit.new(
        "geometry_msgs/msg/Pose",
        position=kit.new("geometry_msgs/msg/Point", x=float(p[0]), y=float(p[1]), z=float(p[2])),
        orientation=kit.new("geometry_msgs/msg/Quaternion",
                            x=float(q[0]), y=float(q[1]), z=float(q[2]), w=float(q[3])),
    )


def decode_pose(msg: Any) -> Pose:
    p, q = msg.position, msg.orientation
    return Pose(np.array([p.x, p.y, p.z]), np.array([q.x, q.y, q.z, q.w]))


def encode_pose_stamped(kit: MessageKit, pose: Pose, stamp: float, frame_id: str) -> Any:
    return kit.new("geometry_msgs/msg/PoseStamped", header=header(kit, stamp, frame_id),
                   pose=encode_pose(kit, pose))


def encode_wrench(kit: MessageKit, w: np.ndarray) -> Any:
    vec = "geometry_msgs/msg/Vector3"
    return kit.new(
        "geometry_msgs/msg/Wrench",
        force=kit.new(vec, x=float(w[0]), y=float(w[1]), z=float(w[2])),
        torque=kit.new(vec, x=float(w[3]), y=float(w[4]), z=float(w[5])),
    )


def decode_wrench(msg: Any) -> np.ndarray:
    f, t = msg.force, msg.torque
    return np.array([f.x, f.y, f.z, t.x, t.y, t.z])


def encode_wrench_stamped(kit: MessageKit, wrench: np.ndarray, stamp: float, frame_id: str) -> Any:
    return kit.new("geometry_msgs/msg/WrenchStamped", header=header(kit, stamp, frame_id),
                   wrench=encode_wrench(kit, wrench))


def encode_transform(kit: MessageKit, t: FrameTransform) -> Any:
    p, q = t.pose.position, t.pose.quaternion
    vec = "geometry_msgs/msg/Vector3"
    return kit.new(
        "geometry_msgs/msg/TransformStamped", header=header(kit, t.stamp, t.parent), child_frame_id=t.child,
        transform=kit.new(
            "geometry_msgs/msg/Transform",
            translation=kit.new(vec, x=float(p[0]), y=float(p[1]), z=float(p[2])),
            rotation=kit.new("geometry_msgs/msg/Quaternion", x=float(q[0]), y=float(q[1]), z=float(q[2]),
                             w=float(q[3]))),
    )


def decode_transform(msg: Any) -> FrameTransform:
    tr, q = msg.transform.translation, msg.transform.rotation
    return FrameTransform(str(msg.header.frame_id), str(msg.child_frame_id),
                          Pose(np.array([tr.x, tr.y, tr.z]), np.array([q.x, q.y, q.z, q.w])),
                          from_time(msg.header.stamp))


def encode_tf(kit: MessageKit, tfs: FrameTransforms) -> Any:
    return kit.new("tf2_msgs/msg/TFMessage", transforms=[encode_transform(kit, t) for t in tfs.transforms])


def decode_tf(msg: Any) -> FrameTransforms:
    return FrameTransforms(tuple(decode_transform(t) for t in msg.transforms))


# -- cameras --------------------------------------------------------------------------------
def encode_camera_info(kit: MessageKit, intr: CameraIntrinsics, stamp: float, frame_id: str) -> Any:
    k = intr.matrix
    p = np.zeros((3, 4))
    p[:, :3] = k
    roi = kit.new("sensor_msgs/msg/RegionOfInterest", x_offset=0, y_offset=0, height=0, width=0,
                  do_rectify=False)
    return kit.new(
        "sensor_msgs/msg/CameraInfo",
        header=header(kit, stamp, frame_id),
        height=int(intr.height), width=int(intr.width),
        distortion_model=intr.distortion_model,
        d=kit.seq(np.asarray(intr.distortion, dtype=np.float64), np.float64),
        k=kit.fixed(k, np.float64),
        r=kit.fixed(np.eye(3), np.float64),
        p=kit.fixed(p, np.float64),
        binning_x=0, binning_y=0, roi=roi,
    )


def decode_camera_info(msg: Any) -> CameraIntrinsics:
    k = as_array(msg.k, np.float64)
    if k.size != 9:
        raise ValueError(f"camera_info.k: must have 9 entries, got {k.size}")
    return CameraIntrinsics(
        width=int(msg.width), height=int(msg.height),
        fx=float(k[0]), fy=float(k[4]), cx=float(k[2]), cy=float(k[5]),
        distortion_model=str(msg.distortion_model),
        distortion=tuple(float(d) for d in as_array(msg.d, np.float64)),
    )


def encode_image(kit: MessageKit, frame: CameraFrame) -> Any:
    """``sensor_msgs/Image`` rgb8. ``frame_number``, ``serial`` and depth are not carried (the
    realsense driver puts those in its metadata and depth topics); intrinsics go to CameraInfo."""
    img = frame.image
    h, w = img.shape[:2]
    return kit.new(
        "sensor_msgs/msg/Image",
        header=header(kit, frame.stamp, frame.frame_id or frames.optical_frame(frame.view)),
        height=h, width=w, encoding="rgb8", is_bigendian=0, step=w * 3,
        data=kit.seq(img, np.uint8),
    )


def image_array(msg: Any) -> np.ndarray:
    """Pixels of an 8-bit 3-channel Image as an (H, W, 3) view of the message buffer."""
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    flat = as_array(msg.data, np.uint8)
    if step < w * 3 or flat.size < h * step:
        raise ValueError(f"image: {flat.size} bytes do not hold {h} rows of step {step} for width {w}")
    rows = flat[: h * step].reshape(h, step)
    return rows[:, : w * 3].reshape(h, w, 3)


def decode_image(msg: Any, view: str | None = None,
                 intrinsics: CameraIntrinsics | None = None) -> CameraFrame:
    """A CameraFrame whose image is a view of ``msg``'s buffer (bgr8 is converted, so copied).

    ``view`` defaults to the name in a ``cam_<view>_color_optical_frame`` frame id.
    """
    enc = str(msg.encoding)
    if enc not in ("rgb8", "bgr8"):
        raise ValueError(f"image.encoding: expected rgb8 or bgr8, got {enc!r}")
    img = image_array(msg)
    if enc == "bgr8":
        img = np.ascontiguousarray(img[:, :, ::-1])
    frame_id = str(msg.header.frame_id)
    return CameraFrame(
        view=view or frames.view_of_optical_frame(frame_id) or frame_id or "camera",
        image=img, stamp=from_time(msg.header.stamp), intrinsics=intrinsics, frame_id=frame_id,
    )


def encode_depth(kit: MessageKit, depth_m: np.ndarray, stamp: float, frame_id: str) -> Any:
    """Depth in metres as ``32FC1`` (REP 118); NaN marks missing depth (``DepthFrame``'s convention)."""
    d = np.ascontiguousarray(depth_m, dtype=np.float32)
    if d.ndim != 2:
        raise ValueError(f"depth: shape must be (H, W), got {d.shape}")
    h, w = d.shape
    return kit.new(
        "sensor_msgs/msg/Image", header=header(kit, stamp, frame_id), height=h, width=w,
        encoding="32FC1", is_bigendian=0, step=w * 4, data=kit.seq(d.view(np.uint8), np.uint8),
    )


def decode_depth(msg: Any) -> np.ndarray:
    """Depth in metres from ``32FC1`` or realsense ``16UC1`` (millimetres; 0 = missing -> NaN)."""
    enc, h, w = str(msg.encoding), int(msg.height), int(msg.width)
    raw = as_array(msg.data, np.uint8)
    if enc == "32FC1":
        return raw[: h * int(msg.step)].reshape(h, int(msg.step))[:, : w * 4].copy().view(np.float32)
    if enc == "16UC1":
        mm = raw[: h * int(msg.step)].reshape(h, int(msg.step))[:, : w * 2].copy().view(np.uint16)
        out = mm.astype(np.float32) * 0.001  # realsense depth scale (ros2_facts.md §6)
        out[mm == 0] = np.nan
        return out
    raise ValueError(f"depth.encoding: expected 32FC1 or 16UC1, got {enc!r}")


def encode_depth_frame(kit: MessageKit, d: DepthFrame) -> Any:
    """``sensor_msgs/Image`` 32FC1 in the colour optical frame, as realsense-ros's aligned depth
    (``frame_number`` is not carried: it is in the colour frame's metadata)."""
    return encode_depth(kit, d.depth, d.stamp, d.frame_id or frames.optical_frame(d.view))


def decode_depth_frame(msg: Any) -> DepthFrame:
    frame_id = str(msg.header.frame_id)
    return DepthFrame(view=frames.view_of_optical_frame(frame_id) or frame_id or "camera",
                      depth=decode_depth(msg), stamp=from_time(msg.header.stamp), frame_id=frame_id)


def encode_frame_metadata(kit: MessageKit, m: FrameMetadata) -> Any:
    return kit.new(
        f"{IFACE}/msg/FrameMetadata", header=header(kit, m.stamp, frames.optical_frame(m.view)),
        serial=m.serial, frame_number=int(m.frame_number), device_stamp_ms=float(m.device_stamp_ms),
        domain=m.domain, arrival=to_time(kit, m.arrival), exposure_us=float(m.exposure_us), gain=float(m.gain),
    )


def decode_frame_metadata(msg: Any) -> FrameMetadata:
    frame_id = str(msg.header.frame_id)
    return FrameMetadata(
        view=frames.view_of_optical_frame(frame_id) or frame_id, serial=str(msg.serial),
        frame_number=int(msg.frame_number), stamp=from_time(msg.header.stamp),
        device_stamp_ms=float(msg.device_stamp_ms), domain=str(msg.domain), arrival=from_time(msg.arrival),
        exposure_us=float(msg.exposure_us), gain=float(msg.gain),
    )


# -- arms -----------------------------------------------------------------------------------
def _mode_code(mode: ControlMode, field: str) -> int:
    try:
        return MODE_CODES[ControlMode(mode)]
    except (KeyError, ValueError):
        raise ValueError(f"{field}: unknown control mode {mode!r}") from None


def _mode(code: int, field: str) -> ControlMode:
    try:
        return MODES_BY_CODE[int(code)]
    except KeyError:
        raise ValueError(f"{field}: unknown mode code {code!r}") from None


def encode_arm_state(kit: MessageKit, s: ArmState, arm: str) -> Any:
    """``arm`` ("left" or "right") names the base frame the pose and wrench are in."""
    return kit.new(
        f"{IFACE}/msg/ArmState",
        stamp=to_time(kit, s.stamp), frame_id=frames.base_frame(arm), tcp_pose=encode_pose(kit, s.tcp_pose),
        joint_positions=kit.seq(s.joint_positions, np.float64),
        joint_velocities=kit.seq(s.joint_velocities, np.float64),
        wrench=encode_wrench(kit, s.wrench), gripper_open=float(s.gripper_open),
        fault=s.fault, enabled=bool(s.enabled), fresh=bool(s.fresh),
    )


def decode_arm_state(msg: Any, arm: str) -> ArmState:
    """Refuses a state whose pose is not in ``arm``'s base frame (the domain type has no frame)."""
    if str(msg.frame_id) != frames.base_frame(arm):
        raise ValueError(f"{arm}.frame_id: expected {frames.base_frame(arm)!r}, got {str(msg.frame_id)!r}")
    return ArmState(
        tcp_pose=decode_pose(msg.tcp_pose),
        joint_positions=as_array(msg.joint_positions, np.float64),
        joint_velocities=as_array(msg.joint_velocities, np.float64),
        wrench=decode_wrench(msg.wrench), gripper_open=float(msg.gripper_open),
        stamp=from_time(msg.stamp), fault=str(msg.fault), enabled=bool(msg.enabled),
        fresh=bool(msg.fresh),
    )


def encode_rig_state(kit: MessageKit, s: RigState) -> Any:
    return kit.new(
        f"{IFACE}/msg/RigState", header=header(kit, s.stamp, frames.WORLD), mode=_mode_code(s.mode, "mode"),
        left=encode_arm_state(kit, s.left, ARM_NAMES[0]), right=encode_arm_state(kit, s.right, ARM_NAMES[1]),
    )


def decode_rig_state(msg: Any) -> RigState:
    return RigState(decode_arm_state(msg.left, ARM_NAMES[0]), decode_arm_state(msg.right, ARM_NAMES[1]),
                    _mode(msg.mode, "mode"), from_time(msg.header.stamp))


def encode_joint_states(kit: MessageKit, s: JointStates) -> Any:
    """``sensor_msgs/JointState`` for ``/joint_states`` (no efforts: the list stays empty, as the
    message allows). The header names ``world``: joint values have no frame of their own, and
    ``world`` is the root of the URDF tree the joints belong to (robot_state_publisher ignores it)."""
    return kit.new("sensor_msgs/msg/JointState", header=header(kit, s.stamp, frames.WORLD), name=list(s.names),
                   position=kit.seq(s.position, np.float64), velocity=kit.seq(s.velocity, np.float64),
                   effort=kit.seq(np.zeros(0), np.float64))


def decode_joint_states(msg: Any) -> JointStates:
    """Velocities a publisher left out (an empty list, as JointState allows) decode as NaN."""
    names = tuple(str(n) for n in msg.name)
    vel = as_array(msg.velocity, np.float64)
    if vel.size == 0 and names:
        vel = np.full(len(names), np.nan)
    return JointStates(names, as_array(msg.position, np.float64), vel, from_time(msg.header.stamp))


def encode_arms_status(kit: MessageKit, s: ArmsStatus) -> Any:
    return kit.new(
        f"{IFACE}/msg/ArmsStatus", stamp=to_time(kit, s.stamp), mode=_mode_code(s.mode, "mode"),
        motion=s.motion, message=s.message, faults=list(s.faults), warnings=list(s.warnings),
        recovery=RECOVERY_CODES[s.recovery_ok], owner=s.owner,
    )


def decode_arms_status(msg: Any) -> ArmsStatus:
    try:
        recovery = RECOVERY_BY_CODE[int(msg.recovery)]
    except KeyError:
        raise ValueError(f"arms_status.recovery: unknown code {msg.recovery!r}") from None
    return ArmsStatus(
        mode=_mode(msg.mode, "mode"), motion=str(msg.motion), message=str(msg.message),
        faults=tuple(str(f) for f in msg.faults), stamp=from_time(msg.stamp), recovery_ok=recovery,
        owner=str(msg.owner), warnings=tuple(str(w) for w in msg.warnings),
    )


def encode_arm_target(kit: MessageKit, t: ArmTarget) -> Any:
    return kit.new(f"{IFACE}/msg/ArmTarget", tcp_pose=encode_pose(kit, t.tcp_pose),
                   gripper_open=float(t.gripper_open))


def decode_arm_target(msg: Any) -> ArmTarget:
    return ArmTarget(decode_pose(msg.tcp_pose), float(msg.gripper_open))


def encode_rig_target(kit: MessageKit, t: RigTarget) -> Any:
    return kit.new(
        f"{IFACE}/msg/RigTarget", header=header(kit, t.stamp, frames.WORLD),
        source=_mode_code(t.source, "source"), requester=t.requester,
        left=encode_arm_target(kit, t.left), right=encode_arm_target(kit, t.right),
    )


def decode_rig_target(msg: Any) -> RigTarget:
    return RigTarget(decode_arm_target(msg.left), decode_arm_target(msg.right),
                     from_time(msg.header.stamp), _mode(msg.source, "source"), str(msg.requester))


# -- policy ---------------------------------------------------------------------------------
def encode_action_chunk(kit: MessageKit, c: ActionChunk) -> Any:
    n = len(c)
    period = float(np.median(np.diff(c.times))) if n > 1 else 0.0
    return kit.new(
        f"{IFACE}/msg/ActionChunk", header=header(kit, c.obs_stamp, frames.WORLD), seq=int(c.seq),
        step_period=period, num_steps=n, action_dim=ACTION_DIM,
        deltas=kit.seq(c.deltas, np.float32), targets=kit.seq(c.targets, np.float64),
        step_times=[to_time(kit, float(t)) for t in c.times], source=c.source,
    )


def decode_action_chunk(msg: Any) -> ActionChunk:
    n, dim = int(msg.num_steps), int(msg.action_dim)
    if dim != ACTION_DIM:
        raise ValueError(f"action_chunk.action_dim: expected {ACTION_DIM}, got {dim}")
    deltas = as_array(msg.deltas, np.float32)
    targets = as_array(msg.targets, np.float64)
    if deltas.size != n * dim:
        raise ValueError(f"action_chunk.deltas: {deltas.size} values for {n} x {dim}")
    if targets.size != n * 16:
        raise ValueError(f"action_chunk.targets: {targets.size} values for {n} x 2 x 8")
    if len(msg.step_times) != n:
        raise ValueError(f"action_chunk.step_times: {len(msg.step_times)} stamps for {n} steps")
    return ActionChunk(
        deltas=deltas.reshape(n, dim), targets=targets.reshape(n, 2, 8),
        times=np.array([from_time(t) for t in msg.step_times]), seq=int(msg.seq),
        obs_stamp=from_time(msg.header.stamp), source=str(msg.source),
    )


def encode_shadow_report(kit: MessageKit, r: ShadowReport) -> Any:
    # float32 fields; inf (a view the shadow could not judge) survives the conversion
    return kit.new(f"{IFACE}/msg/ShadowReport", header=header(kit, r.stamp, frames.WORLD), chunk_seq=int(r.window),
                   views=list(r.views), view_scores=kit.seq(np.asarray(r.view_scores), np.float32),
                   view_ssim=kit.seq(np.asarray(r.view_ssim), np.float32), score=float(np.float32(r.score)),
                   band_low=0.0, band_high=float(np.float32(r.warn_threshold)), level=int(r.level), alarm=r.alarm,
                   horizon=float(r.horizon), lag=float(r.lag))


def decode_shadow_report(msg: Any) -> ShadowReport:
    return ShadowReport(from_time(msg.header.stamp), int(msg.chunk_seq), tuple(msg.views),
                        tuple(float(s) for s in msg.view_scores), tuple(float(s) for s in msg.view_ssim),
                        float(msg.score), float(msg.band_high), int(msg.level), float(msg.horizon), float(msg.lag))


def encode_episode_event(kit: MessageKit, e: EpisodeEvent) -> Any:
    return kit.new(f"{IFACE}/msg/EpisodeEvent", header=header(kit, e.stamp, frames.WORLD),
                   kind=EVENT_CODES[e.kind], episode_index=int(e.episode_index),
                   task=e.task, note=e.note)


def decode_episode_event(msg: Any) -> EpisodeEvent:
    try:
        kind = EVENTS_BY_CODE[int(msg.kind)]
    except KeyError:
        raise ValueError(f"episode_event.kind: unknown code {msg.kind!r}") from None
    return EpisodeEvent(kind, from_time(msg.header.stamp), int(msg.episode_index),
                        str(msg.task), str(msg.note))


# -- health and time ------------------------------------------------------------------------
def encode_diagnostics(kit: MessageKit, statuses: Iterable[DiagnosticStatus],
                       stamp: float | None = None) -> Any:
    """One ``DiagnosticArray``; its stamp is ``stamp`` or the newest status stamp."""
    items = list(statuses)
    if not items:
        raise ValueError("statuses: a DiagnosticArray needs at least one status")
    st = [
        kit.new("diagnostic_msgs/msg/DiagnosticStatus", level=kit.byte(s.level),
                name=s.name, message=s.message, hardware_id="",
                values=[kit.new("diagnostic_msgs/msg/KeyValue", key=k, value=v) for k, v in s.values.items()])
        for s in items
    ]
    t = stamp if stamp is not None else max(s.stamp for s in items)
    return kit.new("diagnostic_msgs/msg/DiagnosticArray", header=header(kit, t, frames.WORLD), status=st)


def _level(value: Any) -> int:
    """The level byte (rosbags: an int, rclpy: bytes); ``DiagnosticStatus`` makes it a ``DiagnosticLevel``."""
    return value[0] if isinstance(value, (bytes, bytearray)) else int(value)


def decode_diagnostics(msg: Any) -> list[DiagnosticStatus]:
    t = from_time(msg.header.stamp)
    return [DiagnosticStatus(str(s.name), _level(s.level), str(s.message),
                             {str(kv.key): str(kv.value) for kv in s.values}, t)
            for s in msg.status]


def encode_clock(kit: MessageKit, tick: ClockTick) -> Any:
    return kit.new("rosgraph_msgs/msg/Clock", clock=to_time(kit, tick.time))


def decode_clock(msg: Any) -> ClockTick:
    return ClockTick(from_time(msg.clock))


# -- simulator ------------------------------------------------------------------------------
def encode_sim_status(kit: MessageKit, s: SimStatus) -> Any:
    return kit.new(f"{IFACE}/msg/SimStatus", stamp=to_time(kit, s.stamp), task=s.task, seed=int(s.seed),
                   success=bool(s.success), expert_done=bool(s.expert_done), faults=list(s.faults),
                   realtime_factor=float(s.realtime_factor))


def decode_sim_status(msg: Any) -> SimStatus:
    return SimStatus(stamp=from_time(msg.stamp), task=str(msg.task), seed=int(msg.seed), success=bool(msg.success),
                     expert_done=bool(msg.expert_done), faults=tuple(str(f) for f in msg.faults),
                     realtime_factor=float(msg.realtime_factor))


def encode_task_facts(kit: MessageKit, f: TaskFacts) -> Any:
    """Poses in the table frame, ``world``, which the header names."""
    return kit.new(f"{IFACE}/msg/TaskFacts", header=header(kit, f.stamp, frames.WORLD), task=f.task,
                   seed=int(f.seed), object_name=f.object_name, object_pose=encode_pose(kit, f.object_pose),
                   left_base=encode_pose(kit, f.arm_bases[0]), right_base=encode_pose(kit, f.arm_bases[1]),
                   arm=f.arm)


def decode_task_facts(msg: Any) -> TaskFacts:
    if str(msg.header.frame_id) != frames.WORLD:
        raise ValueError(f"task_facts.header.frame_id: poses must be in {frames.WORLD!r}, "
                         f"got {str(msg.header.frame_id)!r}")
    return TaskFacts(stamp=from_time(msg.header.stamp), task=str(msg.task), seed=int(msg.seed),
                     object_name=str(msg.object_name), object_pose=decode_pose(msg.object_pose),
                     arm_bases=(decode_pose(msg.left_base), decode_pose(msg.right_base)), arm=str(msg.arm))


def encode_fault_event(kit: MessageKit, e: FaultEvent) -> Any:
    return kit.new(f"{IFACE}/msg/FaultEvent", name=e.name, target=e.target, onset=to_time(kit, e.onset),
                   scheduled=to_time(kit, e.scheduled), detail=e.detail)


def decode_fault_event(msg: Any) -> FaultEvent:
    return FaultEvent(str(msg.name), str(msg.target), from_time(msg.onset), from_time(msg.scheduled),
                      str(msg.detail))


# -- services -------------------------------------------------------------------------------
def _outcome_msg(kit: MessageKit, srv: str, r: Outcome) -> Any:
    return kit.new(f"{IFACE}/srv/{srv}_Response", success=bool(r.success), message=r.message)


def _outcome(msg: Any) -> Outcome:
    return Outcome(bool(msg.success), str(msg.message))


def _recover_arm(arm: int | None) -> int:
    return -1 if arm is None else int(arm)


EPISODE_COMMAND_CODES: dict[EpisodeCommand, int] = {
    EpisodeCommand.START: 0, EpisodeCommand.SAVE: 1, EpisodeCommand.DISCARD: 2, EpisodeCommand.RERECORD: 3,
}


def _episode_command(code: int) -> EpisodeCommand:
    for cmd, c in EPISODE_COMMAND_CODES.items():
        if c == int(code):
            return cmd
    raise ValueError(f"episode_control.command: unknown code {code!r}")


# -- registry -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Companion:
    """A second topic a publisher of a domain type feeds with each message (``camera_info`` next to
    an image). ``encode`` returns None when a message has nothing for it (a frame without
    intrinsics)."""

    topic: Callable[[str], str]  # the companion's topic from the publisher's topic
    ros_type: str
    encode: Callable[[MessageKit, Any], Any | None]


@dataclass(frozen=True)
class TopicCodec:
    """How a domain type travels on a topic. ``decode`` returns a list: one ROS message may hold
    several domain messages (a DiagnosticArray holds several statuses)."""

    domain: type
    ros_type: str
    encode: Callable[[MessageKit, Any], Any]
    decode: Callable[[Any], list[Any]]
    companions: tuple[Companion, ...] = ()


def camera_info_topic(image_topic: str) -> str:
    """realsense-ros layout: ``.../color/image_raw`` -> ``.../color/camera_info``."""
    head = image_topic.rsplit("/", 1)[0] if "/" in image_topic else ""
    return f"{head}/camera_info" if head else "camera_info"


def encode_frame_camera_info(kit: MessageKit, frame: CameraFrame) -> Any | None:
    """The frame's CameraInfo with the image's stamp and frame id; None without intrinsics."""
    if frame.intrinsics is None:
        return None
    return encode_camera_info(kit, frame.intrinsics, frame.stamp, frame.frame_id or frames.optical_frame(frame.view))


@dataclass(frozen=True)
class ServiceCodec:
    request: type
    response: type
    ros_type: str  # pkg/srv/Name
    encode_request: Callable[[MessageKit, Any], Any]
    decode_request: Callable[[Any], Any]
    encode_response: Callable[[MessageKit, Any], Any]
    decode_response: Callable[[Any], Any]


def _one(fn: Callable[[Any], Any]) -> Callable[[Any], list[Any]]:
    return lambda msg: [fn(msg)]


TOPICS: dict[type, TopicCodec] = {}
SERVICES: dict[type, ServiceCodec] = {}


def register_topic(codec: TopicCodec) -> None:
    """Make a domain type publishable on either host (for components that add their own)."""
    TOPICS[codec.domain] = codec


def register_service(codec: ServiceCodec) -> None:
    SERVICES[codec.request] = codec


# CameraIntrinsics and ArmState have no topic of their own: intrinsics travel as the camera_info
# companion of each image (one per image, the image's stamp and frame id), and an ArmState inside a
# RigState, which names the base frame each arm's pose is in.
for _c in (
    TopicCodec(CameraFrame, "sensor_msgs/msg/Image", encode_image, _one(decode_image),
               (Companion(camera_info_topic, "sensor_msgs/msg/CameraInfo", encode_frame_camera_info),)),
    TopicCodec(DepthFrame, "sensor_msgs/msg/Image", encode_depth_frame, _one(decode_depth_frame)),
    TopicCodec(FrameMetadata, f"{IFACE}/msg/FrameMetadata", encode_frame_metadata, _one(decode_frame_metadata)),
    TopicCodec(Pose, "geometry_msgs/msg/Pose", encode_pose, _one(decode_pose)),
    TopicCodec(RigState, f"{IFACE}/msg/RigState", encode_rig_state, _one(decode_rig_state)),
    TopicCodec(JointStates, "sensor_msgs/msg/JointState", encode_joint_states, _one(decode_joint_states)),
    TopicCodec(ArmsStatus, f"{IFACE}/msg/ArmsStatus", encode_arms_status, _one(decode_arms_status)),
    TopicCodec(ArmTarget, f"{IFACE}/msg/ArmTarget", encode_arm_target, _one(decode_arm_target)),
    TopicCodec(RigTarget, f"{IFACE}/msg/RigTarget", encode_rig_target, _one(decode_rig_target)),
    TopicCodec(ActionChunk, f"{IFACE}/msg/ActionChunk", encode_action_chunk,
               _one(decode_action_chunk)),
    TopicCodec(ShadowReport, f"{IFACE}/msg/ShadowReport", encode_shadow_report, _one(decode_shadow_report)),
    TopicCodec(EpisodeEvent, f"{IFACE}/msg/EpisodeEvent", encode_episode_event,
               _one(decode_episode_event)),
    TopicCodec(DiagnosticStatus, "diagnostic_msgs/msg/DiagnosticArray",
               lambda k, s: encode_diagnostics(k, [s]), decode_diagnostics),
    TopicCodec(ClockTick, "rosgraph_msgs/msg/Clock", encode_clock, _one(decode_clock)),
    TopicCodec(SimStatus, f"{IFACE}/msg/SimStatus", encode_sim_status, _one(decode_sim_status)),
    TopicCodec(TaskFacts, f"{IFACE}/msg/TaskFacts", encode_task_facts, _one(decode_task_facts)),
    TopicCodec(FaultEvent, f"{IFACE}/msg/FaultEvent", encode_fault_event, _one(decode_fault_event)),
    TopicCodec(FrameTransforms, "tf2_msgs/msg/TFMessage", encode_tf, _one(decode_tf)),
    TopicCodec(RobotDescription, "std_msgs/msg/String", lambda k, d: k.new("std_msgs/msg/String", data=d.urdf),
               _one(lambda m: RobotDescription(str(m.data)))),
):
    register_topic(_c)

for _s in (
    ServiceCodec(
        SetControlModeRequest, SetControlModeResponse, f"{IFACE}/srv/SetControlMode",
        lambda k, r: k.new(f"{IFACE}/srv/SetControlMode_Request",
                           mode=_mode_code(r.mode, "mode"), requester=r.requester,
                           override=bool(r.override)),
        lambda m: SetControlModeRequest(_mode(m.mode, "mode"), str(m.requester), bool(m.override)),
        lambda k, r: k.new(f"{IFACE}/srv/SetControlMode_Response", success=bool(r.success),
                           mode=_mode_code(r.mode, "mode"), message=r.message),
        lambda m: SetControlModeResponse(bool(m.success), _mode(m.mode, "mode"), str(m.message)),
    ),
    ServiceCodec(
        StartPolicyRequest, Outcome, f"{IFACE}/srv/StartPolicy",
        lambda k, r: k.new(f"{IFACE}/srv/StartPolicy_Request", instruction=r.instruction),
        lambda m: StartPolicyRequest(str(m.instruction)),
        lambda k, r: _outcome_msg(k, "StartPolicy", r), _outcome,
    ),
    ServiceCodec(
        SetInstructionRequest, Outcome, f"{IFACE}/srv/SetInstruction",
        lambda k, r: k.new(f"{IFACE}/srv/SetInstruction_Request", instruction=r.instruction),
        lambda m: SetInstructionRequest(str(m.instruction)),
        lambda k, r: _outcome_msg(k, "SetInstruction", r), _outcome,
    ),
    ServiceCodec(
        StopRequest, Outcome, f"{IFACE}/srv/Stop",
        lambda k, r: k.new(f"{IFACE}/srv/Stop_Request", reason=r.reason),
        lambda m: StopRequest(str(m.reason)),
        lambda k, r: _outcome_msg(k, "Stop", r), _outcome,
    ),
    ServiceCodec(
        RecoverRequest, Outcome, f"{IFACE}/srv/Recover",
        lambda k, r: k.new(f"{IFACE}/srv/Recover_Request", arm=_recover_arm(r.arm)),
        lambda m: RecoverRequest(None if int(m.arm) < 0 else int(m.arm)),
        lambda k, r: _outcome_msg(k, "Recover", r), _outcome,
    ),
    ServiceCodec(
        EpisodeControlRequest, EpisodeControlResponse, f"{IFACE}/srv/EpisodeControl",
        lambda k, r: k.new(f"{IFACE}/srv/EpisodeControl_Request", command=EPISODE_COMMAND_CODES[r.command],
                           task=r.task, seed=int(r.seed)),
        lambda m: EpisodeControlRequest(_episode_command(m.command), str(m.task), int(m.seed)),
        lambda k, r: k.new(f"{IFACE}/srv/EpisodeControl_Response", success=bool(r.success), message=r.message,
                           episode_index=int(r.episode_index)),
        lambda m: EpisodeControlResponse(bool(m.success), str(m.message), int(m.episode_index)),
    ),
):
    register_service(_s)


def topic_codec(domain: type) -> TopicCodec:
    """The codec for ``domain``; ``TypeError`` listing the supported types if there is none."""
    try:
        return TOPICS[domain]
    except KeyError:
        known = sorted(t.__name__ for t in TOPICS)
        raise TypeError(
            f"no ROS message mapping for {domain.__qualname__}; supported: {known} "
            "(add one with a2w.ros.codec.register_topic)"
        ) from None


def ros_topics(topic: str, domain: type) -> list[tuple[str, str]]:
    """(topic, ROS type) of every topic a publisher of ``domain`` on ``topic`` feeds: its own and
    its companions'. ``TypeError`` as ``topic_codec`` when there is no mapping."""
    c = topic_codec(domain)
    return [(topic, c.ros_type)] + [(comp.topic(topic), comp.ros_type) for comp in c.companions]


def service_codec(request: type) -> ServiceCodec:
    try:
        return SERVICES[request]
    except KeyError:
        known = sorted(t.__name__ for t in SERVICES)
        raise TypeError(
            f"no ROS service mapping for request type {request.__qualname__}; supported: {known} "
            "(add one with a2w.ros.codec.register_service)"
        ) from None
