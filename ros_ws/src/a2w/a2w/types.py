"""Domain types shared by every room of the runtime (cameras, arms, policy, shadow, record).

All constructors validate their inputs and raise ``ValueError`` naming the offending field, so a
malformed message is rejected where it enters the system instead of moving an arm. Units are SI,
stamps are float seconds on the component's clock, quaternions are ROS/SciPy order (x, y, z, w)
(DESIGN.md §4). Arrays are stored as read-only numpy arrays so a consumer cannot mutate what
another consumer of the same message sees.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

ARM_NAMES: tuple[str, str] = ("left", "right")  # arm 0 is the left arm (DESIGN.md §4)
VIEW_NAMES: tuple[str, str, str] = ("left_wrist", "right_wrist", "front")
# Release view ids: 0 = left wrist, 1 = right wrist, 2 = front (a2world_release_facts.md §6.2).
VIEW_IDS: Mapping[str, int] = {"left_wrist": 0, "right_wrist": 1, "front": 2}
ACTION_DIM = 14  # per arm [dx, dy, dz, droll, dpitch, dyaw, gripper_open]
QUAT_UNIT_TOL = 1e-3


def _frozen_array(
    name: str,
    value: Any,
    *,
    shape: tuple[int | None, ...] | None = None,
    dtype: type | np.dtype | None = None,
    finite: bool = True,
) -> np.ndarray:
    """Return ``value`` as a read-only array, checking shape (None = any), dtype and finiteness."""
    if dtype is not None and isinstance(value, np.ndarray) and value.dtype != np.dtype(dtype):
        if not (np.issubdtype(np.dtype(dtype), np.floating) and np.issubdtype(value.dtype, np.number)):
            raise ValueError(f"{name}: dtype must be {np.dtype(dtype)}, got {value.dtype}")
    try:
        arr = np.array(value, dtype=dtype, copy=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: cannot convert to an array ({exc})") from exc
    if shape is not None:
        ok = arr.ndim == len(shape) and all(s is None or s == d for s, d in zip(shape, arr.shape))
        if not ok:
            want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
            raise ValueError(f"{name}: shape must be {want}, got {arr.shape}")
    if finite and np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains non-finite values (NaN or inf)")
    arr.flags.writeable = False
    return arr


def _finite_scalar(name: str, value: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: must be a number, got {value!r}") from exc
    if not math.isfinite(v):
        raise ValueError(f"{name}: must be finite, got {v}")
    return v


def _unit_quaternion(name: str, value: Any) -> np.ndarray:
    q = _frozen_array(name, value, shape=(4,), dtype=np.float64)
    norm = float(np.linalg.norm(q))
    if abs(norm - 1.0) > QUAT_UNIT_TOL:
        raise ValueError(f"{name}: quaternion must have unit norm, got norm {norm:.6f}")
    return q


class ControlMode(str, enum.Enum):
    """Who owns the arms (DESIGN.md §2). A change always passes through HOLD."""

    IDLE = "idle"
    HOLD = "hold"
    TELEOP = "teleop"
    POLICY = "policy"


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics of the image as published (after any resize), plus distortion."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    distortion_model: str = "plumb_bob"
    distortion: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        for f in ("width", "height"):
            v = getattr(self, f)
            if not isinstance(v, (int, np.integer)) or v <= 0:
                raise ValueError(f"intrinsics.{f}: must be a positive integer, got {v!r}")
        for f in ("fx", "fy"):
            if _finite_scalar(f"intrinsics.{f}", getattr(self, f)) <= 0:
                raise ValueError(f"intrinsics.{f}: must be positive")
        for f in ("cx", "cy"):
            _finite_scalar(f"intrinsics.{f}", getattr(self, f))
        object.__setattr__(self, "distortion", tuple(float(d) for d in self.distortion))

    @property
    def matrix(self) -> np.ndarray:
        """The 3x3 camera matrix K."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def scaled(self, width: int, height: int) -> "CameraIntrinsics":
        """Intrinsics of the same camera resized to ``width`` x ``height``."""
        sx, sy = width / self.width, height / self.height
        return CameraIntrinsics(
            width, height, self.fx * sx, self.fy * sy,
            (self.cx + 0.5) * sx - 0.5, (self.cy + 0.5) * sy - 0.5,
            self.distortion_model, self.distortion,
        )


