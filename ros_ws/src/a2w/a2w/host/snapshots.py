"""Where a running in-process host publishes its introspection snapshot for `a2w topics`.

The host rewrites ``<dir>/<pid>.json`` twice a second (atomically) and removes it on exit, so
tools read live state without any socket.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def snapshot_dir() -> Path:
    base = os.environ.get("A2W_RUN_DIR") or os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / "a2w-hosts"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def live_snapshots(directory: Path | None = None) -> list[dict[str, Any]]:
    """Snapshots of hosts that are still running, newest first; stale files are removed."""
    directory = directory or snapshot_dir()
    out = []
    for f in directory.glob("*.json") if directory.exists() else []:
        try:
            pid = int(f.stem)
        except ValueError:
            continue
        if not _alive(pid):
            f.unlink(missing_ok=True)
            continue
        try:
            out.append(json.loads(f.read_text()))
        except (OSError, json.JSONDecodeError):
            continue  # being replaced right now; the next read will see it
    return sorted(out, key=lambda s: s.get("time", 0), reverse=True)
