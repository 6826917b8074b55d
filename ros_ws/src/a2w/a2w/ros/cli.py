"""``a2w ros ...``: ROS-side tools that need no ROS installation."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _hashes(args: argparse.Namespace) -> int:
    from a2w.ros.interfaces import type_hashes

    text = json.dumps(type_hashes(), indent=2, sort_keys=True) + "\n"
    if args.write:
        Path(args.write).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def _msgdef(args: argparse.Namespace) -> int:
    from a2w.ros.interfaces import jazzy_typestore

    text, _ = jazzy_typestore().generate_msgdef(args.type, ros_version=2)
    sys.stdout.write(text + "\n")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    ros = subparsers.add_parser("ros", help="ROS 2 interface tools (no ROS needed)")
    sub = ros.add_subparsers(dest="ros_command", metavar="ROS_COMMAND")
    h = sub.add_parser("hashes", help="RIHS01 type hashes of a2w_interfaces (rosbags, Jazzy)")
    h.add_argument("--write", metavar="PATH", help="write the JSON here instead of stdout")
    h.set_defaults(func=_hashes)
    m = sub.add_parser("msgdef", help="full message definition text of a type (as MCAP/Foxglove want it)")
    m.add_argument("type", help="e.g. a2w_interfaces/msg/ActionChunk")
    m.set_defaults(func=_msgdef)
    ros.set_defaults(func=lambda _a: (ros.print_help(), 2)[1])
