"""Live RealSense source (pyrealsense2): one camera by serial, colour 640x480x30, optional depth.

Device facts used here (ros2_facts.md §1.1-§1.2):
* the D435i has an "RGB Camera" sensor for colour; the D405 has none and delivers colour from its
  depth module ("Stereo Module"), so the colour profile is searched on every sensor;
* global time (``rs.option.global_time_enabled``) is switched on for every opened sensor so the
  three free-running cameras share the host's time base (the D405 has no sync pins);
* frames carry timestamp, domain, frame number and metadata (exposure, gain).

The decisions (which device, is the link fast enough, which profile, what to do when frames stop)
are small pure functions so they are tested without hardware; the device list comes from a
``DeviceLister`` so tests can plug and unplug ``rs.software_device``s.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import pyrealsense2 as rs

from a2w.cameras.realsense.rsutil import (
    CameraProfileError,
    RsCaptureBase,
    find_stream,
    to_intrinsics,
)
from a2w.cameras.source import CameraConfig, CameraError, CameraNotFound

log = logging.getLogger(__name__)

DeviceLister = Callable[[], Sequence[rs.device]]

__all__ = [
    "CameraLinkError", "CameraProfileError", "DeviceInfo", "RealSenseSource", "SilenceAction",
    "check_usb_link", "context_lister", "decide_on_silence", "make_source", "normalize_serial",
    "select_device",
]


class CameraLinkError(CameraError):
    """The camera is on a USB 2 link (wrong port or cable)."""


@dataclass(frozen=True)
class DeviceInfo:
    serial: str
    name: str = ""
    usb: str = ""  # usb_type_descriptor, e.g. "3.2"; "" when unknown
    port: str = ""  # physical port

    def __str__(self) -> str:
        extra = ", ".join(x for x in (self.name, f"USB {self.usb}" if self.usb else "", self.port) if x)
        return f"{self.serial} ({extra})" if extra else self.serial


def _info(dev: rs.device, key: rs.camera_info) -> str:
    try:
        return dev.get_info(key) if dev.supports(key) else ""
    except RuntimeError:  # a device that vanished while being asked
        return ""


def device_info(dev: rs.device) -> DeviceInfo:
    return DeviceInfo(_info(dev, rs.camera_info.serial_number), _info(dev, rs.camera_info.name),
                      _info(dev, rs.camera_info.usb_type_descriptor),
                      _info(dev, rs.camera_info.physical_port))


def normalize_serial(serial: str) -> str:
    """Accept realsense-ros's ``_`` prefix for digit-only serials (ros2_facts.md §1.1)."""
    s = str(serial).strip()
    return s[1:] if s.startswith("_") and s[1:].isdigit() else s


def select_device(devices: Sequence[DeviceInfo], serial: str, view: str) -> int:
    """Index of the device to open. An empty serial is allowed only with exactly one device."""
    serial = normalize_serial(serial)
    if not devices:
        raise CameraNotFound(
            f"camera {view!r}: no RealSense device connected (looking for serial "
            f"{serial or 'any'}); check the USB cable and the udev rules, and that no other "
            "process holds the camera")
    listing = "; ".join(str(d) for d in devices)
    if not serial:
        if len(devices) == 1:
            return 0
        raise CameraNotFound(
            f"camera {view!r}: no serial configured and {len(devices)} devices are connected; "
            f"set the serial to one of: {listing}")
    for i, d in enumerate(devices):
        if d.serial == serial:
            return i
    raise CameraNotFound(f"camera {view!r}: no device with serial {serial}; connected: {listing}")


def check_usb_link(info: DeviceInfo, view: str, allow_usb2: bool = False) -> None:
    """Reject a USB 2 link: three 640x480x30 RGB streams (27.6 MB/s each, more with depth) need
    USB 3 (ros2_facts.md §1.1 "Bandwidth"). An unknown descriptor passes."""
    if info.usb.startswith("2") and not allow_usb2:
        raise CameraLinkError(
            f"camera {view!r} (serial {info.serial}, {info.name}) is connected over USB {info.usb}; "
            "use a USB 3 port and cable (or set realsense.allow_usb2 to run with reduced bandwidth)")


class SilenceAction(str, enum.Enum):
    WAIT = "wait"  # give it time (retry period not over)
    RESTART = "restart"  # device present: stop and restart its sensors
    RECONNECT = "reconnect"  # device back after being gone: open it from scratch
    WAIT_FOR_DEVICE = "wait_for_device"  # unplugged: keep looking for the serial


def decide_on_silence(present: bool, connected: bool, since_last_try: float,
                      retry_period: float) -> SilenceAction:
    """What the capture thread does while a camera delivers nothing past the frame timeout.

    ``present``: the serial is in the device list; ``connected``: we still hold an open device.
    """
    if not present:
        return SilenceAction.WAIT_FOR_DEVICE
    if since_last_try < retry_period:
        return SilenceAction.WAIT
    return SilenceAction.RESTART if connected else SilenceAction.RECONNECT


def context_lister(ctx: rs.context | None = None) -> DeviceLister:
    """Devices of a librealsense context (the real USB devices)."""
    ctx = ctx or rs.context()
    return lambda: list(ctx.query_devices())


