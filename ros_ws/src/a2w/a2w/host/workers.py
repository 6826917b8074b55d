"""Worker threads for components, shared by the in-process and the rclpy host."""

from __future__ import annotations

import logging
import threading
from typing import Callable


def start_worker_thread(owner: str, name: str, target: Callable[[], None],
                        on_crash: Callable[[], None], logger: logging.Logger) -> threading.Thread:
    """Start ``target`` in a daemon thread named ``owner:name``. An exception is logged and
    reported through ``on_crash`` (the host counts it); it never propagates."""

    def run() -> None:
        try:
            target()
        except Exception:  # noqa: BLE001 - isolation is the point
            on_crash()
            logger.exception("worker %s of %s crashed", name, owner)

    th = threading.Thread(target=run, name=f"{owner}:{name}", daemon=True)
    th.start()
    return th
