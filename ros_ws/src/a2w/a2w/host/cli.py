"""`a2w topics` and `a2w nodes`: introspect a running in-process host (from `a2w launch`)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from a2w.host.snapshots import live_snapshots


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("topics", help="list topics of a running `a2w launch`: types, rates, drops",
                       description="List the topics of a running in-process host with their "
                       "publishers, subscribers, rate and dropped messages.")
    p.add_argument("--pid", type=int, help="which host (default: the most recent)")
    p.set_defaults(func=_topics)
    p = sub.add_parser("nodes", help="list nodes of a running `a2w launch`: timers, errors",
                       description="List the nodes of a running in-process host with their timer "
                       "period errors, overruns and callback errors.")
    p.add_argument("--pid", type=int, help="which host (default: the most recent)")
    p.set_defaults(func=_nodes)


def _pick(pid: int | None) -> dict[str, Any] | None:
    snaps = live_snapshots()
    if pid is not None:
        snaps = [s for s in snaps if s.get("pid") == pid]
    if not snaps:
        sys.stderr.write("no running a2w host found (start one with `a2w launch FILE`)\n")
        return None
    return snaps[0]


def _topics(args: argparse.Namespace) -> int:
    snap = _pick(args.pid)
    if snap is None:
        return 1
    sys.stdout.write(format_topics(snap))
    return 0


def _nodes(args: argparse.Namespace) -> int:
    snap = _pick(args.pid)
    if snap is None:
        return 1
    sys.stdout.write(format_nodes(snap))
    return 0


def format_topics(snap: dict[str, Any]) -> str:
    """Table of a host snapshot's topics (``Host.introspect()``)."""
    rows = [("TOPIC", "TYPE", "RATE", "PUB", "SUB", "DROPPED")]
    for t in snap["topics"]:
        rows.append((t["name"], t["msg_type"].rsplit(".", 1)[-1], f"{t['rate_hz']:.1f}",
                     str(len(t["publishers"])), str(len(t["subscribers"])), str(t["dropped"])))
    return _table(rows)


def format_nodes(snap: dict[str, Any]) -> str:
    """Table of a host snapshot's nodes: timer period error p99 and overruns, callback errors."""
    rows = [("NODE", "COMPONENT", "TIMERS (period: p99 err ms, overruns)", "ERRORS")]
    for n in snap["nodes"]:
        timers = ", ".join(f"{t['period']:.3g}s: {t['error_p99'] * 1e3:.2f}, {t['overruns']}"
                           for t in n["timers"]) or "-"
        rows.append((n["name"], n["component"], timers, str(n["callback_errors"] + n["worker_errors"])))
    return _table(rows)


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() + "\n" for r in rows)
