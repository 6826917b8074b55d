"""The camera node: three cameras (front, left_wrist, right_wrist) published ROS-style.

Per view ``<prefix>/<view>/...`` (realsense-ros topic names, ros2_facts.md §1.1, with
``camera_namespace`` = cameras and ``camera_name`` = the view):

* ``color/image_raw`` (CameraFrame; carries its intrinsics, and aligned depth too when enabled).
  On ROS the host publishes one ``color/camera_info`` (sensor_msgs/CameraInfo) next to each image,
  with the image's stamp and frame id (``a2w.ros.codec``); in-process, consumers read
  ``CameraFrame.intrinsics``, so the node publishes no camera_info of its own.
* ``color/metadata`` (FrameMetadata: device stamp, domain, exposure; reliable, as realsense-ros's
  info QoS) when the driver provides it
* ``aligned_depth_to_color/image_raw`` (DepthFrame) when ``enable_depth``

Images (and so camera_info) and depth are published reliable, keep-last 1, as realsense-ros does by
default and RViz's Image display and rqt_image_view subscribe; ``image_qos: best_effort`` publishes
them best-effort instead (what a lossy link wants). Our own subscribers use best-effort depth 1,
which matches either.

plus one DiagnosticStatus per camera on ``/diagnostics`` (rate, drops, stamp jitter, faults).

A view's image topic must have one publisher: the node refuses to start next to another node
publishing it, and flags one that appears later (discovery across processes) with a logged error
and an ERROR status naming both nodes.

Drivers are looked up by name in ``DRIVERS`` (name -> factory, or "module:function" imported on
first use); each lives in its own package (``cameras/realsense``, ``cameras/playback``,
``cameras/sim``) and declares its own parameters there, which the node declares under the
driver's name (``realsense.serials``, ``playback.dir``, ``sim.world_name``). Each camera has its own worker thread:
it opens the source (retrying while the device is missing, so a camera plugged in later is picked
up without restarting the node), waits for frames and publishes them.
"""

from __future__ import annotations

import importlib
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from a2w.cameras.playback.config import PlaybackParams
from a2w.cameras.realsense.config import RealSenseParams
from a2w.cameras.sim.config import SimCameraParams
from a2w.cameras.source import CameraConfig, CameraError, CameraSource, CameraTimeout, Capture
from a2w.cameras.stats import StreamStats
from a2w.clock import Clock
from a2w.host.component import Component, NodeHandle
from a2w.host.params import Params, param
from a2w.host.qos import QoS, Reliability
from a2w.msgs.cameras import (
    FRONT,
    LEFT_WRIST,
    RIGHT_WRIST,
    CameraFrame,
    DepthFrame,
    FrameMetadata,
)
from a2w.msgs.diagnostics import DiagnosticLevel, DiagnosticStatus

# Front first: the order a config that gives only ``realsense.serials`` has always assigned them in.
RIG_VIEWS = [FRONT, LEFT_WRIST, RIGHT_WRIST]


@dataclass
class CameraParams(Params):
    driver: str = param("realsense", "camera driver: a key of a2w.cameras.component.DRIVERS "
                                     "(realsense, playback, sim)")
    views: list[str] = param(list(RIG_VIEWS), "view names, one camera each")
    width: int = param(640, "colour width (px)", low=1)
    height: int = param(480, "colour height (px)", low=1)
    fps: float = param(30.0, "frame rate", low=1.0, high=300.0)
    enable_depth: bool = param(False, "also stream depth aligned to colour")
    image_qos: str = param("reliable", "reliability of the image, camera_info and depth publishers: "
                                       "reliable (realsense-ros's default, what RViz expects) or best_effort",
                           choices=("reliable", "best_effort"))
    topic_prefix: str = param("/cameras", "topics are <prefix>/<view>/color/...")
    frame_timeout: float = param(1.0, "seconds without a frame before a camera counts as stopped",
                                 low=0.05)
    retry_period: float = param(1.0, "seconds between open / restart / reconnect attempts", low=0.05)
    diagnostics_period: float = param(1.0, "seconds between per-camera diagnostics", low=0.05)
    jitter_warn_ms: float = param(5.0, "stamp-interval error (p99) above which a camera warns", low=0.0)
    min_rate_ratio: float = param(0.8, "warn when the rate falls below this fraction of fps",
                                  low=0.0, high=1.0)
    realsense: RealSenseParams = param(RealSenseParams(), "parameters of the realsense driver")
    playback: PlaybackParams = param(PlaybackParams(), "parameters of the playback driver")
    sim: SimCameraParams = param(SimCameraParams(), "parameters of the sim driver")


