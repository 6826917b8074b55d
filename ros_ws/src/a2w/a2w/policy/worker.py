"""Inference off the executor: one job at a time on a worker thread, the result handed back.

The executor must keep its 30 Hz while a chunk is computed (seconds on a CPU), so the node submits a
job here and gets an :class:`InferenceDone` back through ``deliver`` (the node posts it onto its own
executor). Any exception of the model is caught and delivered as an error, never raised into the
host. The worker cannot abandon a running call: after a timeout the node stops waiting for it (and
holds), and the job's late result is delivered and discarded by sequence number.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InferenceJob:
    seq: int
    payload: Any  # what ``predict`` takes (the node's observation, instruction and prefix)


@dataclass(frozen=True)
class InferenceDone:
    seq: int
    output: Any  # what ``predict`` returned; None on error
    error: str  # '' on success: "<ExceptionType>: message" otherwise
    wall_s: float  # time spent in ``predict``


class InferenceWorker:
    """Runs ``predict(job.payload)`` for one job at a time; ``run`` is the thread's target."""

    def __init__(self, predict: Callable[[Any], Any], deliver: Callable[[InferenceDone], None],
                 stop: threading.Event, poll: float = 0.05) -> None:
        self._predict = predict
        self._deliver = deliver
        self._stop = stop
        self._poll = poll
        self._jobs: queue.Queue[InferenceJob] = queue.Queue(maxsize=1)
        self._busy = threading.Event()
        self.completed = 0
        self.failed = 0

    @property
    def busy(self) -> bool:
        """True from ``submit`` until the job's result has been handed to ``deliver``."""
        return self._busy.is_set()

    def submit(self, job: InferenceJob) -> None:
        if self._busy.is_set():
            raise RuntimeError(f"inference worker is busy; job {job.seq} not accepted")
        self._busy.set()
        self._jobs.put_nowait(job)

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                job = self._jobs.get(timeout=self._poll)
            except queue.Empty:
                continue
            t0 = time.perf_counter()
            try:
                out, err = self._predict(job.payload), ""
                self.completed += 1
            except Exception as exc:  # noqa: BLE001 - a model error is a result, not a crash
                out, err = None, f"{type(exc).__name__}: {exc}"
                self.failed += 1
                log.debug("inference job %d failed", job.seq, exc_info=True)
            done = InferenceDone(job.seq, out, err, time.perf_counter() - t0)
            self._busy.clear()
            self._deliver(done)
