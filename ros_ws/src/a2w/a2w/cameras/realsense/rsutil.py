"""pyrealsense2 pieces shared by the live RealSense source and the playback source.

* profile choice and intrinsics conversion (pure given the profile list);
* stamp mapping from librealsense timestamp domains to seconds (pure, tested directly);
* ``RsCaptureBase``: the capture thread, frame hand-off and life-cycle checks, built on sensors
  (not ``rs.pipeline``): realsense-ros drives sensors directly too, and a ``software_device`` can
  only be reached that way (``add_to(context)`` does not make it visible to ``query_devices`` in
  2.59, tested here), so tests exercise the same code path as the rig.
"""

from __future__ import annotations

import abc
import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import pyrealsense2 as rs

from a2w import frames
from a2w.cameras.source import (
    CameraConfig,
    CameraError,
    CameraSource,
    CameraStateError,
    CameraTimeout,
    Capture,
)
from a2w.msgs.cameras import CameraFrame, CameraIntrinsics, FrameMetadata

log = logging.getLogger(__name__)


class CameraProfileError(CameraError):
    """The device cannot deliver the requested stream profile; the message lists what it can."""


@dataclass(frozen=True)
class ProfileInfo:
    """A stream profile in plain values (so the choice logic is testable without a device)."""

    stream: str  # "color", "depth", ...
    width: int
    height: int
    fps: int
    format: str  # "rgb8", "z16", ...

    def __str__(self) -> str:
        return f"{self.stream} {self.width}x{self.height}x{self.fps} {self.format.upper()}"


def profile_info(p: rs.stream_profile) -> ProfileInfo:
    stream = str(p.stream_type()).rsplit(".", 1)[-1]
    fmt = str(p.format()).rsplit(".", 1)[-1]
    if p.is_video_stream_profile():
        v = p.as_video_stream_profile()
        return ProfileInfo(stream, v.width(), v.height(), p.fps(), fmt)
    return ProfileInfo(stream, 0, 0, p.fps(), fmt)


def choose_profile(profiles: Sequence[ProfileInfo], stream: str, width: int, height: int,
                   fps: float, fmt: str, who: str) -> int:
    """Index of the profile matching exactly; ``CameraProfileError`` listing the stream's
    profiles otherwise. The profile string format is realsense-ros's ``WxHxFPS``."""
    for i, p in enumerate(profiles):
        if (p.stream, p.width, p.height, p.format) == (stream, width, height, fmt) and p.fps == round(fps):
            return i
    offered = sorted({str(p) for p in profiles if p.stream == stream})
    raise CameraProfileError(
        f"{who}: no {stream} profile {width}x{height}x{round(fps)} {fmt.upper()}; "
        f"the device offers {offered or 'no ' + stream + ' stream'}"
    )


def to_intrinsics(p: rs.video_stream_profile) -> CameraIntrinsics:
    """Factory intrinsics as ROS CameraInfo fields. Brown-Conrady maps to ROS ``plumb_bob``
    and Kannala-Brandt to ``equidistant``, as realsense-ros does."""
    i = p.get_intrinsics()
    model = "equidistant" if i.model == rs.distortion.kannala_brandt4 else "plumb_bob"
    return CameraIntrinsics(int(i.width), int(i.height), float(i.fx), float(i.fy), float(i.ppx),
                            float(i.ppy), model, tuple(float(c) for c in i.coeffs))


class StampMapper:
    """librealsense frame timestamp (ms) -> seconds on the host's time base.

    ``global_time`` and ``system_time`` are already host time and pass through. ``hardware_clock``
    (global time off or no frame metadata) is anchored to ``now()`` at the first frame and advanced
    by device time; a device clock that jumps backwards re-anchors, with a warning, as
    realsense-ros does (ros2_facts.md §1.1 "Timestamps").
    """

    def __init__(self, now: Callable[[], float], who: str) -> None:
        self._now = now
        self._who = who
        self._anchor: tuple[float, float] | None = None  # (device ms, host s)
        self._last_ms = -math.inf
        self.warned_domain = False

    def __call__(self, device_ms: float, domain: str) -> float:
        if domain in ("global_time", "system_time"):
            return device_ms / 1e3
        if not self.warned_domain:
            self.warned_domain = True
            log.warning("%s: frames are in the %s domain (global time off or no frame metadata): "
                        "stamps are anchored to host time at the first frame", self._who, domain)
        if self._anchor is None or device_ms < self._last_ms:
            if self._anchor is not None:
                log.warning("%s: device clock went backwards (%.3f -> %.3f ms); re-anchoring",
                            self._who, self._last_ms, device_ms)
            self._anchor = (device_ms, self._now())
        self._last_ms = device_ms
        return self._anchor[1] + (device_ms - self._anchor[0]) / 1e3


