"""`a2w launch FILE.launch.xml [name:=value ...]`: run a launch file in-process."""

from __future__ import annotations

import argparse
import logging
import sys

from a2w.host.cli import format_nodes, format_topics
from a2w.host.host import Host
from a2w.host.snapshots import snapshot_dir
from a2w.launch.runner import LaunchError, LaunchRunner

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "launch", help="run a ROS 2 XML launch file in-process",
        description="Run the nodes of a ROS 2 XML launch file in this process (the same file "
        "works with `ros2 launch` on a rig). Arguments are given as name:=value. Stops on "
        "Ctrl-C, SIGTERM, when --duration passes, or when a component asks the host to stop.",
        epilog="Exit status: the code of the component that stopped the run (launch/sim.launch.xml: "
        "0 task succeeded, 1 task failed), 0 when --duration passed, 130/143 when interrupted by "
        "SIGINT/SIGTERM, 2 for an invalid launch file or parameter.")
    p.add_argument("file", help="launch file (.launch.xml)")
    p.add_argument("arguments", nargs="*", metavar="name:=value", help="launch arguments")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--check", action="store_true",
                   help="only evaluate the file and list the nodes it would run")
    p.add_argument("--quiet", action="store_true",
                   help="do not print the run summary (why it stopped, topics, timers) at exit")
    p.set_defaults(func=run)


def parse_arguments(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition(":=")
        if not sep or not name:
            raise ValueError(f"launch arguments are name:=value, got {item!r}")
        out[name] = value
    return out


def run(args: argparse.Namespace) -> int:
    try:
        result = LaunchRunner().load(args.file, parse_arguments(args.arguments))
    except (LaunchError, ValueError) as exc:
        sys.stderr.write(f"a2w launch: {exc}\n")
        return 2
    if args.check:
        for spec in result.nodes:
            sys.stdout.write(f"{spec.namespace.rstrip('/')}/{spec.name}  {spec.component.__module__}."
                             f"{spec.component.__qualname__}  params={spec.params}\n")
        return 0
    host = Host()
    # Before the nodes are built (MuJoCo, cameras: seconds): a signal then still stops the run
    # as interrupted instead of escaping as KeyboardInterrupt or killing the process.
    host.install_signal_handlers()
    try:
        for spec in result.nodes:
            if host.stopping:
                break
            host.add(spec)
    except (ValueError, TypeError) as exc:
        host.shutdown()
        sys.stderr.write(f"a2w launch: {exc}\n")
        return 2
    sys.stdout.write(f"a2w launch: running {len(result.nodes)} node(s) from {args.file} "
                     "(Ctrl-C stops; `a2w topics` / `a2w nodes` inspect it)\n")
    sys.stdout.flush()
    host.spin(args.duration, snapshot_dir=snapshot_dir())
    failed = [n.fqn for n in host.nodes if n.executor.errors or n.worker_errors]
    if failed:
        sys.stderr.write(f"a2w launch: callbacks raised in {failed} (see the log above)\n")
    if not args.quiet:
        snap = host.introspect()
        reason = host.stop_reason or "duration reached"
        sys.stdout.write(f"\na2w launch: stopped ({reason}), exit code {host.exit_code}\n\n")
        sys.stdout.write(format_topics(snap) + "\n" + format_nodes(snap))
    return host.exit_code
