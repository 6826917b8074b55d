"""The launch files under the real `ros2 launch` (the tier's colcon build of Jazzy launch, launch_ros,
ros2launch) and a2w's component_container behind them (docs/architecture.md §4, §9).

Each run is a script in a loopback-only netns (tests/ros/support.py): ros2 launch starts the
container and the expert as processes of their own, the container loads sim, cameras and arm
through its composition_interfaces services, and the launch's exit code is the verdict."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest

from tests.ros.support import ROOT, run_isolated

LAUNCH = ROOT / "launch"
# How each shipped launch file is run to completion: its arguments (it must end by itself).
RECIPES = {"sim.launch.xml": ["task:=pick_cube", "seed:=3"],
           # a free port, a fresh dataset directory, and a session that ends by itself
           "teleop.launch.xml": ["duration:=5.0", "port:=0",
                                 f"dataset:={tempfile.mkdtemp(prefix='a2w-teleop-launch-')}/ds"],
           # the rig's launch files with the sim drivers swapped in (no hardware here): the sim's
           # expert drives; no monitor (it would write its session under recordings/)
           "rig.launch.xml": ["sim:=true", "task:=pick_cube", "monitor:=false"],
           "shadow.launch.xml": ["sim:=true", "task:=pick_cube", "monitor:=false"],
           # `make demo` with the scripted expert; its shadow checkpoint missing (a warning, the shadow
           # off); the policy, shadow and monitor defaults: test_the_demo_defaults_under_ros2_launch
           "demo.launch.xml": ["driver:=expert", "task:=pick_cube", "seed:=3", "monitor:=false",
                               "shadow:=/nonexistent/worldmodel_sim"]}
# What each launch prints when it did its job.
SUCCEEDED = {"sim.launch.xml": ("task succeeded",), "teleop.launch.xml": ("teleop page: http://localhost:",),
             "rig.launch.xml": ("task succeeded",), "shadow.launch.xml": ("task succeeded",),
             "demo.launch.xml": ("task succeeded",
                                 "shadow verdict: off (no A2World-sim checkpoint at /nonexistent/worldmodel_sim)")}
LAUNCH_TIMEOUT = 240.0


def ros2_launch(*args: str, kill_after: str | None = None, kill: str | None = None) -> tuple[int, str]:
    opts = [str(LAUNCH_TIMEOUT)] + (["--kill-after", kill_after, "--kill", kill] if kill_after else [])
    rc, out, result = run_isolated("ros2_launch.py", *opts, "--", *args, timeout=LAUNCH_TIMEOUT + 60)
    assert rc == 0 and result is not None, out[-6000:]
    return result["rc"], out


def test_container_services_load_list_unload_and_refuse_in_the_response(ros_tier: Path) -> None:
    rc, out, r = run_isolated("container_services.py", timeout=180)
    assert rc == 0 and r is not None, out[-4000:]
    assert r["ready"]
    assert r["ok"]["success"] and r["ok"]["name"] == "/rig/talk" and r["ok"]["id"] > 0, r["ok"]
    # Parameters and remap rules reached the component; an empty list (launch_ros sends a byte
    # array) is an empty list of the field's type, and no camera publisher was made.
    assert "/out" in r["talker_topics"] and "/rig/talk/events" not in r["talker_topics"], r["talker_topics"]
    assert not any(t.startswith("/cameras/") for t in r["talker_topics"])
    assert r["params_read_back"] == [20.0, "loaded", []]
    # Every refusal is an answer naming the problem; none of them took the container down.
    refusals = {
        "by_exec_name_unknown": "unknown executable 'no_such_node'",
        "bad_module": "no_such_module",
        "not_a_component": "is not a Component",
        "bad_value": "parameter 'rate'",
        "out_of_range": "parameter 'rate'",
        "unknown_param": "bogus",
        "bad_type": "parameter 'views'",
        "intra_process": "use_intra_process_comms",
        "other_extra": "forward_global_arguments",
        "other_package": "rclcpp_components",
        "duplicate": "already loaded",
        "log_level": "log_level",
        "bad_node_name": "not a name!",
    }
    for case, words in refusals.items():
        assert r[case]["success"] is False and words in r[case]["error"], (case, r[case])
    assert r["alive_after_refusals"]
    assert r["listed"] == [["/rig/talk"], [r["ok"]["id"]]]
    assert r["unload"] == [True, ""]
    assert r["unload_again"][0] is False and "no node with unique id" in r["unload_again"][1]
    assert r["listed_after_unload"] == [] and "/rig/talk" not in r["graph_after_unload"]
    assert "/rig/box" in r["graph_after_unload"]
    # A component that stops the run (a crashed worker: 70) ends the container with its code.
    assert r["stopper"]["success"] and r["container_exit"] == 70
    # exit_on_load_error: the refusal is still answered, then the container exits 2.
    assert r["strict_refusal"][0] is False and "rate" in r["strict_refusal"][1]
    assert r["strict_exit"] == 2


def test_every_launch_file_has_a_ros2_launch_recipe() -> None:
    assert sorted(p.name for p in LAUNCH.glob("*.launch.xml")) == sorted(RECIPES)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_launch_file_succeeds_under_ros2_launch_by_path(ros_tier: Path, name: str) -> None:
    # The cameras run (the default): the arm node's timing holds with them, at default stale_after.
    rc, out = ros2_launch(str(LAUNCH / name), *RECIPES[name])
    assert rc == 0, out[-6000:]
    for node in ("/sim_node", "/camera_node", "/arm_node"):
        assert f"Loaded node '{node}' in container '/sim_container'" in out, out[-6000:]
    assert all(needle in out for needle in SUCCEEDED[name]) and "Failed to load" not in out, out[-6000:]


def test_sim_with_the_recorder_succeeds_under_ros2_launch(ros_tier: Path, tmp_path: Path) -> None:
    rc, out = ros2_launch(str(LAUNCH / "sim.launch.xml"), "task:=pick_cube", "seed:=3", "record:=true",
                          f"dataset:={tmp_path / 'ds'}")
    assert rc == 0, out[-6000:]
    assert re.search(r"\[INFO\] \[record_node-\d+\]: process started", out), out[-6000:]
    assert "task succeeded" in out and "Traceback" not in out.split("task succeeded")[0], out[-6000:]


def test_shadow_launch_beside_the_sim_under_ros2_launch(ros_tier: Path, tmp_path: Path) -> None:
    from tests.shadow.support import tiny_worldmodel

    ckpt = tiny_worldmodel(tmp_path / "worldmodel")
    rc, out = ros2_launch(str(LAUNCH / "shadow.launch.xml"), "sim:=true", "task:=pick_cube", f"shadow:={ckpt}",
                          "monitor:=false")
    assert rc == 0, out[-6000:]
    assert re.search(r"\[INFO\] \[shadow_node-\d+\]: process started", out), out[-6000:]
    assert "task succeeded" in out and "Traceback" not in out.split("task succeeded")[0], out[-6000:]


def test_the_real_rig_variants_without_a_rig_file_fail_saying_so(ros_tier: Path) -> None:
    rc, out = ros2_launch(str(LAUNCH / "rig.launch.xml"))
    assert rc != 0 and "rig:=FILE is required with sim:=false" in out, out[-6000:]


def test_the_real_rig_variant_reads_the_rig_file_and_reports_the_missing_hardware(ros_tier: Path) -> None:
    # No hardware here: each node starts from the rig file (parsed by rcl, not a2w), reports what is
    # missing and keeps retrying, as on a rig whose cameras or arms are not up yet; the launch then
    # runs until stopped, so the harness ends it (SIGKILL, rc -9) once the budget is spent.
    rc, out, result = run_isolated("ros2_launch.py", "90", "--", str(LAUNCH / "rig.launch.xml"),
                                   f"rig:={ROOT / 'configs' / 'rig' / 'example.yaml'}", "monitor:=false",
                                   timeout=180)
    assert rc == 0 and result is not None and result["rc"] == -9, out[-6000:]
    for node in ("camera_node", "arm_node", "robot_state_node"):
        assert re.search(rf"\[INFO\] \[{node}-\d+\]: process started", out), out[-6000:]
    assert "camera 'front': no RealSense device connected (looking for serial 000000000000)" in out, out[-6000:]
    assert "arm backend did not come up: left arm: cannot import 'flexivrdk'" in out, out[-6000:]
    assert "extrinsics from calibration calibration/example" in out, out[-6000:]
    assert "exited with code" not in out and "Traceback" not in out, out[-6000:]


def test_sim_succeeds_from_the_colcon_install(ros_tier: Path) -> None:
    rc, out = ros2_launch("a2w", "sim.launch.xml", "task:=lift_box", "cameras:=false")
    assert rc == 0, out[-6000:]
    assert "task succeeded" in out and "/camera_node" not in out


def test_a_node_exiting_non_zero_fails_ros2_launch(ros_tier: Path) -> None:
    # The expert gives up after 1 s of sim time: it exits 1, and so must the launch.
    rc, out = ros2_launch("a2w", "sim.launch.xml", "cameras:=false", "timeout:=1")
    assert rc == 1, out[-6000:]
    # launch names processes <exec>-<n> in start order
    assert re.search(r"process expert_node-\d+ exited with code 1 \(fail_on_node_error\)", out), out[-6000:]


def test_a_node_that_cannot_load_fails_ros2_launch(ros_tier: Path) -> None:
    # A bad argument: the container refuses the sim node and exits 2 (exit_on_load_error) instead
    # of waiting for a sim that never comes; the launch fails.
    rc, out = ros2_launch("a2w", "sim.launch.xml", "cameras:=false", "realtime:=fast")
    assert rc == 1, out[-6000:]
    assert "Failed to load node 'sim_node'" in out and "exited with code 2" in out


def test_a_killed_container_fails_ros2_launch(ros_tier: Path) -> None:
    rc, out = ros2_launch("a2w", "sim.launch.xml", "cameras:=false",
                          kill_after=r"Loaded node '/arm_node'", kill="component_container-1")
    assert rc == 1, out[-6000:]
    assert "killed component_container-1" in out and "exited with code -9" in out


def test_the_demo_defaults_under_ros2_launch(ros_tier: Path, tmp_path: Path) -> None:
    """demo.launch.xml as `make demo` runs it (the policy node, the task judge, the shadow, the monitor)
    with tiny random checkpoints: the policy drives the sim, and the run ends with the verdicts."""
    from a2w.sim.collect import INSTRUCTIONS
    from a2world.policy.bundle import write_random_bundle
    from tests.shadow.support import tiny_worldmodel

    ckpt = write_random_bundle(tmp_path / "tiny", list(INSTRUCTIONS.values()), image_size=(32, 32))
    shadow, rrd = tiny_worldmodel(tmp_path / "worldmodel"), tmp_path / "session.rrd"
    rc, out = ros2_launch(str(LAUNCH / "demo.launch.xml"), "task:=pick_cube", f"policy:={ckpt}", "timeout:=10",
                          f"shadow:={shadow}", f"rrd:={rrd}")
    # Random weights cannot pick the cube: the judge fails the run, and with it the launch.
    assert rc == 1, out[-6000:]
    assert re.search(r"process task_judge_node-\d+ exited with code 1", out), out[-6000:]
    assert "expert_node" not in out and "policy acquiring -> running" in out, out[-6000:]
    summary = re.search(r"policy node: state=running .*chunks=(\d+) targets_sent=(\d+) .*faults=(\d+)", out)
    assert summary, out[-6000:]
    chunks, sent, faults = map(int, summary.groups())
    assert chunks >= 1 and sent >= 30 and faults == 0, summary.group(0)
    # each listener's verdict as its process stops (the launch's SIGINT): the shadow's, the monitor's session
    verdict = re.search(r"\[shadow_node-\d+\] .*shadow verdict: (\d+) reports, worst level OK", out)
    assert verdict and int(verdict.group(1)) >= 1, out[-6000:]
    session = rf"\[monitor_node-\d+\] .*monitor: session {re.escape(str(rrd))} \(replay: rerun "
    assert re.search(session, out), out[-6000:]
    assert rrd.stat().st_size > 0
