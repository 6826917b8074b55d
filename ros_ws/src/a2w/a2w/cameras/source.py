"""The camera-source interface every camera driver implements (RealSense, sim, playback).

Life cycle: construct (cheap, no I/O) -> ``open()`` (find the device, check the profile) ->
``start()`` (begin streaming) -> ``latest()`` / ``wait_frame()`` -> ``close()``. ``close()`` is
idempotent and may be called in any state. Frames carry the device's own stamp (global time on
RealSense, sim time in simulation), a frame number and the intrinsics of the image as delivered.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from a2w.msgs.cameras import CameraFrame, CameraIntrinsics, FrameMetadata


class CameraError(RuntimeError):
    """Base of camera errors; the message says what to do about it."""


class CameraNotFound(CameraError):
    """No device with the requested serial; the message lists the connected ones."""


class CameraTimeout(CameraError):
    """A started camera delivered no new frame within the timeout."""


class CameraStateError(CameraError):
    """A call made in the wrong life-cycle state (e.g. ``latest()`` before ``start()``)."""


@dataclass(frozen=True)
class CameraConfig:
    """What to open: the view this camera serves, which device, and the stream profile."""

    view: str
    serial: str = ""
    width: int = 640
    height: int = 480
    fps: float = 30.0
    depth: bool = False

    def __post_init__(self) -> None:
        if not self.view:
            raise ValueError("view: must be a non-empty name")
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"width/height: must be positive, got {self.width}x{self.height}")
        if not self.fps > 0:
            raise ValueError(f"fps: must be positive, got {self.fps}")


class CameraSource(abc.ABC):
    """One camera. Implementations are thread-safe for one reader and their own capture thread."""

    def __init__(self, config: CameraConfig) -> None:
        self.config = config

    @property
    def view(self) -> str:
        return self.config.view

    @abc.abstractmethod
    def open(self) -> None:
        """Find and configure the device. Raises ``CameraNotFound`` / ``CameraError``."""

    @abc.abstractmethod
    def start(self) -> None:
        """Begin streaming. Requires ``open()``."""

    @property
    @abc.abstractmethod
    def intrinsics(self) -> CameraIntrinsics:
        """Intrinsics of the delivered colour image. Requires ``open()``."""

    @abc.abstractmethod
    def latest(self) -> CameraFrame | None:
        """Newest frame delivered so far (None before the first). Never blocks."""

    @abc.abstractmethod
    def wait_frame(self, timeout: float) -> CameraFrame:
        """Block until a frame newer than the last one returned arrives; ``CameraTimeout`` else."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop streaming and release the device. Idempotent."""

    def __enter__(self) -> "CameraSource":
        self.open()
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class Capture:
    """A frame and, from sources that know it, what the device said about it."""

    frame: CameraFrame
    meta: FrameMetadata | None


@runtime_checkable
class CaptureSource(Protocol):
    """A source that can hand out metadata with each frame (same newness rule as wait_frame).

    ``CameraSource.wait_frame`` returns a bare ``CameraFrame``; sources that know more about each
    frame (RealSense and playback: device stamp, domain, exposure, arrival time) also implement
    ``wait_capture``. The camera component publishes the metadata next to the image, like
    realsense-ros's ``color/metadata`` topic (ros2_facts.md §1.1 "Names and namespaces").
    """

    def wait_capture(self, timeout: float) -> Capture: ...
