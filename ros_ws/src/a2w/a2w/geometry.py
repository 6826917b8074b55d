"""Pose math on SciPy: quaternion orders, canonical sign, roll/pitch/yaw, homogeneous transforms.

Three quaternion orders meet in this project: ROS and SciPy use (x, y, z, w), the Flexiv RDK and
MuJoCo use (w, x, y, z) (flexiv_facts.md §2.5). Everything inside the runtime is xyzw; convert only
at the driver boundary with ``xyzw_to_wxyz`` / ``wxyz_to_xyzw``. Roll/pitch/yaw are URDF's: about
the fixed x, y, z axes, R = Rz(yaw) Ry(pitch) Rx(roll) (SciPy "xyz"). The per-tick hot loops use
``a2w.geometry_fast`` instead, which is tested against this module's SciPy.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.spatial.transform import Rotation

from a2w.msgs.common import Pose


def xyzw_to_wxyz(q: np.ndarray) -> np.ndarray:
    """ROS/SciPy order -> Flexiv RDK order; works on (..., 4)."""
    q = np.asarray(q, dtype=np.float64)
    return np.concatenate([q[..., 3:4], q[..., 0:3]], axis=-1)


def wxyz_to_xyzw(q: np.ndarray) -> np.ndarray:
    """Flexiv RDK order -> ROS/SciPy order; works on (..., 4)."""
    q = np.asarray(q, dtype=np.float64)
    return np.concatenate([q[..., 1:4], q[..., 0:1]], axis=-1)


def pose_to_matrix(pose: Pose) -> np.ndarray:
    """4x4 homogeneous transform of ``pose``."""
    m = np.eye(4)
    m[:3, :3] = Rotation.from_quat(pose.quaternion).as_matrix()
    m[:3, 3] = pose.position
    return m


def matrix_to_pose(m: np.ndarray) -> Pose:
    """Pose of a 4x4 homogeneous transform (rotation re-orthonormalised by SciPy)."""
    m = np.asarray(m, dtype=np.float64)
    if m.shape != (4, 4):
        raise ValueError(f"matrix: shape must be (4, 4), got {m.shape}")
    q = Rotation.from_matrix(m[:3, :3]).as_quat()
    return Pose(m[:3, 3].copy(), canonical_quaternion(q))


def canonical_quaternion(q: np.ndarray) -> np.ndarray:
    """Unit quaternion with w >= 0 (q and -q are the same rotation); works on (..., 4) xyzw."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[..., 3:4] < 0.0, -q, q)


def rpy_to_quaternion(rpy: Sequence[float]) -> np.ndarray:
    """xyzw quaternion of URDF roll, pitch, yaw (rad)."""
    return Rotation.from_euler("xyz", rpy).as_quat()


def xyz_rpy_to_matrix(xyz: Sequence[float], rpy: Sequence[float]) -> np.ndarray:
    """4x4 homogeneous transform of a translation and URDF roll, pitch, yaw (rad)."""
    m = np.eye(4)
    m[:3, :3] = Rotation.from_euler("xyz", rpy).as_matrix()
    m[:3, 3] = xyz
    return m


def rotation_angle(q_a: np.ndarray, q_b: np.ndarray) -> float:
    """Angle (rad) of the rotation between two xyzw quaternions."""
    return float((Rotation.from_quat(q_a).inv() * Rotation.from_quat(q_b)).magnitude())
