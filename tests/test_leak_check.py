"""The session-wide check (tests/conftest.py) names a test that leaves a sim world, its
registration or its stepping thread behind: here the pattern that once crashed the suite at
exit, a runner started before a setup that fails on purpose."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

_LEAKY = '''
import pytest
from a2w.sim.scene import SceneConfig
from a2w.sim.world import SimRunner, SimWorld, register_world, unregister_world

leaked = {}

def test_setup_fails_after_starting_the_runner():
    world = SimWorld(SceneConfig(task="none", max_width=64, max_height=48))
    register_world("leaky", world)
    leaked["runner"] = SimRunner(world).start()
    leaked["world"] = world
    raise ValueError("bad parameter on purpose")

def test_owning_fixture_is_clean():
    with SimRunner(SimWorld(SceneConfig(task="none", max_width=64, max_height=48))) as runner:
        runner.world.step(1)
    runner.world.close()

def test_cleanup():
    leaked["runner"].stop()
    unregister_world("leaky")
    leaked["world"].close()
'''


def test_leaked_runner_world_and_name_fail_the_test(pytester: pytest.Pytester) -> None:
    pytester.makeconftest((Path(__file__).parent / "conftest.py").read_text())
    pytester.makepyfile(test_leaky=_LEAKY)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-o", "addopts=", timeout=240)
    result.assert_outcomes(passed=2, failed=1, errors=1)
    out = result.stdout.str()
    assert "test_setup_fails_after_starting_the_runner leaked" in out
    assert "sim threads still running: ['sim-runner']" in out
    assert "1 SimWorld(s) not closed" in out and "still registered: ['leaky']" in out
