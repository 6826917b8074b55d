"""Which rig backend the arm node drives: a small table, name -> factory.

A factory takes the node's parameters and its handle and returns an unconnected ``RigBackend``.
``backend`` may also be ``package.module:callable`` for a backend outside this table (tests,
benchmarks, a new driver) with the same factory signature.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

from a2w.arms.backend import RigBackend
from a2w.host.component import NodeHandle

Factory = Callable[[Any, NodeHandle], RigBackend]

DRIVERS: dict[str, str] = {
    "flexiv": "a2w.arms.flexiv:backend_from_params",
    "sim": "a2w.arms.drivers:sim_backend_from_params",
}


def resolve(name: str) -> Factory:
    """The factory for ``name`` (a table entry or ``module:callable``); ValueError if unknown."""
    target = DRIVERS.get(name, name if ":" in name else None)
    if target is None:
        raise ValueError(f"backend: unknown arm backend {name!r}; one of {sorted(DRIVERS)} "
                         f"or 'package.module:factory'")
    module, _, attr = target.partition(":")
    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"backend: cannot load {target!r} ({exc})") from exc
    if not callable(fn):
        raise ValueError(f"backend: {target!r} is not callable")
    return fn


def sim_backend_from_params(params: Any, node: NodeHandle) -> RigBackend:
    """The MuJoCo rig (a2w.sim) behind the same interface; imported lazily (MuJoCo is heavy)."""
    from a2w.sim.rig import SimRigBackend, SimRigParams
    from a2w.sim.world import get_world

    try:
        world = get_world(params.sim_world)
    except LookupError as exc:
        raise ValueError(f"sim_world: {exc}") from exc
    return SimRigBackend(world, SimRigParams(command_rate=params.sim_command_rate))
