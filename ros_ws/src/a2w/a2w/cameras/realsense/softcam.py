"""Synthetic RealSense cameras on librealsense's ``rs.software_device`` (no hardware needed).

A ``SoftwareCamera`` looks to the RealSense source like a real D435i or D405: serial, name, USB
descriptor, a colour profile on the right sensor (the D405's colour is on its "Stereo Module"),
optional Z16 depth with extrinsics, a global-time option and per-frame metadata (exposure, frame
counter). Frames with chosen stamps and content are pushed through the real librealsense frame
path (ros2_facts.md §1.2 "software_device"). A ``SoftwareDeviceHub`` is a device lister whose
devices can be plugged and unplugged. Used by tests, the camera benchmark and demos.
"""

from __future__ import annotations

import threading
import time
from typing import Sequence

import numpy as np
import pyrealsense2 as rs

MODELS = {"d435i": "Intel RealSense D435I", "d405": "Intel RealSense D405"}


def _intrinsics(w: int, h: int, fx: float, fy: float) -> rs.intrinsics:
    i = rs.intrinsics()
    i.width, i.height, i.fx, i.fy = w, h, fx, fy
    i.ppx, i.ppy = (w - 1) / 2 + 1.5, (h - 1) / 2 - 2.0
    i.model = rs.distortion.brown_conrady
    i.coeffs = [0.01, -0.02, 0.0005, 0.0, 0.003]
    return i


class SoftwareCamera:
    """One synthetic camera. ``model`` is "d435i" or "d405" (where colour lives)."""

    def __init__(self, serial: str, model: str = "d405", *, width: int = 640, height: int = 480,
                 fps: int = 30, depth: bool = False, usb: str = "3.2", fx: float = 615.0,
                 global_time_option: bool = True, color_format: rs.format = rs.format.rgb8) -> None:
        if model not in MODELS:
            raise ValueError(f"model: must be one of {sorted(MODELS)}, got {model!r}")
        self.serial, self.model, self.width, self.height, self.fps = serial, model, width, height, fps
        self.dev = rs.software_device()
        self.dev.register_info(rs.camera_info.serial_number, serial)
        self.dev.register_info(rs.camera_info.name, MODELS[model])
        self.dev.register_info(rs.camera_info.usb_type_descriptor, usb)
        self.dev.register_info(rs.camera_info.physical_port, f"/sys/devices/soft/{serial}")
        stereo = self.dev.add_sensor("Stereo Module")
        rgb = stereo if model == "d405" else self.dev.add_sensor("RGB Camera")
        self.color_sensor = rgb
        self.depth_sensor = stereo
        bpp = 3
        vs = rs.video_stream()
        vs.type, vs.index, vs.uid = rs.stream.color, 0, 0
        vs.width, vs.height, vs.fps, vs.bpp, vs.fmt = width, height, fps, bpp, color_format
        vs.intrinsics = _intrinsics(width, height, fx, fx * 1.001)
        self.color_profile = rgb.add_video_stream(vs).as_video_stream_profile()
        self.intrinsics = vs.intrinsics
        self.depth_profile = None
        for s in {id(stereo): stereo, id(rgb): rgb}.values():
            if global_time_option:
                s.add_option(rs.option.global_time_enabled, rs.option_range(0, 1, 1, 1), True)
        if depth:
            ds = rs.video_stream()
            ds.type, ds.index, ds.uid = rs.stream.depth, 0, 1
            ds.width, ds.height, ds.fps, ds.bpp, ds.fmt = width, height, fps, 2, rs.format.z16
            ds.intrinsics = _intrinsics(width, height, fx, fx)
            self.depth_profile = stereo.add_video_stream(ds).as_video_stream_profile()
            ext = rs.extrinsics()
            ext.rotation = [1, 0, 0, 0, 1, 0, 0, 0, 1]
            ext.translation = [0.0, 0.0, 0.0]
            self.depth_profile.register_extrinsics_to(self.color_profile, ext)
            stereo.add_read_only_option(rs.option.depth_units, 0.001)
        self.pushed = 0
        self._lock = threading.Lock()

    def push(self, image: np.ndarray, stamp_ms: float, frame_number: int, *,
             domain: rs.timestamp_domain = rs.timestamp_domain.global_time,
             exposure_us: float | None = None, depth_mm: np.ndarray | None = None) -> None:
        """Deliver one frame (and optionally its depth, same stamp) through librealsense."""
        img = np.ascontiguousarray(image, dtype=np.uint8)
        if img.shape != (self.height, self.width, 3):
            raise ValueError(f"image: shape must be {(self.height, self.width, 3)}, got {img.shape}")
        with self._lock:
            if exposure_us is not None:
                self.color_sensor.set_metadata(rs.frame_metadata_value.actual_exposure, int(exposure_us))
            self.color_sensor.set_metadata(rs.frame_metadata_value.frame_counter, int(frame_number))
            f = rs.software_video_frame()
            f.pixels, f.stride, f.bpp = img, self.width * 3, 3
            f.timestamp, f.domain, f.frame_number = float(stamp_ms), domain, int(frame_number)
            f.profile = self.color_profile
            self.color_sensor.on_video_frame(f)
            if depth_mm is not None:
                if self.depth_profile is None:
                    raise ValueError("depth_mm: this camera was built without depth")
                d = rs.software_video_frame()
                dimg = np.ascontiguousarray(depth_mm, dtype=np.uint16)
                d.pixels, d.stride, d.bpp = dimg, self.width * 2, 2
                d.timestamp, d.domain, d.frame_number = float(stamp_ms), domain, int(frame_number)
                d.profile, d.depth_units = self.depth_profile, 0.001
                self.depth_sensor.on_video_frame(d)
            self.pushed += 1


