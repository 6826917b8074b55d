"""Console-script targets: ``<exec> = a2w.ros.entry:<exec>`` for every name in ``a2w.nodes.NODES``.

Attributes are made on demand (PEP 562), so a node added to the registry needs no code here.
"""

from __future__ import annotations

from typing import Callable

from a2w import nodes


def __getattr__(name: str) -> Callable[[], int]:
    if name not in nodes.NODES:
        raise AttributeError(f"module {__name__!r} has no node executable {name!r}")

    def main() -> int:
        from a2w.ros.main import run_exec

        return run_exec(name)

    main.__name__ = name
    return main
