"""Bookkeeping the in-process host and the rclpy host share, so that a component behaves the
same under both: how a run stops (first request wins, signals, exit codes), a node's worker
threads and their crashes, shutdown requests, and the rule that turns a node's error counts
into its /diagnostics level. The rclpy host imports this module; it imports nothing of rclpy.
"""

from __future__ import annotations

import abc
import logging
import signal
import threading
from typing import Any, Callable, Mapping

from a2w.host.component import NodeHandle
from a2w.host.workers import WORKER_CRASH_EXIT_CODE, start_worker_thread
from a2w.msgs.diagnostics import DiagnosticLevel, DiagnosticStatus

log = logging.getLogger(__name__)


class RunControl:
    """How a host's run ends: ``stop_event`` is set, with an exit code and a reason."""

    def __init__(self) -> None:
        self.stop_event = threading.Event()
        self.exit_code = 0
        self.stop_reason = ""

    def request_stop(self, exit_code: int, reason: str) -> None:
        """First caller wins: its exit code and reason are kept."""
        if not self.stop_event.is_set():
            self.exit_code, self.stop_reason = exit_code, reason
        self.stop()

    def stop(self) -> None:
        self.stop_event.set()

    @property
    def stopping(self) -> bool:
        return self.stop_event.is_set()

    def install_signal_handlers(self) -> None:
        """SIGINT/SIGTERM stop the host with exit code 128 + signal number (130, 143: the shell's
        convention) and reason "interrupted by SIG...", unless a stop was already requested:
        exit code 0 means the task succeeded, which an interrupted run has not. Only the main
        thread can install handlers; elsewhere this does nothing."""
        if threading.current_thread() is not threading.main_thread():
            return

        def on_signal(signum: int, _frame: Any) -> None:
            name = signal.Signals(signum).name
            log.warning("received %s, shutting down", name)
            self.request_stop(128 + signum, f"interrupted by {name}")

        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, on_signal)


def describe_clock_jump(start: float, end: float, allowed: float) -> str:
    """One line for a refused or reported jump of the sim clock from ``start`` to ``end`` (s)."""
    return (f"/clock jumped from {start:.6f} s to {end:.6f} s "
            f"({end - start:+.6f} s; allowed 0 to +{allowed:g} s)")


class HostedNode(NodeHandle):
    """The part of ``NodeHandle`` both hosts implement alike. A host's node supplies its
    callback-error counts and ``schedule`` (running a callable on the component's executor)."""

    def __init__(self, name: str, namespace: str, run: RunControl) -> None:
        self.name = name
        self.namespace = namespace
        self.logger = logging.getLogger(f"a2w.node{self.fqn.replace('/', '.')}")
        self.shutdown_event = run.stop_event
        self.workers: list[threading.Thread] = []
        self.worker_errors = 0
        self.last_worker_error = ""
        self._run = run

    callback_errors: int  # exceptions raised by the component's callbacks so far
    last_callback_error: str  # the latest of them, as "context: Type: message"

    @abc.abstractmethod
    def schedule(self, fn: Callable[[], None], context: str) -> None:
        """Run ``fn`` on the component's executor; an exception is counted under ``context``."""

    def post(self, callback: Callable[[], None]) -> None:
        self.schedule(callback, "posted")

    def start_worker(self, name: str, target: Callable[[], None]) -> threading.Thread:
        th = start_worker_thread(self.fqn, name, target, self._worker_crashed, self.logger)
        self.workers.append(th)
        return th

    def _worker_crashed(self, reason: str) -> None:
        self.worker_errors += 1
        self.last_worker_error = reason
        self._run.request_stop(WORKER_CRASH_EXIT_CODE, f"{self.fqn}: {reason}")

    def request_shutdown(self, reason: str, exit_code: int = 0) -> None:
        self.logger.info("requested shutdown: %s", reason)
        self._run.request_stop(exit_code, f"{self.fqn}: {reason}")

    def join_workers(self, timeout: float) -> None:
        for th in self.workers:
            th.join(timeout)
            if th.is_alive():
                log.error("worker %s did not stop within %.1fs", th.name, timeout)

    def error_values(self) -> dict[str, str]:
        """The error counts and latest errors, for /diagnostics values (only those not zero)."""
        out = {}
        if self.callback_errors:
            out["callback_errors"] = str(self.callback_errors)
            out["last_error"] = self.last_callback_error
        if self.worker_errors:
            out["worker_errors"] = str(self.worker_errors)
            out["last_worker_error"] = self.last_worker_error
        return out

    def status(self, values: Mapping[str, str], clock_jumps: int = 0,
               incompatible_qos: int = 0, health: tuple[DiagnosticLevel, str] | None = None) -> DiagnosticStatus:
        """This node's /diagnostics status: ERROR for a crashed worker, callback errors or a sim
        clock jump (in that order of the message), WARN for a QoS mismatch with a peer, else OK; the
        component's own ``health`` (``Component.health``) when it is worse."""
        if self.worker_errors:
            level, message = DiagnosticLevel.ERROR, "worker crashed"
        elif self.callback_errors:
            level, message = DiagnosticLevel.ERROR, "callback errors"
        elif clock_jumps:
            level, message = DiagnosticLevel.ERROR, "sim clock jumped"
        elif incompatible_qos:
            level, message = DiagnosticLevel.WARN, "incompatible QoS"
        else:
            level, message = DiagnosticLevel.OK, "ok"
        if health is not None and health[0] > level:
            level, message = DiagnosticLevel(health[0]), health[1]
        return DiagnosticStatus(self.fqn, level, message, values, self.clock.now())