class RealSenseSource(RsCaptureBase):
    """One RealSense camera. See the module docstring.

    ``devices``: where devices come from (default: a librealsense context). ``frame_timeout``:
    silence after which the camera counts as stopped; ``retry_period``: time between restart or
    reconnect attempts. ``allow_usb2``: accept a USB 2 link.
    """

    def __init__(self, config: CameraConfig, *, devices: DeviceLister | None = None,
                 frame_timeout: float = 1.0, retry_period: float = 1.0, allow_usb2: bool = False,
                 now: Callable[[], float] = time.time) -> None:
        super().__init__(config, frame_timeout=frame_timeout, now=now)
        self._devices = devices or context_lister()
        self.retry_period = float(retry_period)
        self.allow_usb2 = allow_usb2
        self.serial = normalize_serial(config.serial)
        self._dev: rs.device | None = None
        self._sensors: list[rs.sensor] = []
        self._last_try = 0.0
        self.device: DeviceInfo | None = None

    def _list(self) -> tuple[list[rs.device], list[DeviceInfo]]:
        devs = list(self._devices())
        return devs, [device_info(d) for d in devs]

    def _connect(self) -> Any:
        devs, infos = self._list()
        i = select_device(infos, self.serial, self.view)
        info = infos[i]
        check_usb_link(info, self.view, self.allow_usb2)
        dev = devs[i]
        self.serial, self.device = info.serial, info
        who = f"camera {self.view!r} (serial {info.serial}, {info.name or 'RealSense'})"
        cfg = self.config
        # Colour may live on any sensor (the D405's comes from its depth module).
        sensors = list(dev.query_sensors())
        ci, cprof = find_stream(sensors, cfg, "color", "rgb8", who)
        chosen: dict[int, list[rs.stream_profile]] = {ci: [cprof]}
        if cfg.depth:
            di, dprof = find_stream(sensors, cfg, "depth", "z16", who)
            chosen.setdefault(di, []).append(dprof)
        self._intrinsics = to_intrinsics(cprof.as_video_stream_profile())
        # A syncer groups colour and depth of the same instant so depth can be aligned to colour.
        sink: Any = rs.syncer(4) if cfg.depth else rs.frame_queue(4, keep_frames=True)
        self._align = rs.align(rs.stream.color) if cfg.depth else None
        started: list[rs.sensor] = []
        try:
            for idx, profiles in chosen.items():
                s = sensors[idx]
                if s.supports(rs.option.global_time_enabled):
                    s.set_option(rs.option.global_time_enabled, 1)
                else:
                    log.warning("%s: sensor %s has no global time option; stamps may not share a "
                                "time base with the other cameras", who, s.get_info(rs.camera_info.name))
                s.open(profiles if len(profiles) > 1 else profiles[0])
                started.append(s)
                s.start(sink)
        except RuntimeError as exc:
            self._stop_sensors(started)
            raise CameraError(f"{who}: could not start streaming: {exc}") from exc
        self._dev, self._sensors = dev, started
        log.info("%s: streaming colour %dx%dx%g%s", who, cfg.width, cfg.height, cfg.fps,
                 " + aligned depth" if cfg.depth else "")
        return sink

    @staticmethod
    def _stop_sensors(sensors: list[rs.sensor]) -> None:
        for s in sensors:
            for step in (s.stop, s.close):
                try:
                    step()
                except RuntimeError:
                    pass  # already stopped, or the device is gone

    def _disconnect(self) -> None:
        self._stop_sensors(self._sensors)
        self._sensors, self._dev = [], None

    def _on_silence(self, silent_for: float) -> None:
        _, infos = self._list()
        present = any(d.serial == self.serial for d in infos)
        action = decide_on_silence(present, self._dev is not None, self._now() - self._last_try,
                                   self.retry_period)
        if action is SilenceAction.WAIT:
            return
        if action is SilenceAction.WAIT_FOR_DEVICE:
            if self._dev is not None:
                log.error("%s: device unplugged; waiting for it to come back", self._describe())
                self.fault = f"unplugged (serial {self.serial} not connected); waiting for it"
                self._disconnect()
                self._sink = None
            return
        self._last_try = self._now()
        self.restarts += 1
        log.warning("%s: %s after %.1f s of silence (attempt %d)", self._describe(), action.value,
                    silent_for, self.restarts)
        self._disconnect()
        self._sink = None
        self._sink = self._connect()


def make_source(config: CameraConfig, ctx: Any) -> RealSenseSource:
    """Driver factory for the camera component (``DRIVERS["realsense"]``): the view's serial from
    ``realsense.serials``. One librealsense context is shared by the component's cameras
    (ros2_facts.md §1.2 "Selection")."""
    p = ctx.params
    serials = p.realsense.serials
    if len(serials) != len(p.views):
        raise ValueError(f"realsense.serials: need one per view ({len(p.views)}: {p.views}), "
                         f"got {len(serials)}")
    if "rs_lister" not in ctx.shared:
        ctx.shared["rs_lister"] = context_lister()
    return RealSenseSource(dataclasses.replace(config, serial=serials[ctx.index]),
                           devices=ctx.shared["rs_lister"], frame_timeout=p.frame_timeout,
                           retry_period=p.retry_period, allow_usb2=p.realsense.allow_usb2)
