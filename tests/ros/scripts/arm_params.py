"""The arm node under real rclpy: a driver's parameters are ROS parameters with dotted names
(``flexiv.rate``), from ``-p`` overrides and from nested maps in a parameter file, and reach the
driver, which checks them when the node is built (nothing here connects to a robot)."""

import json
import subprocess
import sys
import tempfile
from pathlib import Path


def node_run(*ros_args: str) -> list:
    p = subprocess.run([sys.executable, "-m", "a2w.ros.main", "arm_node", "--name", "arm_node", "--duration", "5",
                        "--ros-args", "-p", "backend:=flexiv", *ros_args], capture_output=True, text=True, timeout=90)
    return [p.returncode, (p.stdout + p.stderr)[-2000:]]


params = Path(tempfile.mkdtemp()) / "arms.yaml"
params.write_text("arm_node:\n  ros__parameters:\n    flexiv:\n      left_serial: Rizon4s-062001\n"
                  "      right_serial: Rizon4s-062001\n      left_nics: [10.0.0.2]\n")
result = {
    "range": node_run("-p", "flexiv.rate:=500.0"),
    "old_name": node_run("-p", "flexiv_rate:=50.0"),
    "unset": node_run(),
    "file": node_run("--params-file", str(params)),
}
print("RESULT " + json.dumps(result))