@dataclass(frozen=True)
class CameraFrame:
    """One colour frame (RGB uint8 HxWx3), optionally with aligned depth (metres, float32)."""

    view: str
    image: np.ndarray
    stamp: float
    intrinsics: CameraIntrinsics | None = None
    depth: np.ndarray | None = None
    frame_number: int = 0
    serial: str = ""
    frame_id: str = ""

    def __post_init__(self) -> None:
        if not self.view or not isinstance(self.view, str):
            raise ValueError(f"view: must be a non-empty string, got {self.view!r}")
        if not isinstance(self.image, np.ndarray) or self.image.dtype != np.uint8:
            got = getattr(self.image, "dtype", type(self.image).__name__)
            raise ValueError(f"image: must be a uint8 numpy array, got {got}")
        if self.image.ndim != 3 or self.image.shape[2] != 3:
            raise ValueError(f"image: shape must be (H, W, 3), got {self.image.shape}")
        object.__setattr__(self, "stamp", _finite_scalar("stamp", self.stamp))
        if self.intrinsics is not None:
            h, w = self.image.shape[:2]
            if (self.intrinsics.width, self.intrinsics.height) != (w, h):
                raise ValueError(
                    f"intrinsics: size {self.intrinsics.width}x{self.intrinsics.height} "
                    f"does not match image {w}x{h}"
                )
        if self.depth is not None:
            depth = _frozen_array("depth", self.depth, dtype=np.float32, finite=False)
            if depth.shape != self.image.shape[:2]:
                raise ValueError(f"depth: shape must be {self.image.shape[:2]}, got {depth.shape}")
            object.__setattr__(self, "depth", depth)
        # Images are large: freeze in place instead of copying (the producer hands it over).
        img = self.image
        if img.flags.writeable:
            img = img.view()
            img.flags.writeable = False
            object.__setattr__(self, "image", img)

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])


@dataclass(frozen=True)
class MultiViewObservation:
    """One frame per view, paired by stamp. ``stamp`` is the median stamp; ``spread`` max - min."""

    frames: Mapping[str, CameraFrame]
    stamp: float = field(init=False)
    spread: float = field(init=False)

    def __post_init__(self) -> None:
        if not self.frames:
            raise ValueError("frames: at least one view is required")
        for name, frame in self.frames.items():
            if not isinstance(frame, CameraFrame):
                raise ValueError(f"frames[{name!r}]: must be a CameraFrame")
            if frame.view != name:
                raise ValueError(f"frames[{name!r}]: frame is of view {frame.view!r}")
        stamps = np.array([f.stamp for f in self.frames.values()])
        object.__setattr__(self, "frames", dict(self.frames))
        object.__setattr__(self, "stamp", float(np.median(stamps)))
        object.__setattr__(self, "spread", float(stamps.max() - stamps.min()))

    @property
    def views(self) -> tuple[str, ...]:
        return tuple(self.frames)


@dataclass(frozen=True)
class Pose:
    """Position (m) and unit quaternion (x, y, z, w)."""

    position: np.ndarray
    quaternion: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "position", _frozen_array("position", self.position, shape=(3,), dtype=np.float64))
        object.__setattr__(self, "quaternion", _unit_quaternion("quaternion", self.quaternion))

    @staticmethod
    def identity() -> "Pose":
        return Pose(np.zeros(3), np.array([0.0, 0.0, 0.0, 1.0]))

    def as_array(self) -> np.ndarray:
        """[x, y, z, qx, qy, qz, qw]."""
        return np.concatenate([self.position, self.quaternion])

    @staticmethod
    def from_array(a: Any, name: str = "pose") -> "Pose":
        arr = _frozen_array(name, a, shape=(7,), dtype=np.float64)
        return Pose(arr[:3], arr[3:])


