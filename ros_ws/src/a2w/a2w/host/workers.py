"""Worker threads for components, shared by the in-process and the rclpy host."""

from __future__ import annotations

import logging
import threading
from typing import Callable

# A component's worker thread died (EX_SOFTWARE in sysexits.h): the host stops the run with this
# exit code rather than keep running without the worker (a sim with no physics never ends).
WORKER_CRASH_EXIT_CODE = 70


def start_worker_thread(owner: str, name: str, target: Callable[[], None],
                        on_crash: Callable[[str], None], logger: logging.Logger) -> threading.Thread:
    """Start ``target`` in a daemon thread named ``owner:name``. An exception is logged with its
    traceback and handed to ``on_crash`` as one line naming the worker and the exception (the
    host counts it and stops the run); it never propagates."""

    def run() -> None:
        try:
            target()
        except Exception as exc:  # noqa: BLE001 - isolation is the point
            logger.exception("worker %s of %s crashed", name, owner)
            on_crash(f"worker {name} crashed: {type(exc).__name__}: {exc}")

    th = threading.Thread(target=run, name=f"{owner}:{name}", daemon=True)
    th.start()
    return th
