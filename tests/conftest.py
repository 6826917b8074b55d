"""Session-wide test configuration: no test may leave a sim world, its registration or a
stepping thread behind.

A leaked ``SimRunner`` thread still inside MuJoCo when the interpreter finalizes crashed the
whole suite at exit (a segfault with no Python frame). Fixtures own their resources and close
them; this check names the test that does not.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Iterator

import pytest


def _sim_threads() -> set[threading.Thread]:
    """Threads that step or render a world: a ``SimRunner`` or the sim node's physics worker."""
    return {t for t in threading.enumerate() if t.name == "sim-runner" or t.name.endswith(":physics")}


def _world_state() -> tuple[set[int], set[str]]:
    world = sys.modules.get("a2w.sim.world")
    if world is None:  # no test has touched the sim yet
        return set(), set()
    return {id(w) for w in world.open_worlds()}, set(world.registered_worlds())


@pytest.fixture(autouse=True)
def _no_leaked_sim(request: pytest.FixtureRequest) -> Iterator[None]:
    threads_before = _sim_threads()
    worlds_before, names_before = _world_state()
    yield
    deadline = time.monotonic() + 5.0
    while (_sim_threads() - threads_before) and time.monotonic() < deadline:
        time.sleep(0.05)
    leaked_threads = sorted(t.name for t in _sim_threads() - threads_before)
    worlds_after, names_after = _world_state()
    problems = []
    if leaked_threads:
        problems.append(f"sim threads still running: {leaked_threads}")
    if worlds_after - worlds_before:
        problems.append(f"{len(worlds_after - worlds_before)} SimWorld(s) not closed")
    if names_after - names_before:
        problems.append(f"sim worlds still registered: {sorted(names_after - names_before)}")
    if problems:
        pytest.fail(f"{request.node.nodeid} leaked: " + "; ".join(problems), pytrace=False)
