"""Teleop mapping math: controller poses from the headset to TCP targets in each arm's base frame.

Frames (DESIGN.md §4): WebXR's reference space (``local-floor``) is y up, -z ahead of the
operator, x to the right. The *operator frame* is the same space in REP 103 axes (x ahead, y left,
z up): ``XR_TO_OPERATOR``. The operator frame is aligned to the rig's ``world`` frame (the table) by
a yaw about z (``Alignment.yaw``: where the operator faces in the world). Each arm's target then
goes into that arm's base frame (``<arm>_base``, the 45° mounts) with the base pose in the world.

The clutch (per arm): while the grip is held the arm is *engaged*. On engage the node captures the
controller pose ``C0`` and the TCP target ``T0`` (both in the world), so the arm never jumps; while
engaged the target is

    p = p_T0 + scale * (p_C - p_C0)            (position, scaled)
    R = (R_C R_C0^T) R_T0                       (the controller's rotation since engage, applied
                                                 in the world about the TCP: the TCP turns in place)

and on release the arm holds the last target. Rotation is never scaled: a scaled rotation would
no longer match the hand's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# rows: operator x = -xr z (ahead), operator y = -xr x (left), operator z = xr y (up); det +1
XR_TO_OPERATOR = np.array([[0.0, 0.0, -1.0],
                           [-1.0, 0.0, 0.0],
                           [0.0, 1.0, 0.0]])


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """3x3 rotation of a unit xyzw quaternion."""
    x, y, z, w = (float(v) for v in q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def rot_z(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def transform(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = rotation
    m[:3, 3] = translation
    return m


@dataclass(frozen=True)
class Alignment:
    """The operator frame in the world: ``yaw`` (rad) about z, and ``origin`` (m, world) where the
    operator frame's origin sits. Only deltas of the controller reach the arms, so ``origin``
    changes nothing of the motion; it places the controllers for display and logs."""

    yaw: float = 0.0
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def rotation(self) -> np.ndarray:
        """world <- XR reference space."""
        return rot_z(self.yaw) @ XR_TO_OPERATOR

    def controller_in_world(self, pose_xr: np.ndarray) -> np.ndarray:
        """4x4 world pose of a controller given as [x, y, z, qx, qy, qz, qw] in the XR space.

        The controller's own axes are carried along (R_w = A R_xr A^T), so a rotation of the hand
        about the operator's up axis is a rotation about the world's z."""
        a = self.rotation
        p = np.asarray(pose_xr, dtype=np.float64)
        return transform(a @ quat_to_matrix(p[3:7]) @ a.T, a @ p[:3] + np.asarray(self.origin))


class Clutch:
    """One arm's clutch: engaged while the grip is held; captures the offset on engage."""

    def __init__(self, scale: float = 1.0) -> None:
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale: must be a positive number, got {scale}")
        self.scale = scale
        self.c0: np.ndarray | None = None  # controller (world) at engage
        self.t0: np.ndarray | None = None  # TCP target (world) at engage

    @property
    def engaged(self) -> bool:
        return self.c0 is not None

    def engage(self, controller_w: np.ndarray, tcp_w: np.ndarray) -> None:
        self.c0, self.t0 = np.array(controller_w, dtype=np.float64), np.array(tcp_w, dtype=np.float64)

    def release(self) -> None:
        self.c0 = self.t0 = None

    def target(self, controller_w: np.ndarray) -> np.ndarray:
        """4x4 world TCP target for the controller's world pose (engaged only)."""
        if self.c0 is None or self.t0 is None:
            raise RuntimeError("the clutch is not engaged")
        c = np.asarray(controller_w)
        out = np.eye(4)
        out[:3, :3] = c[:3, :3] @ self.c0[:3, :3].T @ self.t0[:3, :3]
        out[:3, 3] = self.t0[:3, 3] + self.scale * (c[:3, 3] - self.c0[:3, 3])
        return out


def world_to_base(target_w: np.ndarray, base_w: np.ndarray) -> np.ndarray:
    """The world pose ``target_w`` in the frame of an arm base whose world pose is ``base_w``."""
    b = np.asarray(base_w)
    inv = transform(b[:3, :3].T, -b[:3, :3].T @ b[:3, 3])
    return inv @ np.asarray(target_w)
