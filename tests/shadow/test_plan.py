"""The policy's plan in A2World-sim's convention (the shadow's ahead prediction): the pose the chunk was
composed onto is recovered from its first step, and its targets composed three at a time give back the
chunk's own deltas; a chunk shorter than 2 s holds its last target."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from a2w.actions import compose_chunk, downsample_deltas
from a2w.msgs.common import Pose
from a2w.shadow.motion import CHUNK, COMPOSE, RATE_HZ, actions_10hz, chunk_start, planned_poses

OBS = 12.345


def _chunk(n: int, seed: int):  # noqa: ANN202 - an ActionChunk and the poses it was composed onto
    rng = np.random.default_rng(seed)
    measured = tuple(Pose(rng.uniform(-0.5, 0.5, 3), Rotation.random(random_state=seed + a).as_quat())
                     for a in range(2))
    deltas = np.concatenate([rng.normal(0, 0.01, (n, 6)), rng.uniform(0, 1, (n, 1)),
                             rng.normal(0, 0.01, (n, 6)), rng.uniform(0, 1, (n, 1))], axis=1)
    return compose_chunk(deltas, measured, OBS, 1 / RATE_HZ, 3), measured, deltas


GRID = OBS + np.arange(CHUNK * COMPOSE + 1) / RATE_HZ


@pytest.mark.parametrize("seed", range(5))
def test_a_2_s_chunk_composes_to_its_own_deltas(seed: int) -> None:
    chunk, measured, deltas = _chunk(CHUNK * COMPOSE, seed)
    start = chunk_start(chunk)
    for a in range(2):
        assert np.allclose(start[a, :3], measured[a].position, atol=1e-9)
        assert abs(abs(float(np.dot(start[a, 3:7], measured[a].quaternion))) - 1) < 1e-9  # q and -q alike
    poses = planned_poses(chunk, GRID)
    assert np.allclose(poses[1:], chunk.targets)  # each target on its own grid point
    assert np.allclose(actions_10hz(poses), downsample_deltas(deltas, COMPOSE), atol=1e-8)


@pytest.mark.parametrize("n", [1, 7, 20, 59])
def test_a_shorter_chunk_holds_its_last_target(n: int) -> None:
    chunk, _, deltas = _chunk(n, n)
    poses = planned_poses(chunk, GRID)
    assert np.allclose(poses[n:], chunk.targets[-1])
    actions = actions_10hz(poses)
    whole = n // COMPOSE
    assert np.allclose(actions[:whole], downsample_deltas(deltas[:whole * COMPOSE], COMPOSE), atol=1e-8)
    moving = -(-n // COMPOSE)  # 10 Hz actions with a planned step in them
    assert np.allclose(actions[moving:, np.r_[0:6, 7:13]], 0.0, atol=1e-9)  # then no motion, only the gripper
