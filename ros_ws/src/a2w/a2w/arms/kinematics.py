"""Where the two Rizon 4S bases sit, poses between their frames and the world, and their forward
kinematics, just enough for collision capsules between the two arms.

Chain from rig_facts.md §1.1 (flexiv_description / RDK URDF / menagerie agree): each joint frame
sits at ``xyz``/``rpy`` in its parent, then rotates about its local ``axis``.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from a2w.geometry import matrix_to_pose, xyz_rpy_to_matrix
from a2w.geometry_fast import axis_transform, qconj, qmul
from a2w.msgs.common import Pose

# TRI's example layout of the bases in the table frame (rig_facts.md §4.1, §4.5) as x, y, z, roll,
# pitch, yaw; left is the +y arm. The one copy: the arm node's default base poses and the sim
# scene's bases. Whether the rig's 45° is this yaw is open (rig_facts.md §7).
TRI_BASE_POSES: dict[str, tuple[float, float, float, float, float, float]] = {
    "left": (-0.495, 0.495, -0.15, 0.0, 0.0, -math.pi / 4),
    "right": (-0.495, -0.495, -0.15, 0.0, 0.0, math.pi / 4),
}

# (xyz, rpy, axis) per joint A1..A7, then the fixed flange (rig_facts.md §1.1, 4S flange 0.124 m).
# The one copy of the chain: the MuJoCo scene (a2w.sim.scene) is built from it too.
JOINT_ORIGINS: tuple[tuple[tuple[float, float, float], tuple[float, float, float], str], ...] = (
    ((0.0, 0.0, 0.155), (0.0, 0.0, -math.pi), "z"),
    ((0.0, 0.030, 0.210), (0.0, 0.0, 0.0), "y"),
    ((0.0, 0.035, 0.205), (0.0, 0.0, 0.0), "z"),
    ((-0.020, -0.030, 0.190), (0.0, 0.0, -math.pi), "y"),
    ((-0.020, 0.025, 0.195), (0.0, 0.0, -math.pi), "z"),
    ((0.0, 0.030, 0.190), (0.0, 0.0, 0.0), "y"),
    ((-0.015, 0.073, 0.110), (0.0, -math.pi / 2, 0.0), "z"),  # current A7 origin (§0.1)
)
FLANGE_ORIGIN: tuple[tuple[float, float, float], tuple[float, float, float]] = (
    (0.0, 0.0, 0.124), (0.0, 0.0, -math.pi))  # Rizon 4S flange (§0.2)


_JOINT_TF = tuple(xyz_rpy_to_matrix(xyz, rpy) for xyz, rpy, _ in JOINT_ORIGINS)
_FLANGE_TF = xyz_rpy_to_matrix(*FLANGE_ORIGIN)


def joint_frames(q: np.ndarray) -> list[np.ndarray]:
    """4x4 poses (arm base frame) of link1..link7 and the flange for joint angles ``q`` (7,)."""
    q = np.asarray(q, dtype=float)
    if q.shape != (7,):
        raise ValueError(f"q: Rizon 4S has 7 joints, got shape {q.shape}")
    m = np.eye(4)
    out = []
    for (_, _, axis), base_tf, angle in zip(JOINT_ORIGINS, _JOINT_TF, q):
        m = m @ base_tf @ axis_transform(axis, float(angle))
        out.append(m)
    out.append(m @ _FLANGE_TF)
    return out


# Key points for capsules: base, shoulder (A2), elbow (A4), wrist (A6), flange.
KEY_FRAMES = (1, 3, 5, 7)  # indices into joint_frames(): link2, link4, link6, flange


def key_points(q: np.ndarray) -> list[np.ndarray]:
    """Base origin, then shoulder, elbow, wrist and flange positions (arm base frame)."""
    frames = joint_frames(q)
    return [np.zeros(3)] + [frames[i][:3, 3].copy() for i in KEY_FRAMES]


class RigFrames:
    """The two arm bases in the world (table) frame. Targets and states are in each arm's base
    frame (a2w.msgs.arms); the workspace and inter-arm checks run in the world frame."""

    def __init__(self, base_T: Sequence[np.ndarray]) -> None:
        self.base_T = tuple(np.asarray(T, dtype=float) for T in base_T)
        self.base_q = tuple(matrix_to_pose(T).quaternion for T in self.base_T)

    def to_world(self, arm: int, pos: np.ndarray, quat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        T = self.base_T[arm]
        return T[:3, :3] @ pos + T[:3, 3], qmul(self.base_q[arm], np.asarray(quat, dtype=float))

    def to_base(self, arm: int, pos: np.ndarray, quat: np.ndarray) -> Pose:
        T = self.base_T[arm]
        p = T[:3, :3].T @ (pos - T[:3, 3])
        q = qmul(qconj(self.base_q[arm]), quat)
        return Pose(p, q / np.linalg.norm(q))

    def key_points(self, arm: int, joints: np.ndarray) -> list[np.ndarray] | None:
        """``key_points`` of arm ``arm`` in the world frame; None unless it reports 7 joints."""
        if len(joints) != 7:
            return None
        T = self.base_T[arm]
        return [T[:3, :3] @ k + T[:3, 3] for k in key_points(joints)]