@dataclass
class DriverContext:
    """What a driver factory gets besides the CameraConfig."""

    params: CameraParams
    index: int  # position of the view in params.views
    clock: Clock
    logger: logging.Logger
    shared: dict[str, Any] = field(default_factory=dict)  # one dict per component, for all views


DriverFactory = Callable[[CameraConfig, DriverContext], CameraSource]

# Driver name -> factory or "module:function" (imported on first use so that, e.g., the sim
# driver does not need pyrealsense2 and the RealSense one does not need MuJoCo).
DRIVERS: dict[str, DriverFactory | str] = {
    "realsense": "a2w.cameras.realsense.source:make_source",
    "playback": "a2w.cameras.playback.source:make_source",
    "sim": "a2w.cameras.sim.source:make_source",
}


def driver_factory(name: str) -> DriverFactory:
    try:
        entry = DRIVERS[name]
    except KeyError:
        raise ValueError(f"driver: unknown camera driver {name!r}; known: {sorted(DRIVERS)}") from None
    if isinstance(entry, str):
        module, _, func = entry.partition(":")
        entry = getattr(importlib.import_module(module), func)
    return entry  # type: ignore[return-value]


class _Camera:
    """One view: its source, publishers, statistics and worker state."""

    def __init__(self, view: str, source: CameraSource, stats: StreamStats) -> None:
        self.view = view
        self.source = source
        self.stats = stats
        self.opened = False
        self.error = ""  # why it is not streaming (open failure or fault)
        self.published = 0
        self.exposure_us = math.nan
        self.pubs: dict[str, Any] = {}
        self.image_topic = ""  # as given to create_publisher (unresolved)
        self.conflict = ""  # another node publishing this view's image topic


