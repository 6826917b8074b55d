"""Fixtures for tests/sim: small worlds, physics only unless a test renders."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from a2w.arms.sim.backend import SimRigBackend
from a2w.arms.sim.params import SimRigParams
from a2w.sim.scene import SceneConfig
from a2w.sim.world import SimWorld


@pytest.fixture
def world() -> Iterator[SimWorld]:
    w = SimWorld(SceneConfig(task="none", max_width=160, max_height=120))
    yield w
    w.close()


@pytest.fixture
def rig(world: SimWorld) -> Iterator[SimRigBackend]:
    b = SimRigBackend(world, SimRigParams())
    b.connect()
    yield b
    b.close()
