"""The real ROS 2 command line against the tier's workspace (scripts/setup_ros_tier.sh): the
vendored Jazzy ros2cli/launch tools answer, `a2w` is installed as a ROS package (every node an
executable, the launch/config files in its share, symlinked to the working tree) and a node
started by `ros2 run` joins the graph and leaves it on SIGINT. Every command runs in a
loopback-only network namespace (tests/ros/support.py)."""

from __future__ import annotations

import runpy
import signal
from pathlib import Path

from a2w import nodes
from tests.ros.support import ROOT, run_isolated, run_isolated_cmd, run_isolated_shell

A2W = ROOT / "ros_ws" / "src" / "a2w"
SETUP = runpy.run_path(str(A2W / "setup.py"), run_name="a2w_setup_under_test")


def test_the_ros2_tools_answer(ros_tier: Path) -> None:
    proc = run_isolated_shell("""
        ros2 --help; echo '--- launch'
        ros2 launch --help; echo '--- rigtarget'
        ros2 interface show a2w_interfaces/msg/RigTarget; echo '--- tf'
        ros2 interface show tf2_msgs/msg/TFMessage; echo '--- topics'
        ros2 topic list --no-daemon
    """, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    sections = dict(s.split("\n", 1) for s in ("--- help\n" + proc.stdout).split("--- ")[1:])
    assert "ros2 is an extensible command-line tool for ROS 2" in sections["help"]
    assert sections["launch"].startswith("usage: ros2 launch")
    assert "std_msgs/Header header" in sections["rigtarget"]
    # Nested types expand from the wheels' ament index (the venv prefix chained as an underlay).
    assert "geometry_msgs/TransformStamped[] transforms" in sections["tf"]
    assert "Vector3 translation" in sections["tf"], sections["tf"]
    assert sections["topics"].split() == ["/parameter_events", "/rosout"]
    assert "Unknown package" not in proc.stderr, proc.stderr


def test_ros2_pkg_executables_lists_every_registered_node(ros_tier: Path) -> None:
    proc = run_isolated_cmd(["ros2", "pkg", "executables", "a2w"], timeout=60)
    assert proc.returncode == 0, proc.stderr
    listed = sorted(line.split()[1] for line in proc.stdout.splitlines() if line.startswith("a2w "))
    assert set(nodes.NODES) <= set(listed), f"missing: {sorted(set(nodes.NODES) - set(listed))}"
    # ...and nothing but setup.py's console scripts (a stale install would list removed ones).
    assert listed == sorted(s.split(" = ")[0] for s in SETUP["console_scripts"]())


def test_the_installed_share_is_the_working_tree(ros_tier: Path) -> None:
    proc = run_isolated_cmd(["ros2", "pkg", "prefix", "--share", "a2w"], timeout=60)
    assert proc.returncode == 0, proc.stderr
    share = Path(proc.stdout.strip())
    assert (share / "launch" / "sim.launch.xml").is_file() and (share / "launch" / "params" / "sim.yaml").is_file()
    # Every data file setup.py names is there and resolves to the working tree's file, so an edit
    # to a launch file or its parameters needs no rebuild (--symlink-install).
    for dest, files in SETUP["data_files"]():
        if not dest.startswith("share/a2w"):
            continue
        for f in files:
            installed = share.parent.parent / dest / Path(f).name
            assert installed.resolve() == (A2W / f).resolve(), f"{installed} is not {A2W / f}"


def test_ros2_run_starts_a_node_that_joins_the_graph_and_stops_on_sigint(ros_tier: Path) -> None:
    rc, out, r = run_isolated("ros2_run.py", "sim_node", "sim_node", "--ros-args", "-p", "use_sim_time:=false",
                              "-p", "task:=pick_cube", "-p", "max_width:=64", "-p", "max_height:=48",
                              timeout=240)
    assert rc == 0 and r is not None, out[-4000:]
    assert "error" not in r, r["error"] + "\n" + r["output_tail"]
    assert "/sim_node" in r["nodes"]
    assert {"use_sim_time", "task", "world_name"} <= set(r["params"]), r["params"]
    assert r["use_sim_time"] == "Boolean value is: False"
    assert any(t.startswith("/clock ") for t in r["topics"]), r["topics"]
    # Ctrl-C ends it as interrupted (128 + SIGINT, as the in-process host) and it leaves the graph.
    assert r["alive_before_sigint"]
    assert r["rc"] == 128 + signal.SIGINT, r["output_tail"]
    assert r["gone"]
