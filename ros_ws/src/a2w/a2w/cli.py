"""The `a2w` command line: one entry point, one subcommand per room.

Each room contributes its subcommands through a module with a
``register(subparsers: argparse._SubParsersAction) -> None`` function listed in
``COMMAND_MODULES``. A registered subcommand sets ``func`` (``args -> int``) on its parser.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

# Modules that add subcommands; order is the order shown in --help.
COMMAND_MODULES: tuple[str, ...] = (
    "a2w.launch.cli",
    "a2w.host.cli",
    "a2w.ros.cli",
    "a2w.sim.cli",
    "a2w.description.cli",
    "a2w.calib.cli",
    "a2w.dataset.cli",
    "a2w.evaluation.cli",
    "a2w.shadow.cli",
    "a2w.rig.cli",
    "a2world.embeddings_cli",
    "a2world.cli",
    "a2world.policy.cli",
    "a2w.train.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="a2w",
        description="A2World rig stack: run launch files in-process, inspect topics, "
        "work with models, the simulated rig and recorded data.",
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging (-v info, -vv debug)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
