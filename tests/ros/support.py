"""The real-rclpy tier: scripts run with the ROS tier's Python, each inside a fresh network
namespace with only loopback, ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and a private
ROS_DOMAIN_ID (docs/architecture.md §10). rclpy is never initialised in the pytest process itself."""

from __future__ import annotations

import json
import os
import random
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TIER = ROOT / ".venv" / "ros-tier"
SETUP_BASH = TIER / "ws" / "install" / "setup.bash"
SCRIPTS = Path(__file__).parent / "scripts"


def tier_problem() -> str | None:
    """Why the tier cannot run here, or None."""
    if not (TIER / ".ready").is_file() or not SETUP_BASH.is_file():
        return f"ROS tier not set up ({TIER}); run `bash scripts/setup_ros_tier.sh` (make setup does)"
    probe = subprocess.run(["unshare", "--net", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot create a network namespace (unshare --net: {probe.stderr.strip()})"
    return None


def run_isolated(script: str, *args: str, timeout: float = 120.0) -> tuple[int, str, dict[str, Any] | None]:
    """Run tests/ros/scripts/<script> with the tier's Python in a loopback-only netns.

    Returns (exit code, combined output, the JSON the script printed after ``RESULT ``).
    """
    env = dict(os.environ)
    env.update({
        "ROS_DOMAIN_ID": str(random.randint(1, 100)),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),  # tests.probe_components
        "PYTHONUNBUFFERED": "1",
    })
    env.pop("_ROS_WHEELS_BOOTSTRAP_COMPLETE", None)
    inner = 'ip link set lo up && source "$0" && exec "$@"'
    cmd = ["unshare", "--net", "bash", "-c", inner, str(SETUP_BASH), str(TIER / "bin" / "python"),
           str(SCRIPTS / script), *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    out = proc.stdout + proc.stderr
    result = None
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT "):])
    return proc.returncode, out, result
