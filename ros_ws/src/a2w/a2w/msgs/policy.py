"""Messages of the policy: the action chunk (a2w_interfaces/msg/ActionChunk)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from a2w.msgs.arms import ArmTarget, ControlMode, RigTarget
from a2w.msgs.checks import QUAT_UNIT_TOL, finite_scalar, frozen_array
from a2w.msgs.common import Pose

ACTION_DIM = 14  # per arm [dx, dy, dz, droll, dpitch, dyaw, gripper_open]


@dataclass(frozen=True)
class ActionChunk:
    """A chunk of A2World 14-D deltas and the absolute targets they compose to.

    ``deltas``: (N, 14) float32, the model's output (docs/architecture.md §5 action convention).
    ``targets``: (N, 2, 8) float64, per step and arm ``[x, y, z, qx, qy, qz, qw, gripper_open]``,
    composed onto the measured TCP poses at ``obs_stamp`` (see ``a2w.actions.compose_chunk``).
    ``times``: (N,) execution time of each step on the clock, strictly increasing.
    """

    deltas: np.ndarray
    targets: np.ndarray
    times: np.ndarray
    seq: int
    obs_stamp: float
    source: str = "policy"

    def __post_init__(self) -> None:
        d = frozen_array("deltas", self.deltas, shape=(None, ACTION_DIM), dtype=np.float32)
        n = d.shape[0]
        if n == 0:
            raise ValueError("deltas: a chunk needs at least one step")
        t = frozen_array("targets", self.targets, shape=(n, 2, 8), dtype=np.float64)
        qn = np.linalg.norm(t[:, :, 3:7], axis=-1)
        if np.any(np.abs(qn - 1.0) > QUAT_UNIT_TOL):
            raise ValueError("targets: quaternions must have unit norm")
        if np.any((t[:, :, 7] < 0.0) | (t[:, :, 7] > 1.0)):
            raise ValueError("targets: gripper_open must be in [0, 1]")
        times = frozen_array("times", self.times, shape=(n,), dtype=np.float64)
        if n > 1 and np.any(np.diff(times) <= 0):
            raise ValueError("times: must be strictly increasing")
        if not isinstance(self.seq, (int, np.integer)) or self.seq < 0:
            raise ValueError(f"seq: must be a non-negative integer, got {self.seq!r}")
        object.__setattr__(self, "deltas", d)
        object.__setattr__(self, "targets", t)
        object.__setattr__(self, "times", times)
        object.__setattr__(self, "obs_stamp", finite_scalar("obs_stamp", self.obs_stamp))

    def __len__(self) -> int:
        return int(self.deltas.shape[0])

    def target_at(self, i: int) -> RigTarget:
        """Step ``i`` as a RigTarget due at ``times[i]``."""
        arms = [
            ArmTarget(Pose(self.targets[i, a, :3], self.targets[i, a, 3:7]), float(self.targets[i, a, 7]))
            for a in range(2)
        ]
        return RigTarget(arms[0], arms[1], float(self.times[i]), ControlMode.POLICY)
