"""Durable file operations: data reaches the disk before anything points at it.

Every committed file of a dataset is written through these helpers. A file is written and
fsync'd under a temporary name in its final directory, renamed over its final name, and the
directory is fsync'd so the rename itself survives a power loss. Readers therefore see either the
old file or the new one, never a torn one.
"""

from __future__ import annotations

import os
from pathlib import Path

TMP_SUFFIX = ".a2w-tmp"  # never matches LeRobot's "*.parquet" / "*.mp4" globs


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(path: Path) -> None:
    """``mkdir -p`` that fsyncs each parent whose entry it created."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        d.mkdir(exist_ok=True)
        fsync_dir(d.parent)


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically and durably."""
    make_dirs(path.parent)
    tmp = path.with_name(f".{path.name}{TMP_SUFFIX}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def durable_move(src: Path, dst: Path) -> None:
    """Move a finished file into place (same filesystem): fsync it, rename, fsync the directory."""
    fsync_file(src)
    make_dirs(dst.parent)
    os.replace(src, dst)
    fsync_dir(dst.parent)
