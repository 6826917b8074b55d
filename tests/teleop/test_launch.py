"""launch/teleop.launch.xml (what `make teleop` runs) under `a2w launch`: the sim rig, the recorder
and teleop_node, which prints the page's address with its token; duration:= ends it with exit 0.
The same file under the real `ros2 launch` is tests/ros/test_launch.py's."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from a2w.launch import LaunchRunner

REPO = Path(__file__).resolve().parents[2]
LAUNCH = REPO / "launch" / "teleop.launch.xml"
pytestmark = pytest.mark.slow


def test_teleop_launch_evaluates_to_the_sim_rig_the_recorder_and_teleop(tmp_path):
    res = LaunchRunner().load(LAUNCH, {"dataset": str(tmp_path / "ds"), "bind": "0.0.0.0", "https": "true",
                                       "yaw": "90", "scale": "0.5"})
    assert [s.name for s in res.nodes] == ["sim_node", "camera_node", "arm_node", "robot_state_node", "record_node",
                                           "teleop_node"]
    tele = res.nodes[-1].params
    assert (tele["bind"], tele["https"], tele["yaw"], tele["scale"]) == ("0.0.0.0", True, 90.0, 0.5)
    assert res.nodes[-2].params["root"] == str(tmp_path / "ds")
    assert LaunchRunner().load(LAUNCH).nodes[-1].params["bind"] == "127.0.0.1"  # loopback unless asked


def test_teleop_launch_runs_in_process_and_prints_the_page_address(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "a2w.cli", "launch", str(LAUNCH), "duration:=3", "port:=0",
                           f"dataset:={tmp_path / 'ds'}", "--duration", "120"],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert re.search(r"teleop page: http://localhost:\d+/\?token=[\w-]{8,}", out), out[-4000:]
    assert "teleop session over after 3 s" in out
    row = next(line for line in proc.stdout.splitlines() if line.startswith("/teleop_node"))
    assert row.split()[-1] == "0", row  # no callback errors
