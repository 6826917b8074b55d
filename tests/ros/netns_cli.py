"""Helpers for driver scripts in tests/ros/scripts/ that run the real ROS 2 tools.

A driver runs through ``tests.ros.support.run_isolated`` in its own loopback-only network
namespace; every process it starts here shares that namespace (and its private ROS_DOMAIN_ID),
so it can start ``ros2 launch``/``ros2 run`` in the background and query the graph with
``ros2 node/topic/param/service``. Import it only inside such a namespace (it asserts so): these
tools start DDS participants. Example::

    from tests.ros.netns_cli import report, ros2, start, stop, wait_until

    node = start(["ros2", "run", "a2w", "sim_node", "--ros-args", "-p", "use_sim_time:=false"])
    wait_until(lambda: "/sim" in ros2("node", "list").stdout.split(), timeout=60, what="/sim in the graph")
    params = ros2("param", "list", "/sim").stdout.split()
    report({"params": params, "rc": stop(node)})

``ros2`` queries go through the ros2 daemon (started on first use): it keeps discovering the
graph between queries, where a ``--no-daemon`` query builds a participant, listens ~0.5 s and may
miss what a loaded machine has not announced by then. The daemon lives in this namespace and
dies with it (tests.ros.support kills whatever is left). Graph answers are still eventually
consistent: poll with ``wait_until`` rather than trusting one listing.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger(__name__)

if os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE") != "LOCALHOST" or "ROS_DOMAIN_ID" not in os.environ:
    raise RuntimeError("tests.ros.netns_cli runs only inside tests.ros.support's isolated namespace")

# Verbs that take --no-daemon (those that add ros2cli.node.strategy's arguments, Jazzy 0.32.2).
_NO_DAEMON = {("node", "list"), ("node", "info"),
              *(("param", v) for v in ("delete", "describe", "dump", "get", "list", "load", "set")),
              ("service", "info"), ("service", "list"),
              *(("topic", v) for v in ("echo", "find", "info", "list", "type")),
              *(("component", v) for v in ("list", "load", "unload", "standalone"))}


class Started:
    """A background process with its output collected (a thread drains the pipe so it never blocks)."""

    def __init__(self, argv: Sequence[str], env: dict[str, str] | None) -> None:
        self.argv = list(argv)
        # Own process group: stop() signals the whole tree a launch starts.
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env={**os.environ, **(env or {})}, start_new_session=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            sys.stdout.write(f"[{self.argv[0]}:{self.proc.pid}] {line}")

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def saw(self, text: str) -> bool:
        return any(text in line for line in self.lines)


def start(argv: Sequence[str], env: dict[str, str] | None = None) -> Started:
    """Start ``argv`` in the background (e.g. ``["ros2", "launch", "a2w", "sim.launch.xml"]``)."""
    return Started(argv, env)


def stop(started: Started, sig: int = signal.SIGINT, timeout: float = 20.0) -> int:
    """Send ``sig`` to the process group and wait; SIGKILL after ``timeout``. Returns the exit code
    (negative: the signal that ended it), as ``ros2 launch`` and a node see Ctrl-C."""
    if started.proc.poll() is None:
        os.killpg(started.proc.pid, sig)
        try:
            started.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("%s ignored signal %d for %.0f s; killing it", started.argv, sig, timeout)
            os.killpg(started.proc.pid, signal.SIGKILL)
            started.proc.wait()
    started._reader.join(5)
    return started.proc.returncode


def ros2(*args: str, timeout: float = 30.0, check: bool = False,
         daemon: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``ros2 <args>`` to completion; ``daemon=False`` adds ``--no-daemon`` where the verb takes it."""
    argv = ["ros2", *args]
    if not daemon and tuple(args[:2]) in _NO_DAEMON and "--no-daemon" not in args:
        argv.insert(3, "--no-daemon")
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=check)


def wait_until(predicate: Callable[[], Any], timeout: float, what: str = "condition", period: float = 0.5) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned); TimeoutError names ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout} s")
        time.sleep(period)


def report(result: dict[str, Any]) -> None:
    """Print the driver's verdict as the ``RESULT <json>`` line ``run_isolated`` reads."""
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()
