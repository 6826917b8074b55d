"""Tasks and scripted experts: success over 20 seeds, determinism, the action convention."""

from __future__ import annotations

import numpy as np
import pytest

from a2w.actions import decode_dual
from a2w.msgs.common import Pose
from a2w.sim.episode import EpisodeResult, run_episode
from a2w.sim.expert import ACTION_RATE

SEEDS = range(20)


@pytest.fixture(scope="module")
def results() -> dict[str, list[EpisodeResult]]:
    # Physics only (no rendering): ~1 s per episode on the 2-core machine.
    return {task: [run_episode(task, s) for s in SEEDS] for task in ("pick_cube", "lift_box")}


@pytest.mark.parametrize("task", ["pick_cube", "lift_box"])
def test_expert_succeeds_on_at_least_90_percent_of_20_seeds(results: dict, task: str) -> None:
    runs = results[task]
    ok = sum(r.success for r in runs)
    failed = [(r.seed, r.error) for r in runs if not r.success]
    assert ok >= 18, f"{task}: {ok}/20 succeeded; failures {failed}"
    assert all(not r.error for r in runs if r.success)


@pytest.mark.parametrize("task", ["pick_cube", "lift_box"])
def test_initial_states_are_randomised_by_seed(results: dict, task: str) -> None:
    starts = np.array([r.info["position"] for r in results[task]])
    assert len({tuple(np.round(p, 6)) for p in starts}) == len(SEEDS)
    first_cmd = np.array([r.commanded[0, :, :3] for r in results[task]])
    assert np.ptp(first_cmd, axis=0).max() > 0.005  # arm start poses differ too (joint noise)


def test_runs_are_deterministic_per_seed(results: dict) -> None:
    for task in ("pick_cube", "lift_box"):
        again = run_episode(task, 0)
        first = results[task][0]
        np.testing.assert_array_equal(again.actions, first.actions)
        np.testing.assert_array_equal(again.commanded, first.commanded)
        assert again.success == first.success
        assert not np.array_equal(results[task][1].actions, first.actions)


def test_actions_are_a2world_deltas_at_30_hz(results: dict) -> None:
    r = results["lift_box"][0]
    assert r.actions.shape == (len(r.stamps), 14) and r.actions.dtype == np.float32
    np.testing.assert_allclose(np.diff(r.stamps), 1.0 / ACTION_RATE, atol=1e-9)
    start = tuple(Pose(r.commanded[0, a, :3], r.commanded[0, a, 3:7]) for a in range(2))
    decoded = decode_dual(start, r.actions.astype(np.float64))
    # float32 deltas over ~150 steps: positions agree to well under a millimetre.
    np.testing.assert_allclose(decoded[:, :, :3], r.commanded[1:, :, :3], atol=5e-4)
    np.testing.assert_allclose(decoded[:, :, 7], r.commanded[1:, :, 7])
    # Both grippers open at the start and closed at the end of a bimanual lift.
    assert r.actions[0, 6] == 1.0 and r.actions[0, 13] == 1.0
    assert r.actions[-1, 6] == 0.0 and r.actions[-1, 13] == 0.0


def test_pick_cube_uses_the_arm_on_the_cube_side(results: dict) -> None:
    for r in results["pick_cube"]:
        a = 0 if r.info["arm"] == "left" else 1
        assert (r.info["position"][1] > 0) == (a == 0)
        moved = np.abs(r.actions[:, a * 7:a * 7 + 3]).sum()
        idle = np.abs(r.actions[:, (1 - a) * 7:(1 - a) * 7 + 3]).sum()
        assert moved > 0.1 and idle < 1e-6


def test_unknown_task_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="task"):
        run_episode("stack_blocks", 0)
