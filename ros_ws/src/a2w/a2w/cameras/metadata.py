"""Per-frame capture metadata, and the (frame, metadata) pair a capturing source hands out.

``CameraSource.wait_frame`` returns a bare ``CameraFrame``; sources that know more about each
frame (RealSense and playback: device stamp, domain, exposure, arrival time) also implement
``CaptureSource.wait_capture``. The camera component publishes the metadata next to the image,
like realsense-ros's ``color/metadata`` topic (ros2_facts.md §1.1 "Names and namespaces").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from a2w.msgs.cameras import CameraFrame


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

    def as_dict(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class DepthFrame:
    """Depth aligned to the colour image of the same frame: metres (float32, 0 = no data, the
    librealsense convention), H x W, with the colour frame's stamp and optical frame."""

    view: str
    depth: np.ndarray
    stamp: float
    frame_number: int = 0
    frame_id: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.depth, np.ndarray) or self.depth.dtype != np.float32 or self.depth.ndim != 2:
            raise ValueError("depth: must be a 2-D float32 array (metres)")


@dataclass(frozen=True)
class Capture:
    frame: CameraFrame
    meta: FrameMetadata | None


@runtime_checkable
class CaptureSource(Protocol):
    """A source that can hand out metadata with each frame (same newness rule as wait_frame)."""

    def wait_capture(self, timeout: float) -> Capture: ...
