"""Reading the small input files a run is configured from (launch files, parameter YAML)."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def read_input_file(path: Path, limit: int) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them.

    ``ValueError`` naming the file says why it cannot be used: missing, unreadable, a directory
    or another non-regular file (reading a FIFO or a device could block or never end), or larger
    than ``limit``.
    """
    try:
        # O_NONBLOCK: opening a FIFO with no writer would otherwise block here, before fstat.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise ValueError(f"file not found: {path}") from None
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise ValueError(f"{path} is a directory, not a file")
        if not stat.S_ISREG(mode):
            raise ValueError(f"{path} is not a regular file")
        f = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with f:
        try:
            data = f.read(limit + 1)
        except OSError as exc:
            raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise ValueError(f"{path} is too large (over {limit} bytes)")
    return data
