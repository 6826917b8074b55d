"""Regenerate requirements/ros-test.txt: hash-pin every wheel in a download directory.

Used by ``scripts/setup_ros_tier.sh --lock`` after ``pip download`` of the top-level set; the
result is installed with ``--require-hashes --no-deps``, so the file must list the whole closure.

By default the pins already in the lock are kept verbatim and only names it lacks are added:
pip's resolution of the ros-jazzy-* metadata varies with what it is constrained to, and a
regeneration for one new package must not drop or move the wheels' closure. ``--upgrade``
rewrites the file from the download directory alone.
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

HEADER = """\
# Test-only: third-party ROS 2 Jazzy wheels from PyPI for the real-rclpy test tier (tests/ros/),
# plus colcon and what the vendored launch/ros2cli sources import (third_party/ros-jazzy-tools).
# Unofficial builds of unknown provenance (ros2_facts.md section 0): exact versions and hashes,
# installed only into the separate .venv/ros-tier by scripts/setup_ros_tier.sh, never a runtime
# dependency, never on a rig. cp311 manylinux_2_28 x86_64 only.
# Regenerate: bash scripts/setup_ros_tier.sh --lock (adds new names; --lock --upgrade re-resolves)
"""


def _existing(lock: Path) -> dict[str, str]:
    """name -> its ``name==ver \\ --hash=...`` entry, as written in ``lock``."""
    if not lock.is_file():
        return {}
    body = re.sub(r"\\\n\s*", "", lock.read_text())  # join continuation lines
    rows = {}
    for line in body.splitlines():
        m = re.match(r"([A-Za-z0-9_.-]+)==(\S+)\s+(--hash=\S+)", line)
        if m:
            rows[m[1]] = f"{m[1]}=={m[2]} \\\n    {m[3]}"
    return rows


def main(wheel_dir: str, out: str, *flags: str) -> int:
    rows = {} if "--upgrade" in flags else _existing(Path(out))
    kept = len(rows)
    for f in sorted(Path(wheel_dir).iterdir()):
        if f.name.endswith(".whl"):
            name, ver = f.name.split("-")[:2]
        elif f.name.endswith(".tar.gz"):
            name, ver = f.name[: -len(".tar.gz")].rsplit("-", 1)
        else:
            continue
        name = re.sub(r"[-_.]+", "-", name).lower()
        digest = hashlib.sha256(f.read_bytes()).hexdigest()
        rows.setdefault(name, f"{name}=={ver} \\\n    --hash=sha256:{digest}")
    Path(out).write_text(HEADER + "\n".join(rows[k] for k in sorted(rows)) + "\n")
    print(f"{out}: {len(rows)} pinned ({len(rows) - kept} added)")  # noqa: T201 - a CLI's report
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
