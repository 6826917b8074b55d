"""The rig's extrinsics from one calibration folder (``a2w.calib.files.load_calibration``), in the
forms the nodes' parameters and the URDF take.

One source of truth: the arm node and robot_state_node take a ``calibration`` parameter (a folder,
'' = the built-in sim values). With a folder, the base poses, the front camera and the wrist
hand-eye come from it. A pose parameter left at its default is replaced by the calibrated value; a
pose parameter set to anything else must agree with the calibration (``POSE_TOLERANCE``), else the
node refuses to start naming the parameter, the file and both values: two different truths are
never resolved silently.

Frame conversions (docs/architecture.md §5): the calibration gives optical frames
(``cam_<view>_color_optical_frame``), the URDF mounts camera links (``cam_<view>_link``, realsense-ros
axes) and hangs the optical frame below with a fixed rotation (``LINK_TO_OPTICAL``); the hand-eye is
``<arm>_tcp -> optical``, the URDF mounts wrist cameras on ``<arm>_flange``, which is ``tcp_offset``
below the TCP along the tool z (the gripper mount is the identity).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy.spatial.transform import Rotation

from a2w.geometry import xyz_rpy_to_matrix

ARMS = ("left", "right")
# Two poses closer than this (m, and rad of rotation) are the same pose: the calibration files keep
# ~1e-9, rpy round trips lose ~1e-15; a real disagreement is millimetres.
POSE_TOLERANCE = 1e-6
# realsense-ros's cam_<view>_link -> cam_<view>_color_optical_frame (rpy -pi/2, 0, -pi/2; no offset
# in the model: the sim renders from the link's origin, a RealSense driver may publish its own).
LINK_TO_OPTICAL = xyz_rpy_to_matrix((0.0, 0.0, 0.0), (-math.pi / 2, 0.0, -math.pi / 2))


def pose6_matrix(v: Sequence[float]) -> np.ndarray:
    """4x4 of ``[x, y, z, roll, pitch, yaw]`` (fixed-axis rpy, as URDF and the parameters)."""
    return xyz_rpy_to_matrix(v[:3], v[3:])


def matrix_pose6(m: np.ndarray) -> list[float]:
    """``[x, y, z, roll, pitch, yaw]`` of a 4x4."""
    return [*map(float, m[:3, 3]), *map(float, Rotation.from_matrix(m[:3, :3]).as_euler("xyz"))]


def pose_distance(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Translation (m) and rotation (rad) between two 4x4 poses."""
    d = np.linalg.inv(a) @ b
    return float(np.linalg.norm(a[:3, 3] - b[:3, 3])), float(Rotation.from_matrix(d[:3, :3]).magnitude())


def same_pose(a: np.ndarray, b: np.ndarray, tol: float = POSE_TOLERANCE) -> bool:
    dt, dr = pose_distance(a, b)
    return dt <= tol and dr <= tol


def front_link_in_world(world_optical: np.ndarray) -> np.ndarray:
    """``cam_front_link`` in ``world`` from the calibrated front optical frame in ``world``."""
    return world_optical @ np.linalg.inv(LINK_TO_OPTICAL)


def wrist_link_in_flange(tcp_optical: np.ndarray, tcp_offset: float) -> np.ndarray:
    """``cam_<arm>_wrist_link`` in ``<arm>_flange`` from the hand-eye (optical frame in ``<arm>_tcp``)."""
    flange_tcp = np.eye(4)
    flange_tcp[2, 3] = tcp_offset
    return flange_tcp @ tcp_optical @ np.linalg.inv(LINK_TO_OPTICAL)


def handeye_from_wrist_link(flange_link: np.ndarray, tcp_offset: float) -> np.ndarray:
    """Inverse of ``wrist_link_in_flange``: the optical frame in ``<arm>_tcp``."""
    flange_tcp = np.eye(4)
    flange_tcp[2, 3] = tcp_offset
    return np.linalg.inv(flange_tcp) @ flange_link @ LINK_TO_OPTICAL


@dataclass(frozen=True)
class Extrinsics:
    """What the nodes take from a calibration folder, as 4x4 matrices."""

    folder: Path
    bases: dict[str, np.ndarray]  # <arm>_base in world
    front_optical: np.ndarray  # cam_front_color_optical_frame in world
    handeye: dict[str, np.ndarray]  # cam_<arm>_wrist_color_optical_frame in <arm>_tcp
    vr_yaw_deg: float = 0.0  # the teleop operator frame about world z (vr.yaml)


def load_extrinsics(folder: str | Path) -> Extrinsics:
    """The extrinsics of calibration ``folder``; ``a2w.calib.files.CalibrationError`` (a
    ``ValueError`` naming the file and field) when it is missing or invalid."""
    from a2w.calib.files import load_calibration  # the calibration package loads YAML schemas: only when used

    cal = load_calibration(folder)
    return Extrinsics(Path(folder), {a: cal.bases[a].matrix() for a in ARMS}, cal.front.matrix(),
                      {a: cal.handeye[a].matrix() for a in ARMS}, cal.vr_yaw_deg)


def resolve_pose(name: str, given: Sequence[float], default: Sequence[float], calibrated: np.ndarray,
                 source: str) -> list[float]:
    """The pose parameter ``name`` to use when the calibration says ``calibrated`` (4x4).

    ``given`` equal to the parameter's ``default``: the calibrated pose. Otherwise ``given`` must be
    the calibrated pose within ``POSE_TOLERANCE`` (then it is used as given); any other value is a
    ``ValueError`` naming the parameter, ``source`` (the calibration file) and both values."""
    if len(given) != 6 or not all(math.isfinite(float(x)) for x in given):
        raise ValueError(f"{name}: need 6 finite values x, y, z, roll, pitch, yaw, got {list(given)}")
    if [float(x) for x in given] == [float(x) for x in default]:
        return matrix_pose6(calibrated)
    if same_pose(pose6_matrix(given), calibrated):
        return [float(x) for x in given]
    dt, dr = pose_distance(pose6_matrix(given), calibrated)
    cal = ", ".join(f"{x:.6g}" for x in matrix_pose6(calibrated))
    raise ValueError(
        f"{name} {list(given)} conflicts with {source} ([{cal}]; {dt * 1000:.3g} mm, "
        f"{math.degrees(dr):.3g} deg apart): the calibration folder is the rig's one source of extrinsics, "
        f"so leave {name} unset, or set calibration to '' to use the parameter")
