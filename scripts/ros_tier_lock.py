"""Regenerate requirements/ros-test.txt: hash-pin every wheel in a download directory.

Used by ``scripts/setup_ros_tier.sh --lock`` after ``pip download`` of the top-level set; the
result is installed with ``--require-hashes --no-deps``, so the file must list the whole closure.
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

HEADER = """\
# Test-only: third-party ROS 2 Jazzy wheels from PyPI for the real-rclpy test tier (tests/ros/),
# plus colcon to build a2w_interfaces against them. Unofficial builds of unknown provenance
# (ros2_facts.md section 0): exact versions and hashes, installed only into the separate
# .venv/ros-tier by scripts/setup_ros_tier.sh, never a runtime dependency, never on a rig.
# cp311 manylinux_2_28 x86_64 only. Regenerate: bash scripts/setup_ros_tier.sh --lock
"""


def main(wheel_dir: str, out: str) -> int:
    rows = []
    for f in sorted(Path(wheel_dir).iterdir()):
        if f.name.endswith(".whl"):
            name, ver = f.name.split("-")[:2]
        elif f.name.endswith(".tar.gz"):
            name, ver = f.name[: -len(".tar.gz")].rsplit("-", 1)
        else:
            continue
        name = re.sub(r"[-_.]+", "-", name).lower()
        digest = hashlib.sha256(f.read_bytes()).hexdigest()
        rows.append(f"{name}=={ver} \\\n    --hash=sha256:{digest}")
    Path(out).write_text(HEADER + "\n".join(rows) + "\n")
    print(f"{out}: {len(rows)} pinned")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
