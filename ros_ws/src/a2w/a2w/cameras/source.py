"""The camera-source interface every camera driver implements (RealSense, sim, playback).

Life cycle: construct (cheap, no I/O) -> ``open()`` (find the device, check the profile) ->
``start()`` (begin streaming) -> ``latest()`` / ``wait_frame()`` / ``wait_capture()`` ->
``close()``. ``close()`` is idempotent and may be called in any state. Frames carry the device's
own stamp (global time on RealSense, sim time in simulation), a frame number and the intrinsics of
the image as delivered.

Every source also says what the camera node reports about it: ``serial``, ``restarts`` and
``fault``. The defaults suit a driver with nothing to add; drivers that know more update them.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

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
        self.serial = config.serial  # the device's serial, once the driver knows it
        self.restarts = 0  # times the driver restarted a stream that stopped
        self.fault = ""  # why the camera delivers nothing; "" while healthy

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

    def wait_capture(self, timeout: float) -> Capture:
        """``wait_frame`` with what the device said about the frame; drivers that know it
        (RealSense, playback: device stamp, domain, exposure, arrival) override this, and the
        camera node publishes it next to the image, like realsense-ros's ``color/metadata``."""
        return Capture(self.wait_frame(timeout), None)

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

