"""Rotation math for the hot loops, on single xyzw quaternions and 3x3/4x4 matrices.

SciPy's ``Rotation`` costs ~50 us a call (object construction and checks), these ~2 us. The arm
node's control tick runs them a dozen times at 100 Hz (clamps, slerp, frames, forward kinematics
for the capsules) and the sim's IK step hundreds of times per sim second. Everything else uses
``a2w.geometry`` (SciPy); tests/core/test_geometry.py checks each function here against SciPy.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial.transform import Rotation


def qmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a*b of xyzw quaternions."""
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return np.array([aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx,
                     aw * bz + ax * by - ay * bx + az * bw,
                     aw * bw - ax * bx - ay * by - az * bz])


def qconj(q: np.ndarray) -> np.ndarray:
    """Conjugate of an xyzw quaternion (the inverse rotation of a unit one)."""
    return np.array([-q[0], -q[1], -q[2], q[3]])


def q_to_rotvec(q: np.ndarray) -> np.ndarray:
    """Rotation vector (the short way round, norm <= pi) of a unit xyzw quaternion."""
    q = q if q[3] >= 0 else -q
    v = q[:3]
    s = math.sqrt(float(v @ v))
    if s < 1e-12:
        return 2.0 * v
    return v / s * (2.0 * math.atan2(s, float(q[3])))


def rotvec_to_q(r: np.ndarray) -> np.ndarray:
    """Unit xyzw quaternion of a rotation vector."""
    a = math.sqrt(float(r @ r))
    if a < 1e-12:
        q = np.array([r[0] / 2, r[1] / 2, r[2] / 2, 1.0])
        return q / np.linalg.norm(q)
    s = math.sin(a / 2) / a
    return np.array([r[0] * s, r[1] * s, r[2] * s, math.cos(a / 2)])


def matrix_to_rotvec(r: np.ndarray) -> np.ndarray:
    """Rotation vector of a 3x3 rotation matrix (log map)."""
    cos = min(1.0, max(-1.0, (r[0, 0] + r[1, 1] + r[2, 2] - 1.0) / 2.0))
    angle = math.acos(cos)
    axis = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    if angle < 1e-6:
        return 0.5 * axis
    if angle > math.pi - 1e-3:
        return Rotation.from_matrix(r).as_rotvec()  # near pi the antisymmetric part vanishes
    return axis * (angle / (2.0 * math.sin(angle)))


def slerp(q0: np.ndarray, q1: np.ndarray, s: float) -> np.ndarray:
    """Shortest-path spherical interpolation of xyzw quaternions."""
    q0 = np.asarray(q0, float)
    q1 = np.asarray(q1, float)
    dot = float(q0 @ q1)
    if dot < 0:
        q1, dot = -q1, -dot
    if dot > 0.9995:
        q = q0 + s * (q1 - q0)
        return q / np.linalg.norm(q)
    th = math.acos(min(dot, 1.0))
    q = (math.sin((1 - s) * th) * q0 + math.sin(s * th) * q1) / math.sin(th)
    return q / np.linalg.norm(q)


def axis_transform(axis: str, angle: float) -> np.ndarray:
    """4x4 homogeneous rotation by ``angle`` (rad) about the ``"x"``, ``"y"`` or ``"z"`` axis."""
    c, s = math.cos(angle), math.sin(angle)
    r = np.eye(4)
    if axis == "z":
        r[0, 0], r[0, 1], r[1, 0], r[1, 1] = c, -s, s, c
    elif axis == "y":
        r[0, 0], r[0, 2], r[2, 0], r[2, 2] = c, s, -s, c
    elif axis == "x":
        r[1, 1], r[1, 2], r[2, 1], r[2, 2] = c, -s, s, c
    else:
        raise ValueError(f"axis: must be 'x', 'y' or 'z', got {axis!r}")
    return r
