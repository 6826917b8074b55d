"""Playback source: the camera-source interface over a librealsense recording (.db3).

pyrealsense2 2.59 records rosbag2 SQLite ``.db3`` files (``rs.recorder``) and plays them back with
``context.load_device`` (ros2_facts.md §1.2 "Recording and playback"). One file holds one camera;
the camera node's playback driver reads ``<playback.dir>/<view>.db3``.

Stamps: by default recorded stamps are shifted so the first frame seen by any view of the node
maps to "now"; the shift is shared by all views (``StampShift``), so the recorded offsets between
cameras, and with them stamp pairing, are preserved. With ``loop``, each pass adds the file's
span to the shift of that view (views of unequal length then drift apart by the difference).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pyrealsense2 as rs

from a2w.cameras.realsense.rsutil import RsCaptureBase, find_stream, to_intrinsics
from a2w.cameras.source import CameraConfig, CameraError, CameraNotFound

log = logging.getLogger(__name__)


class StampShift:
    """One offset (seconds) for all views, fixed by the first frame any of them delivers."""

    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self._now = now
        self._lock = threading.Lock()
        self.offset: float | None = None

    def __call__(self, recorded: float) -> float:
        with self._lock:
            if self.offset is None:
                self.offset = self._now() - recorded
            return recorded + self.offset


class PlaybackSource(RsCaptureBase):
    """Plays one recorded camera. ``restamp``: a ``StampShift`` (shared between views) or None
    to publish the recorded stamps unchanged. ``realtime``: pace by the recorded stamps."""

    def __init__(self, config: CameraConfig, path: str | Path, *, realtime: bool = True,
                 loop: bool = False, restamp: StampShift | None = None,
                 frame_timeout: float = 0.5, now: Callable[[], float] = time.time) -> None:
        super().__init__(config, frame_timeout=frame_timeout, now=now)
        self.path = Path(path)
        self.realtime = realtime
        self.loop = loop
        self.shift = restamp
        self.passes = 0
        self._first_ms: float | None = None
        self._last_ms = -math.inf
        self._span_s = 0.0
        self._dev: Any = None
        self._sensor: rs.sensor | None = None
        self.ended = False

    def _connect(self) -> Any:
        if not self.path.is_file():
            raise CameraNotFound(f"camera {self.view!r}: recording {self.path} does not exist")
        if self.path.suffix != ".db3":
            raise CameraError(f"camera {self.view!r}: {self.path} is not a .db3 recording "
                              "(pyrealsense2 2.59 records and plays rosbag2 .db3)")
        try:
            dev = rs.context().load_device(str(self.path))
        except RuntimeError as exc:
            raise CameraError(f"camera {self.view!r}: cannot open recording {self.path}: {exc}") from exc
        pb = dev.as_playback()
        pb.set_real_time(self.realtime)
        who = f"camera {self.view!r} (recording {self.path.name})"
        if not self.serial and dev.supports(rs.camera_info.serial_number):
            self.serial = dev.get_info(rs.camera_info.serial_number)
        sensors = list(dev.query_sensors())
        k, prof = find_stream(sensors, self.config, "color", "rgb8", who)
        self._intrinsics = to_intrinsics(prof.as_video_stream_profile())
        sink = rs.frame_queue(4, keep_frames=True)
        try:
            sensors[k].open(prof)
            sensors[k].start(sink)
        except RuntimeError as exc:
            raise CameraError(f"{who}: could not start playback: {exc}") from exc
        self._dev, self._sensor, self.ended = dev, sensors[k], False
        self.passes += 1
        return sink

    def _disconnect(self) -> None:
        s, self._sensor = self._sensor, None
        if s is not None:
            for step in (s.stop, s.close):
                try:
                    step()
                except RuntimeError:
                    pass
        self._dev = None

    def _stamp(self, device_ms: float, domain: str) -> float:
        if self._first_ms is None:
            self._first_ms = device_ms
        if self.passes == 1:
            self._last_ms = max(self._last_ms, device_ms)
        recorded = device_ms / 1e3 + (self.passes - 1) * self._span_s
        return self.shift(recorded) if self.shift is not None else recorded

    def _on_silence(self, silent_for: float) -> None:
        if self._dev is None:
            return
        try:
            stopped = self._dev.as_playback().current_status() == rs.playback_status.stopped
        except RuntimeError:
            stopped = True
        if not stopped:
            return
        if not self.loop:
            if not self.ended:
                log.info("camera %r: recording %s ended", self.view, self.path.name)
            self.ended = True
            self.fault = f"recording {self.path.name} ended"
            return
        if self._first_ms is not None and self.passes == 1:
            self._span_s = (self._last_ms - self._first_ms) / 1e3 + 1.0 / self.config.fps
        self._disconnect()
        self._sink = None
        self._sink = self._connect()


def make_source(config: CameraConfig, ctx: Any) -> PlaybackSource:
    """Driver factory for the camera component (``DRIVERS["playback"]``): ``<playback.dir>/<view>.db3``."""
    p = ctx.params.playback
    if not p.dir:
        raise ValueError("playback.dir: the playback driver needs a directory of <view>.db3 files")
    shift = ctx.shared.setdefault("playback_shift", StampShift()) if p.restamp else None
    return PlaybackSource(config, Path(p.dir) / f"{config.view}.db3", realtime=p.realtime,
                          loop=p.loop, restamp=shift, frame_timeout=min(ctx.params.frame_timeout, 0.5))
