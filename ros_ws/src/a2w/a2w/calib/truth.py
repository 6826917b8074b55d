"""The sim rig's calibration truth, from the tables the MJCF and the URDF are built from.

``calibration/sim/`` is this module's output (``a2w calib sim-truth``); a test checks the files
equal it and that it equals the MuJoCo model's own cameras and bodies, so the folder cannot drift
from the scene. The sim renders pinholes without distortion, principal point at the image centre
in the pixel-centres-at-integers convention (a2w.sim.world.SimWorld.camera_intrinsics).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from a2w.calib.files import (
    ARMS,
    WRIST_VIEW,
    CameraIntrinsics,
    Transform,
    write_bases,
    write_cameras,
    write_front,
    write_handeye,
    write_vr,
)
from a2w.msgs.cameras import FRONT
from a2w.sim.scene import TCP_OFFSET, SceneConfig, fovy_for, front_camera_mount, wrist_camera_mount

MUJOCO_TO_OPTICAL = np.diag([1.0, -1.0, -1.0])  # MuJoCo camera axes -> optical (z forward, y down)
SIM_RIG = "sim"
# Stamped into the generated files so regenerating leaves them byte-identical.
SIM_CREATED = "2026-12-02T00:00:00Z"


def _pose(pos: np.ndarray, rot: np.ndarray) -> Transform:
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = rot, pos
    return Transform.from_matrix(m)


def sim_intrinsics(f_px: float, width: int = 640, height: int = 480, serial: str = "sim") -> CameraIntrinsics:
    """The MuJoCo pinhole of a camera with focal length ``f_px`` (defined at 480 rows, as the
    scene's ``fovy_for``) rendered at ``width`` x ``height``."""
    fovy = math.radians(fovy_for(f_px))
    f = (height / 2.0) / math.tan(fovy / 2.0)
    return CameraIntrinsics(serial, width, height, f, f, (width - 1) / 2.0, (height - 1) / 2.0,
                            "plumb_bob", (0.0,) * 5, "sim")


def sim_cameras(cfg: SceneConfig | None = None, width: int = 640, height: int = 480) -> dict[str, CameraIntrinsics]:
    cfg = cfg or SceneConfig(task="none")
    out = {FRONT: sim_intrinsics(cfg.front_f_px, width, height, "sim-front")}
    for arm in ARMS:
        out[WRIST_VIEW[arm]] = sim_intrinsics(cfg.wrist_f_px, width, height, f"sim-{WRIST_VIEW[arm]}")
    return out


def sim_handeye(cfg: SceneConfig | None = None) -> dict[str, Transform]:
    """Per arm, ``<arm>_tcp -> cam_<arm>_wrist_color_optical_frame``: the MJCF puts the camera in
    the flange body and the TCP site at ``TCP_OFFSET`` along the flange z (same axes)."""
    cfg = cfg or SceneConfig(task="none")
    pos, axes = wrist_camera_mount(cfg)
    flange_cam = _pose(pos, axes @ MUJOCO_TO_OPTICAL)
    flange_tcp = Transform(np.array([0.0, 0.0, TCP_OFFSET]), np.array([0.0, 0.0, 0.0, 1.0]))
    x = flange_tcp.inverse() @ flange_cam
    return {arm: x for arm in ARMS}


def sim_front(cfg: SceneConfig | None = None) -> Transform:
    """``world -> cam_front_color_optical_frame``."""
    pos, axes = front_camera_mount(cfg or SceneConfig(task="none"))
    return _pose(pos, axes @ MUJOCO_TO_OPTICAL)


def sim_bases(cfg: SceneConfig | None = None) -> dict[str, Transform]:
    """Per arm, ``world -> <arm>_base``."""
    cfg = cfg or SceneConfig(task="none")
    out = {}
    for arm in ARMS:
        b = cfg.base(arm)
        out[arm] = Transform.from_xyz_rpy([b.x, b.y, b.z, b.roll, b.pitch, b.yaw])
    return out


def write_sim_truth(folder: Path | str, cfg: SceneConfig | None = None, created: str = SIM_CREATED) -> None:
    """Write the sim rig's calibration folder (all five files)."""
    method = "sim truth: a2w.calib.truth from a2w.sim.scene (a2w calib sim-truth)"
    write_cameras(folder, SIM_RIG, sim_cameras(cfg), method, created=created)
    write_handeye(folder, SIM_RIG, sim_handeye(cfg), method, created=created)
    write_front(folder, SIM_RIG, sim_front(cfg), method, created=created)
    write_bases(folder, SIM_RIG, sim_bases(cfg), method, created=created)
    write_vr(folder, SIM_RIG, 0.0, "sim truth: the teleop node's default yaw", created=created)