def _enum(name: str, cls: type[enum.Enum], value: Any) -> Any:
    try:
        return cls(value)
    except ValueError:
        raise ValueError(f"{name}: unknown value {value!r}; expected one of {[m.value for m in cls]}") from None


def _gripper(name: str, value: float) -> float:
    v = _finite_scalar(name, value)
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"{name}: must be in [0, 1] (1 = fully open), got {v}")
    return v


@dataclass(frozen=True)
class ArmState:
    """Measured state of one arm."""

    tcp_pose: Pose
    joint_positions: np.ndarray
    joint_velocities: np.ndarray
    wrench: np.ndarray  # external wrench at the TCP [fx, fy, fz, tx, ty, tz] in the base frame
    gripper_open: float
    stamp: float
    fault: str = ""  # empty when healthy; the robot's own text otherwise
    enabled: bool = True
    # False when this arm's data stopped updating (link lost or frozen): the values are the last
    # ones received, not the arm's current state. Set by the arm node (its ``state_timeout``).
    fresh: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.tcp_pose, Pose):
            raise ValueError("tcp_pose: must be a Pose")
        q = _frozen_array("joint_positions", self.joint_positions, shape=(None,), dtype=np.float64)
        dq = _frozen_array("joint_velocities", self.joint_velocities, shape=q.shape, dtype=np.float64)
        object.__setattr__(self, "joint_positions", q)
        object.__setattr__(self, "joint_velocities", dq)
        object.__setattr__(self, "wrench", _frozen_array("wrench", self.wrench, shape=(6,), dtype=np.float64))
        object.__setattr__(self, "gripper_open", _gripper("gripper_open", self.gripper_open))
        object.__setattr__(self, "stamp", _finite_scalar("stamp", self.stamp))

    @property
    def faulted(self) -> bool:
        return bool(self.fault)


@dataclass(frozen=True)
class RigState:
    """Both arms plus who owns them."""

    left: ArmState
    right: ArmState
    mode: ControlMode
    stamp: float  # when the arm node read the arms' data (its clock), not the publish time

    def __post_init__(self) -> None:
        for name in ARM_NAMES:
            if not isinstance(getattr(self, name), ArmState):
                raise ValueError(f"{name}: must be an ArmState")
        object.__setattr__(self, "mode", _enum("mode", ControlMode, self.mode))
        object.__setattr__(self, "stamp", _finite_scalar("stamp", self.stamp))

    def arm(self, index: int) -> ArmState:
        return (self.left, self.right)[index]


@dataclass(frozen=True)
class ArmTarget:
    """Absolute TCP pose target (base frame of that arm) and gripper opening."""

    tcp_pose: Pose
    gripper_open: float

    def __post_init__(self) -> None:
        if not isinstance(self.tcp_pose, Pose):
            raise ValueError("tcp_pose: must be a Pose")
        object.__setattr__(self, "gripper_open", _gripper("gripper_open", self.gripper_open))


@dataclass(frozen=True)
class RigTarget:
    """Targets for both arms, to be reached at ``stamp``, from a source (teleop, policy).

    ``requester`` names the sender as it named itself when it took the arms (``/arms/set_mode``);
    the arm node moves only for the owner's targets.
    """

    left: ArmTarget
    right: ArmTarget
    stamp: float
    source: ControlMode
    requester: str = ""

    def __post_init__(self) -> None:
        for name in ARM_NAMES:
            if not isinstance(getattr(self, name), ArmTarget):
                raise ValueError(f"{name}: must be an ArmTarget")
        object.__setattr__(self, "stamp", _finite_scalar("stamp", self.stamp))
        object.__setattr__(self, "source", _enum("source", ControlMode, self.source))
        if not isinstance(self.requester, str):
            raise ValueError(f"requester: must be a string, got {type(self.requester).__name__}")

    def arm(self, index: int) -> ArmTarget:
        return (self.left, self.right)[index]