def pattern(width: int, height: int, n: int) -> np.ndarray:
    """A frame whose content encodes ``n`` (first pixel = n mod 256, rows ramp) for checks."""
    img = np.empty((height, width, 3), np.uint8)
    img[:] = (np.arange(height, dtype=np.uint16)[:, None, None] % 256).astype(np.uint8)
    img[0, 0] = (n % 256, (n // 256) % 256, 7)
    return img


class SoftwareDeviceHub:
    """A device lister (``RealSenseSource(devices=hub)``) with plug and unplug."""

    def __init__(self, cameras: Sequence[SoftwareCamera] = ()) -> None:
        self._cams: list[SoftwareCamera] = list(cameras)
        self._lock = threading.Lock()

    def __call__(self) -> list[rs.device]:
        with self._lock:
            return [c.dev for c in self._cams]

    def plug(self, cam: SoftwareCamera) -> None:
        with self._lock:
            self._cams.append(cam)

    def unplug(self, serial: str) -> SoftwareCamera:
        with self._lock:
            for i, c in enumerate(self._cams):
                if c.serial == serial:
                    return self._cams.pop(i)
        raise KeyError(serial)


class FrameFeeder:
    """A thread pushing frames to cameras at ``fps`` with global-time stamps plus a per-camera
    offset (to emulate unsynchronised cameras). ``common_stamp``: all cameras of one cycle share
    the cycle's time (exact offsets); otherwise each stamp is its own push time (latency
    measurements). Adding a serial to ``paused`` makes that camera go silent."""

    def __init__(self, cams: Sequence[SoftwareCamera], fps: float = 30.0,
                 offsets_ms: Sequence[float] | None = None, content: bool = True,
                 common_stamp: bool = True) -> None:
        self.common_stamp = common_stamp
        self.cams = list(cams)
        self.period = 1.0 / fps
        self.offsets = list(offsets_ms or [0.0] * len(self.cams))
        self.paused: set[str] = set()
        self.numbers = {c.serial: 0 for c in self.cams}
        self._content = content
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soft-feeder", daemon=True)
        self._frames = {c.serial: [pattern(c.width, c.height, k) for k in range(2)] for c in self.cams}

    def start(self) -> "FrameFeeder":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5.0)

    def _run(self) -> None:
        next_t = time.monotonic()
        while not self._stop.is_set():
            cycle = time.time()
            for cam, off in zip(list(self.cams), self.offsets):
                if cam.serial in self.paused:
                    continue
                n = self.numbers[cam.serial] = self.numbers[cam.serial] + 1
                img = pattern(cam.width, cam.height, n) if self._content else self._frames[cam.serial][n % 2]
                now = cycle if self.common_stamp else time.time()
                cam.push(img, now * 1e3 + off, n, exposure_us=8000 + n)
            next_t += self.period
            delay = next_t - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            else:
                next_t = time.monotonic()
