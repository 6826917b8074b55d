"""SimCameraSource: a rendered MuJoCo camera behind the ``CameraSource`` interface.

Frames are rendered by the world's stepping thread when sim time crosses the camera's frame grid
(k / fps), stamped with that sim time, and handed over here. The intrinsics are computed from
the rendered camera's ``fovy`` at the configured size, so they describe exactly what is rendered
(front D435i-like f = 610 px, wrist D405-like f = 385 px at 640x480, scaled at other sizes).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from a2w import frames
from a2w.cameras.source import CameraConfig, CameraError, CameraNotFound, CameraSource, CameraStateError, CameraTimeout
from a2w.msgs.cameras import CameraFrame, CameraIntrinsics
from a2w.sim.world import DEFAULT_WORLD, VIEW_CAMERAS, SimWorld, get_world


class SimCameraSource(CameraSource):
    """Camera ``config.view`` of a sim world.

    ``world``: the world to render; if None, the world registered as ``world_name`` (by the sim
    node) is looked up at ``open()``. ``camera``: the MuJoCo camera name; by default the one
    serving the view (``VIEW_CAMERAS``: left_wrist, right_wrist, front).
    """

    def __init__(self, config: CameraConfig, world: SimWorld | None = None,
                 world_name: str = DEFAULT_WORLD, camera: str | None = None) -> None:
        super().__init__(config)
        self._world = world
        self._world_name = world_name
        self.camera = camera or VIEW_CAMERAS.get(config.view, config.view)
        self.serial = f"sim:{self.camera}"
        self.width, self.height = int(config.width), int(config.height)
        self.period = 1.0 / float(config.fps)
        self._intrinsics: CameraIntrinsics | None = None
        self._cond = threading.Condition()
        self._latest: CameraFrame | None = None
        self._returned = -1
        self._count = 0
        self._state = "new"  # new -> open -> streaming -> closed

    @property
    def world(self) -> SimWorld:
        if self._world is None:
            raise CameraStateError("sim camera is not open")
        return self._world

    def open(self) -> None:
        if self._state == "closed":
            raise CameraStateError("sim camera was closed; make a new one")
        if self._world is None:
            try:
                self._world = get_world(self._world_name)
            except LookupError as exc:
                raise CameraNotFound(str(exc)) from exc
        try:
            self._world.check_camera(self.camera, self.width, self.height)
        except LookupError as exc:
            raise CameraNotFound(f"view {self.view!r}: {exc}") from exc
        except ValueError as exc:
            raise CameraError(f"view {self.view!r}: {exc}") from exc
        self._intrinsics = self._world.camera_intrinsics(self.camera, self.width, self.height)
        if self._state == "new":
            self._state = "open"

    def start(self) -> None:
        if self._state not in ("open", "streaming"):
            raise CameraStateError(f"start() needs open() first (state: {self._state})")
        if self._state == "open":
            self.world.attach_camera(self)
            self._state = "streaming"

    @property
    def intrinsics(self) -> CameraIntrinsics:
        if self._intrinsics is None:
            raise CameraStateError("intrinsics need open() first")
        return self._intrinsics

    def deliver(self, image: np.ndarray, stamp: float) -> None:
        """Called by the world's stepping thread with a freshly rendered image."""
        with self._cond:
            if self._state != "streaming":
                return
            self._count += 1
            self._latest = CameraFrame(
                view=self.view, image=image, stamp=stamp, intrinsics=self._intrinsics,
                frame_number=self._count, serial=self.serial,
                frame_id=frames.optical_frame(self.view))
            self._cond.notify_all()

    def latest(self) -> CameraFrame | None:
        if self._state == "new":
            raise CameraStateError("latest() needs open() first")
        with self._cond:
            return self._latest

    def wait_frame(self, timeout: float) -> CameraFrame:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if self._state != "streaming":
                    raise CameraStateError(f"wait_frame() needs a started camera (state: {self._state})")
                if self._latest is not None and self._latest.frame_number > self._returned:
                    self._returned = self._latest.frame_number
                    return self._latest
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise CameraTimeout(
                        f"view {self.view!r}: no frame within {timeout:.2f} s; is the sim world "
                        f"being stepped (sim_node running)?")
                self._cond.wait(remaining)

    def close(self) -> None:
        # Detach before taking our own lock: the stepping thread delivers while holding the
        # world lock and then takes ours.
        if self._state == "streaming" and self._world is not None:
            self._world.detach_camera(self)
        with self._cond:
            self._state = "closed"
            self._cond.notify_all()


def make_source(config: CameraConfig, ctx: Any) -> SimCameraSource:
    """Camera-node driver factory (``driver: sim``): the view's camera in the world the sim node
    of this process registered as ``sim.world_name``."""
    return SimCameraSource(config, world_name=ctx.params.sim.world_name)