@dataclass(frozen=True)
class ActionChunk:
    """A chunk of A2World 14-D deltas and the absolute targets they compose to.

    ``deltas``: (N, 14) float32, the model's output (DESIGN.md §4 action convention).
    ``targets``: (N, 2, 8) float64, per step and arm ``[x, y, z, qx, qy, qz, qw, gripper_open]``,
    composed onto the measured TCP poses at ``obs_stamp`` (see ``a2w.actions.compose_chunk``).
    ``times``: (N,) execution time of each step on the clock, strictly increasing.
    """

    deltas: np.ndarray
    targets: np.ndarray
    times: np.ndarray
    seq: int
    obs_stamp: float
    source: str = "policy"

    def __post_init__(self) -> None:
        d = _frozen_array("deltas", self.deltas, shape=(None, ACTION_DIM), dtype=np.float32)
        n = d.shape[0]
        if n == 0:
            raise ValueError("deltas: a chunk needs at least one step")
        t = _frozen_array("targets", self.targets, shape=(n, 2, 8), dtype=np.float64)
        qn = np.linalg.norm(t[:, :, 3:7], axis=-1)
        if np.any(np.abs(qn - 1.0) > QUAT_UNIT_TOL):
            raise ValueError("targets: quaternions must have unit norm")
        if np.any((t[:, :, 7] < 0.0) | (t[:, :, 7] > 1.0)):
            raise ValueError("targets: gripper_open must be in [0, 1]")
        times = _frozen_array("times", self.times, shape=(n,), dtype=np.float64)
        if n > 1 and np.any(np.diff(times) <= 0):
            raise ValueError("times: must be strictly increasing")
        if not isinstance(self.seq, (int, np.integer)) or self.seq < 0:
            raise ValueError(f"seq: must be a non-negative integer, got {self.seq!r}")
        object.__setattr__(self, "deltas", d)
        object.__setattr__(self, "targets", t)
        object.__setattr__(self, "times", times)
        object.__setattr__(self, "obs_stamp", _finite_scalar("obs_stamp", self.obs_stamp))

    def __len__(self) -> int:
        return int(self.deltas.shape[0])

    def target_at(self, i: int) -> RigTarget:
        """Step ``i`` as a RigTarget due at ``times[i]``."""
        arms = [
            ArmTarget(Pose(self.targets[i, a, :3], self.targets[i, a, 3:7]), float(self.targets[i, a, 7]))
            for a in range(2)
        ]
        return RigTarget(arms[0], arms[1], float(self.times[i]), ControlMode.POLICY)


class EpisodeEventKind(str, enum.Enum):
    START = "start"
    SAVE = "save"
    DISCARD = "discard"
    MARK = "mark"  # an annotation inside the episode (e.g. subtask boundary)


@dataclass(frozen=True)
class EpisodeEvent:
    kind: EpisodeEventKind
    stamp: float
    episode_index: int = -1  # -1 while unknown (assigned by the recorder)
    task: str = ""
    note: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", _enum("kind", EpisodeEventKind, self.kind))
        object.__setattr__(self, "stamp", _finite_scalar("stamp", self.stamp))
        if not isinstance(self.episode_index, (int, np.integer)) or self.episode_index < -1:
            raise ValueError(f"episode_index: must be an integer >= -1, got {self.episode_index!r}")


@dataclass(frozen=True)
class DiagnosticStatus:
    """Health of one component (maps to diagnostic_msgs/DiagnosticStatus)."""

    name: str
    level: int  # 0 OK, 1 WARN, 2 ERROR, 3 STALE
    message: str
    values: Mapping[str, str]
    stamp: float

    def __post_init__(self) -> None:
        if self.level not in (0, 1, 2, 3):
            raise ValueError(f"level: must be 0 (OK), 1 (WARN), 2 (ERROR) or 3 (STALE), got {self.level!r}")
        object.__setattr__(self, "values", {str(k): str(v) for k, v in self.values.items()})
        object.__setattr__(self, "stamp", _finite_scalar("stamp", self.stamp))
