"""One serial executor per component: callbacks of a component run one at a time, in order."""

from __future__ import annotations

import logging
import queue
import threading
from typing import Callable

log = logging.getLogger(__name__)

_STOP = object()


class SerialExecutor:
    """A thread draining a FIFO of callables. An exception is logged with its context and
    counted; the executor (and so the component) keeps running."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=f"exec:{name}", daemon=True)
        self.errors = 0
        self.last_error = ""
        self._started = False

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._thread.start()

    def post(self, fn: Callable[[], None], context: str) -> None:
        self._queue.put((fn, context))

    def stop(self, timeout: float = 5.0) -> None:
        if self._started:
            self._queue.put(_STOP)
            if threading.current_thread() is not self._thread:
                self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            fn, context = item
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - isolation is the point
                self.errors += 1
                self.last_error = f"{context}: {type(exc).__name__}: {exc}"
                log.exception("component %s: callback for %s raised", self.name, context)
