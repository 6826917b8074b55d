"""Messages every concern uses: the pose (geometry_msgs/Pose)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from a2w.msgs.checks import frozen_array, unit_quaternion


@dataclass(frozen=True)
class Pose:
    """Position (m) and unit quaternion (x, y, z, w)."""

    position: np.ndarray
    quaternion: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "position", frozen_array("position", self.position, shape=(3,), dtype=np.float64))
        object.__setattr__(self, "quaternion", unit_quaternion("quaternion", self.quaternion))

    @staticmethod
    def identity() -> "Pose":
        return Pose(np.zeros(3), np.array([0.0, 0.0, 0.0, 1.0]))

    def as_array(self) -> np.ndarray:
        """[x, y, z, qx, qy, qz, qw]."""
        return np.concatenate([self.position, self.quaternion])
