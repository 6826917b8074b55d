"""Run components as ROS 2 nodes with the rclpy host.

``<exec> [--ros-args ...]`` (the console scripts ament installs), or for tools and tests
``python -m a2w.ros.main EXEC|module:Class [--name NAME] [--ros-args ...]``. ROS arguments
(``-r __node:=``, ``-r __ns:=``, ``--params-file``, ``-p``, remaps) are handled by rclpy, exactly
as ``ros2 run``/``ros2 launch`` pass them.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from a2w import nodes
from a2w.host.component import Component

log = logging.getLogger(__name__)


def load_component(target: str) -> type[Component]:
    """An exec name from ``a2w.nodes.NODES`` or ``module:Class``."""
    if ":" not in target:
        return nodes.load(target)
    module, _, cls = target.partition(":")
    obj = getattr(importlib.import_module(module), cls)
    if not (isinstance(obj, type) and issubclass(obj, Component)):
        raise TypeError(f"{target} is not a Component")
    return obj


def run(component: type[Component], name: str, argv: Sequence[str] | None = None,
        duration: float | None = None) -> int:
    """Init rclpy with ``argv`` (ROS arguments included), run one component until shut down."""
    import rclpy

    from a2w.ros.host import RosHost

    args = list(sys.argv if argv is None else argv)
    rclpy.init(args=args)
    host = RosHost()
    # Before the component is built (devices, MuJoCo: seconds), replacing rclpy's handlers: a
    # signal then still ends the run as interrupted (128 + signal number), as in-process.
    host.install_signal_handlers()
    try:
        try:
            host.add(component, name)
        except ValueError as exc:  # parameter errors: say which, exit non-zero, no traceback
            log.error("%s", exc)
            sys.stderr.write(f"{exc}\n")
            return 2
        host.spin(duration)
    finally:
        host.shutdown()
        rclpy.try_shutdown()
    log.info("%s stopped (%s), exit code %d", name,
             host.stop_reason or "duration passed or ROS shut down", host.exit_code)
    return host.exit_code


def run_exec(exec_name: str) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run(nodes.load(exec_name), exec_name)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ros_args: list[str] = []
    if "--ros-args" in argv:
        i = argv.index("--ros-args")
        argv, ros_args = argv[:i], argv[i:]
    p = argparse.ArgumentParser(prog="python -m a2w.ros.main", description=__doc__)
    p.add_argument("target", help="exec name from a2w.nodes or module:Class")
    p.add_argument("--name", help="node name (default: the exec name or the class name in snake case)")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    comp = load_component(a.target)
    name = a.name or (a.target if ":" not in a.target else _snake(comp.__name__))
    return run(comp, name, [sys.argv[0], *ros_args], a.duration)


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))


if __name__ == "__main__":
    sys.exit(main())
