"""Helpers for the sim-rig tests (tests/sim/test_rig.py)."""

from __future__ import annotations

import numpy as np

from a2w.arms.sim.backend import SimRigBackend
from a2w.msgs.arms import ArmTarget
from a2w.msgs.common import Pose


def stream(rig: SimRigBackend, targets: tuple[ArmTarget, ArmTarget], seconds: float) -> None:
    """Stream ``targets`` at the backend's command rate for ``seconds`` of sim time."""
    dt = 1.0 / rig.command_rate
    for _ in range(int(round(seconds / dt))):
        rig.command(targets)
        rig.world.step_for(dt)


def target(pos: np.ndarray, quat: np.ndarray, grip: float = 1.0) -> ArmTarget:
    return ArmTarget(Pose(np.asarray(pos, float), np.asarray(quat, float)), grip)