def _meta(f: rs.frame, key: rs.frame_metadata_value) -> float:
    return float(f.get_frame_metadata(key)) if f.supports_frame_metadata(key) else math.nan


def domain_name(f: rs.frame) -> str:
    return str(f.get_frame_timestamp_domain()).rsplit(".", 1)[-1]


class RsCaptureBase(CameraSource, abc.ABC):
    """Capture thread + hand-off for sources built on librealsense sensors.

    Subclasses implement ``_connect()`` (find the device, open and start its sensors into the
    sink returned, set ``self._intrinsics``) and ``_disconnect()``; they may override
    ``_on_silence`` to recover from a camera that stopped delivering.
    """

    poll_s = 0.05  # capture-thread wake-up period while no frame arrives

    def __init__(self, config: CameraConfig, *, frame_timeout: float = 1.0,
                 now: Callable[[], float] = time.time) -> None:
        super().__init__(config)
        if not frame_timeout > 0:
            raise ValueError(f"frame_timeout: must be positive seconds, got {frame_timeout!r}")
        self.frame_timeout = float(frame_timeout)
        self._now = now
        self._state = "new"  # new -> open -> started -> closed
        self._intrinsics: CameraIntrinsics | None = None
        self._cond = threading.Condition()
        self._latest: Capture | None = None
        self._seq = 0  # captures stored so far
        self._returned = 0  # seq of the last capture handed out by wait_*
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sink: Any = None
        self._align: rs.align | None = None
        self._last_arrival = 0.0
        self.stamps = StampMapper(now, f"camera {config.view!r}")

    # -- subclass hooks ----------------------------------------------------------------------
    @abc.abstractmethod
    def _connect(self) -> Any:
        """Open the device and return the started sink (rs.frame_queue or rs.syncer)."""

    @abc.abstractmethod
    def _disconnect(self) -> None:
        """Stop and close the sensors; must tolerate a half-open or vanished device."""

    def _on_silence(self, silent_for: float) -> None:
        """Called from the capture thread while no frame arrives for longer than the timeout."""

    def _stamp(self, device_ms: float, domain: str) -> float:
        """Seconds for a frame's device timestamp (playback shifts recorded stamps here)."""
        return self.stamps(device_ms, domain)

    # -- life cycle --------------------------------------------------------------------------
    def _describe(self) -> str:
        return f"camera {self.view!r}" + (f" (serial {self.serial})" if self.serial else "")

    def open(self) -> None:
        if self._state == "closed":
            raise CameraStateError(f"{self._describe()}: closed; create a new source")
        if self._state != "new":
            return
        self._sink = self._connect()
        self._state = "open"

    def start(self) -> None:
        if self._state != "open":
            raise CameraStateError(f"{self._describe()}: start() needs open() first (state {self._state})")
        self._state = "started"
        self._last_arrival = self._now()
        self._thread = threading.Thread(target=self._run, name=f"capture:{self.view}", daemon=True)
        self._thread.start()

    @property
    def intrinsics(self) -> CameraIntrinsics:
        if self._intrinsics is None:
            raise CameraStateError(f"{self._describe()}: intrinsics need open() first")
        return self._intrinsics

    def latest(self) -> CameraFrame | None:
        if self._state == "new":
            raise CameraStateError(f"{self._describe()}: latest() needs open() first")
        with self._cond:
            return self._latest.frame if self._latest else None

    def wait_frame(self, timeout: float) -> CameraFrame:
        return self.wait_capture(timeout).frame

    def wait_capture(self, timeout: float) -> Capture:
        if self._state != "started":
            raise CameraStateError(f"{self._describe()}: wait needs start() first (state {self._state})")
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._seq == self._returned:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._state != "started":
                    break
                self._cond.wait(remaining)
            if self._seq == self._returned or self._latest is None:
                if self._state != "started":
                    raise CameraStateError(f"{self._describe()}: closed while waiting")
                why = self.fault or "no new frame"
                raise CameraTimeout(f"{self._describe()}: {why} (waited {timeout:.2f} s)")
            self._returned = self._seq
            return self._latest

    def close(self) -> None:
        if self._state == "closed":
            return
        was = self._state
        self._state = "closed"
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5.0)
        if was != "new":
            try:
                self._disconnect()
            except Exception:  # noqa: BLE001 - closing must not fail on a vanished device
                log.exception("%s: error while closing", self._describe())
        self._sink = None

    # -- capture thread ----------------------------------------------------------------------
    def _wait_sink(self) -> rs.frame | None:
        sink = self._sink
        if sink is None:
            return None
        try:
            if isinstance(sink, rs.syncer):
                ok, f = sink.try_wait_for_frames(int(self.poll_s * 1e3))
            else:
                ok, f = sink.try_wait_for_frame(int(self.poll_s * 1e3))
        except RuntimeError:
            return None
        return f if ok else None

    def _run(self) -> None:
        while not self._stop.is_set():
            f = self._wait_sink()
            if f is None:
                if self._sink is None:
                    self._stop.wait(self.poll_s)  # disconnected; _on_silence reconnects
                silent = self._now() - self._last_arrival
                if silent > self.frame_timeout:
                    if not self.fault:
                        self.fault = f"stopped delivering frames ({silent:.1f} s without a frame)"
                        log.error("%s: %s", self._describe(), self.fault)
                    try:
                        self._on_silence(silent)
                    except Exception:  # noqa: BLE001 - keep the thread alive, retry later
                        log.exception("%s: recovery attempt failed", self._describe())
                continue
            try:
                cap = self._convert(f)
            except Exception:  # noqa: BLE001 - one bad frame must not end capture
                log.exception("%s: could not convert a frame", self._describe())
                continue
            if cap is None:
                continue
            self._last_arrival = cap.meta.arrival if cap.meta else self._now()
            if self.fault:
                log.warning("%s: delivering again after: %s", self._describe(), self.fault)
                self.fault = ""
            with self._cond:
                self._latest = cap
                self._seq += 1
                self._cond.notify_all()

    def _convert(self, f: rs.frame) -> Capture | None:
        arrival = self._now()
        depth_m = None
        if f.is_frameset():
            fs = f.as_frameset()
            if self._align is not None and fs.size() > 1:
                fs = self._align.process(fs)
            color = fs.get_color_frame()
            if not color:
                return None  # a depth-only set (colour dropped); the next set brings colour
            d = fs.get_depth_frame()
            if d:
                depth_m = np.asanyarray(d.get_data()).astype(np.float32) * np.float32(d.get_units())
        else:
            color = f.as_video_frame()
        img = np.array(np.asanyarray(color.get_data()), copy=True)  # librealsense reuses buffers
        if depth_m is not None and depth_m.shape != img.shape[:2]:
            depth_m = None  # unaligned (align disabled or failed): not published as aligned depth
        dev_ms = float(color.get_timestamp())
        domain = domain_name(color)
        stamp = self._stamp(dev_ms, domain)
        number = int(color.get_frame_number())
        frame = CameraFrame(self.view, img, stamp, self._intrinsics, depth_m, number, self.serial,
                            frames.optical_frame(self.view))
        meta = FrameMetadata(self.view, self.serial, number, stamp, dev_ms, domain, arrival,
                             _meta(color, rs.frame_metadata_value.actual_exposure),
                             _meta(color, rs.frame_metadata_value.gain_level))
        return Capture(frame, meta)


def find_stream(sensors: Sequence[rs.sensor], config: CameraConfig, stream: str, fmt: str,
                who: str) -> tuple[int, rs.stream_profile]:
    """(sensor index, profile) of the first sensor offering the configured profile for
    ``stream``; ``CameraProfileError`` listing every profile of that stream otherwise."""
    everything: list[ProfileInfo] = []
    for k, s in enumerate(sensors):
        profiles = list(s.get_stream_profiles())
        infos = [profile_info(p) for p in profiles]
        everything.extend(infos)
        try:
            i = choose_profile(infos, stream, config.width, config.height, config.fps, fmt, who)
        except CameraProfileError:
            continue
        return k, profiles[i]
    choose_profile(everything, stream, config.width, config.height, config.fps, fmt, who)
    raise AssertionError("unreachable: choose_profile raises when nothing matches")
