"""Shared helpers for the sim-rig tests: small worlds, physics only unless a test renders."""

from __future__ import annotations

import numpy as np
import pytest

from a2w.arms.sim.backend import SimRigBackend
from a2w.arms.sim.params import SimRigParams
from a2w.msgs.arms import ArmTarget
from a2w.msgs.common import Pose
from a2w.sim.scene import SceneConfig
from a2w.sim.world import SimWorld


@pytest.fixture
def world() -> SimWorld:
    w = SimWorld(SceneConfig(task="none", max_width=160, max_height=120))
    yield w
    w.close()


@pytest.fixture
def rig(world: SimWorld) -> SimRigBackend:
    b = SimRigBackend(world, SimRigParams())
    b.connect()
    yield b
    b.close()


def stream(rig: SimRigBackend, targets: tuple[ArmTarget, ArmTarget], seconds: float) -> None:
    """Stream ``targets`` at the backend's command rate for ``seconds`` of sim time."""
    dt = 1.0 / rig.command_rate
    for _ in range(int(round(seconds / dt))):
        rig.command(targets)
        rig.world.step_for(dt)


def target(pos: np.ndarray, quat: np.ndarray, grip: float = 1.0) -> ArmTarget:
    return ArmTarget(Pose(np.asarray(pos, float), np.asarray(quat, float)), grip)