class CameraComponent(Component):
    """See the module docstring."""

    Params = CameraParams
    params: CameraParams

    def __init__(self, node: NodeHandle, params: CameraParams) -> None:
        super().__init__(node, params)
        p = params
        if not p.views:
            raise ValueError("views: at least one view is required")
        if len(set(p.views)) != len(p.views):
            raise ValueError(f"views: duplicate names in {p.views}")
        factory = driver_factory(p.driver)
        shared: dict[str, Any] = {}
        # Sources are cheap to build (no I/O before open()), and they know their serials.
        sources = [factory(CameraConfig(view, "", p.width, p.height, p.fps, p.enable_depth),
                           DriverContext(p, i, node.clock, self.log, shared))
                   for i, view in enumerate(p.views)]
        self.cameras: list[_Camera] = []
        prefix = p.topic_prefix.rstrip("/")
        # Keep-last 1 either way: a late image is worth nothing, and a reliable writer with one
        # slot never holds frames back for a slow reader.
        image_qos = QoS(Reliability(p.image_qos), 1)
        # Two nodes streaming one view interleave their frames on one topic, and consumers cannot
        # tell: refuse to start next to a node that already publishes one of our image topics.
        for view, source in zip(p.views, sources):
            conflict = self._conflict(f"{prefix}/{view}/color/image_raw", view, source.serial)
            if conflict:
                raise ValueError(f"views: {conflict}")
        for view, source in zip(p.views, sources):
            cam = _Camera(view, source, StreamStats(p.fps))
            base = f"{prefix}/{view}"
            cam.image_topic = f"{base}/color/image_raw"
            cam.pubs["image"] = node.create_publisher(cam.image_topic, CameraFrame, image_qos)
            cam.pubs["meta"] = node.create_publisher(f"{base}/color/metadata", FrameMetadata, QoS.reliable(10))
            if p.enable_depth:
                cam.pubs["depth"] = node.create_publisher(
                    f"{base}/aligned_depth_to_color/image_raw", DepthFrame, image_qos)
            self.cameras.append(cam)
        self._diag = node.create_publisher("/diagnostics", DiagnosticStatus, QoS.reliable(50))
        node.create_timer(p.diagnostics_period, self._publish_diagnostics)
        for cam in self.cameras:
            node.start_worker(f"camera:{cam.view}", lambda c=cam: self._run(c))

    # -- per-camera worker -----------------------------------------------------------------
    def _run(self, cam: _Camera) -> None:
        stop = self.node.shutdown_event
        p = self.params
        try:
            while not stop.is_set():
                if not cam.opened:
                    try:
                        cam.source.open()
                        cam.source.start()
                    except CameraError as exc:
                        if cam.error != str(exc):
                            self.log.error("%s", exc)
                        cam.error = str(exc)
                        stop.wait(p.retry_period)
                        continue
                    cam.opened, cam.error = True, ""
                try:
                    # Short waits so shutdown is seen promptly; silence is judged over the
                    # whole frame timeout (the source itself reports why it is silent).
                    cap = cam.source.wait_capture(min(p.frame_timeout, 0.2))
                except CameraTimeout as exc:
                    if cam.stats.silent_for(time.time()) > p.frame_timeout:
                        cam.error = str(exc)
                    continue
                except CameraError as exc:  # e.g. the source was closed under us
                    cam.error = str(exc)
                    stop.wait(p.retry_period)
                    continue
                cam.error = ""
                self._publish(cam, cap)
        finally:
            cam.source.close()

    def _publish(self, cam: _Camera, cap: Capture) -> None:
        f = cap.frame
        arrival = cap.meta.arrival if cap.meta is not None else time.time()
        cam.stats.update(f.frame_number, f.stamp, arrival)
        cam.pubs["image"].publish(f)
        if cap.meta is not None:
            cam.exposure_us = cap.meta.exposure_us
            cam.pubs["meta"].publish(cap.meta)
        if "depth" in cam.pubs and f.depth is not None:
            cam.pubs["depth"].publish(DepthFrame(f.view, f.depth, f.stamp, f.frame_number, f.frame_id))
        cam.published += 1

    # -- one publisher per image topic -------------------------------------------------------
    def _conflict(self, topic: str, view: str, serial: str) -> str:
        """Why ``topic`` is not ours alone ('' if it is): names both nodes and the view."""
        topic = self.node.resolve_topic(topic)
        others = sorted({n for n in self.node.topic_publishers(topic) if n != self.node.fqn})
        if not others:
            return ""
        return (f"view {view!r} of {self.node.fqn} (serial {serial or '-'}, driver {self.params.driver}) "
                f"and node(s) {', '.join(others)} publish on one topic, {topic}: their frames "
                "interleave; give each view to one camera node")

    def _check_conflicts(self) -> None:
        # Across processes a second publisher appears only after discovery, hence periodically.
        for cam in self.cameras:
            conflict = self._conflict(cam.image_topic, cam.view, cam.source.serial)
            if conflict and conflict != cam.conflict:
                self.log.error("%s", conflict)
            cam.conflict = conflict

    # -- diagnostics -------------------------------------------------------------------------
    def camera_status(self, cam: _Camera, now: float) -> DiagnosticStatus:
        p = self.params
        s = cam.stats
        rate = s.rate(now)
        j50, j99 = s.jitter()
        values = {
            "serial": cam.source.serial,
            "driver": p.driver,
            "rate_hz": f"{rate:.2f}",
            "frames": s.frames,
            "drops": s.drops,
            "restarts": cam.source.restarts,
            "jitter_p50_ms": f"{j50 * 1e3:.3f}",
            "jitter_p99_ms": f"{j99 * 1e3:.3f}",
            "max_gap_ms": f"{s.max_gap * 1e3:.1f}",
            "silent_s": f"{s.silent_for(now):.2f}",
            "exposure_us": f"{cam.exposure_us:g}",
        }
        fault = cam.conflict or cam.source.fault or cam.error
        if fault:
            level, msg = DiagnosticLevel.ERROR, fault
        elif s.frames == 0:
            level, msg = DiagnosticLevel.WARN, "waiting for the first frame"
        elif rate < p.min_rate_ratio * p.fps:
            level, msg = DiagnosticLevel.WARN, f"low rate {rate:.1f} Hz (nominal {p.fps:g})"
        elif j99 * 1e3 > p.jitter_warn_ms:
            level, msg = DiagnosticLevel.WARN, f"stamp jitter p99 {j99 * 1e3:.1f} ms > {p.jitter_warn_ms:g} ms"
        else:
            level, msg = DiagnosticLevel.OK, "ok"
        return DiagnosticStatus(f"{self.node.fqn}/{cam.view}", level, msg, values,
                                self.node.clock.now())

    def _publish_diagnostics(self) -> None:
        self._check_conflicts()
        now = time.time()
        for cam in self.cameras:
            self._diag.publish(self.camera_status(cam, now))

    def diagnostics(self) -> dict[str, Any]:
        now = time.time()
        out: dict[str, Any] = {}
        for cam in self.cameras:
            st = self.camera_status(cam, now)
            out[f"{cam.view}.level"] = st.level
            out[f"{cam.view}.message"] = st.message
            for k in ("rate_hz", "drops", "jitter_p99_ms"):
                out[f"{cam.view}.{k}"] = st.values[k]
        return out
