"""Messages of the cameras, and the rig's camera views.

ROS mirrors (``a2w.ros.codec``): ``CameraFrame`` -> sensor_msgs/Image rgb8 plus, when it carries
``intrinsics``, one sensor_msgs/CameraInfo on the ``camera_info`` topic next to it with the same
stamp and frame id (``CameraIntrinsics`` travel only that way); ``FrameMetadata`` ->
a2w_interfaces/msg/FrameMetadata (``color/metadata``, the role of realsense-ros's Metadata);
``DepthFrame`` (aligned depth) -> sensor_msgs/Image 32FC1 in metres (REP 118).
``MultiViewObservation`` is the consumers' pairing of one frame per view and is not sent between
nodes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from a2w.msgs.checks import finite_scalar, frozen_array

# The rig's views, the one definition the runtime and bench/ use. VIEW_NAMES is in release
# view-id order: 0 = left wrist, 1 = right wrist, 2 = front (docs/architecture.md §5); the models package
# keeps its own ids (it does not import a2w) and a test checks that they agree.
LEFT_WRIST = "left_wrist"
RIGHT_WRIST = "right_wrist"
FRONT = "front"
VIEW_NAMES: tuple[str, str, str] = (LEFT_WRIST, RIGHT_WRIST, FRONT)
VIEW_IDS: Mapping[str, int] = {name: i for i, name in enumerate(VIEW_NAMES)}
# The arms whose motion each view sees for sure: a wrist camera rides on its arm, the front one sees both.
VIEW_ARMS: Mapping[str, tuple[str, ...]] = {LEFT_WRIST: ("left",), RIGHT_WRIST: ("right",), FRONT: ("left", "right")}


def _no_data_nan(depth: np.ndarray) -> np.ndarray:
    """Read-only float32 metres with no data as NaN: librealsense's 0 = no data becomes NaN (REP 118:
    depth_image_proc and RViz take 0.0 as a valid depth). Negative depth is refused."""
    if np.any(depth < 0):
        raise ValueError("depth: negative values (metres must be >= 0; no data is NaN)")
    if np.any(depth == 0):
        depth = np.where(depth == 0, np.float32(np.nan), depth)
        depth.flags.writeable = False
    return depth


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
            if finite_scalar(f"intrinsics.{f}", getattr(self, f)) <= 0:
                raise ValueError(f"intrinsics.{f}: must be positive")
        for f in ("cx", "cy"):
            finite_scalar(f"intrinsics.{f}", getattr(self, f))
        object.__setattr__(self, "distortion", tuple(float(d) for d in self.distortion))

    @property
    def matrix(self) -> np.ndarray:
        """The 3x3 camera matrix K."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class CameraFrame:
    """One colour frame (RGB uint8 HxWx3), optionally with aligned depth (metres, float32, NaN = no
    data as in ``DepthFrame``)."""

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
        object.__setattr__(self, "stamp", finite_scalar("stamp", self.stamp))
        if self.intrinsics is not None:
            h, w = self.image.shape[:2]
            if (self.intrinsics.width, self.intrinsics.height) != (w, h):
                raise ValueError(
                    f"intrinsics: size {self.intrinsics.width}x{self.intrinsics.height} "
                    f"does not match image {w}x{h}"
                )
        if self.depth is not None:
            depth = frozen_array("depth", self.depth, dtype=np.float32, finite=False)
            if depth.shape != self.image.shape[:2]:
                raise ValueError(f"depth: shape must be {self.image.shape[:2]}, got {depth.shape}")
            object.__setattr__(self, "depth", _no_data_nan(depth))
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
class FrameMetadata:
    """What the device said about one frame.

    ``device_stamp_ms``: the raw librealsense timestamp (ms) in ``domain`` ("global_time",
    "system_time" or "hardware_clock"); ``stamp`` the seconds it was mapped to (the frame's stamp).
    ``arrival``: host wall time (s) when the capture thread received the frame.
    ``exposure_us``/``gain``: NaN when the device does not report them.
    """

    view: str
    serial: str
    frame_number: int
    stamp: float
    device_stamp_ms: float
    domain: str
    arrival: float
    exposure_us: float = math.nan
    gain: float = math.nan

    def __post_init__(self) -> None:
        if not self.view or not isinstance(self.view, str):
            raise ValueError(f"view: must be a non-empty string, got {self.view!r}")
        if not isinstance(self.frame_number, (int, np.integer)):
            raise ValueError(f"frame_number: must be an integer, got {self.frame_number!r}")
        object.__setattr__(self, "frame_number", int(self.frame_number))
        for f in ("stamp", "device_stamp_ms", "arrival"):
            object.__setattr__(self, f, finite_scalar(f, getattr(self, f)))
        for f in ("exposure_us", "gain"):
            object.__setattr__(self, f, float(getattr(self, f)))


@dataclass(frozen=True)
class DepthFrame:
    """Depth aligned to the colour image of the same frame: metres (float32, H x W), with the colour
    frame's stamp and optical frame.

    No data is NaN, as REP 118 asks of float depth images (depth_image_proc and RViz take 0.0 as a
    valid depth): librealsense's 0 = no data is converted where a driver hands it over (here and in
    ``CameraFrame``), so encoding and decoding never convert.
    """

    view: str
    depth: np.ndarray
    stamp: float
    frame_number: int = 0
    frame_id: str = ""

    def __post_init__(self) -> None:
        if not self.view or not isinstance(self.view, str):
            raise ValueError(f"view: must be a non-empty string, got {self.view!r}")
        if not isinstance(self.depth, np.ndarray) or self.depth.dtype != np.float32 or self.depth.ndim != 2:
            raise ValueError("depth: must be a 2-D float32 array (metres)")
        d = self.depth
        if d.flags.writeable:
            d = d.view()  # freeze in place instead of copying, as CameraFrame does with images
            d.flags.writeable = False
        object.__setattr__(self, "depth", _no_data_nan(d))
        object.__setattr__(self, "stamp", finite_scalar("stamp", self.stamp))
