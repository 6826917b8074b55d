"""`make demo`: launch/demo.launch.xml, the sim with the trained policy, the shadow and the monitor by
default, the scripted expert with driver:=expert; the run ends with the task's verdict, the shadow's
verdict and the monitor's session (the ros2 launch tier: tests/ros/test_launch.py)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from a2w.launch import LaunchRunner
from tests.monitor.support import free_port

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "launch" / "demo.launch.xml"
POLICY = "models/checkpoints/sim/policy"


def nodes(**args: str) -> dict:
    return {s.name: s.params for s in LaunchRunner().load(DEMO, args).nodes}


def test_the_defaults_are_the_trained_policy_the_shadow_and_the_monitor() -> None:
    got = nodes()
    assert list(got) == ["sim_node", "camera_node", "arm_node", "robot_state_node", "policy_node",
                         "task_judge_node", "shadow_node", "monitor_node"], list(got)
    assert got["policy_node"]["checkpoint"] == POLICY and (REPO / POLICY / "model.safetensors").is_file()
    assert got["policy_node"]["instruction"] == "lift the box with both arms"
    assert got["shadow_node"]["checkpoint"] == "models/checkpoints/sim/worldmodel_sim"
    assert got["shadow_node"]["optional"] is True  # not trained yet = a warning, not a failed demo
    assert got["monitor_node"]["web_port"] == 9090 and got["monitor_node"]["rrd"] == "recordings/monitor/{time}.rrd"
    assert got["task_judge_node"]["timeout"] == 20.0
    # one of the held-out seeds the shipped policy solves (its card), for the task and the sampling
    assert got["sim_node"]["seed"] == 5 and got["policy_node"]["seed"] == 5


@pytest.mark.parametrize("args, present, absent", [
    ({"driver": "expert"}, {"expert_node", "shadow_node", "monitor_node"}, {"policy_node", "task_judge_node"}),
    ({"driver": "policy", "shadow": "", "monitor": "false"}, {"policy_node", "task_judge_node"},
     {"expert_node", "shadow_node", "monitor_node"}),
])
def test_the_driver_argument_selects_what_drives(args: dict, present: set, absent: set) -> None:
    got = nodes(**args)
    assert present <= set(got) and not absent & set(got), list(got)


@pytest.mark.parametrize("driver", ["Policy", "expertt", ""])
def test_a_driver_that_is_neither_fails_naming_it(driver: str) -> None:
    from a2w.host import Host
    from a2w.host.host import NodeSpec
    from a2w.policy.component import PolicyNode

    params = nodes(driver=driver)["policy_node"]
    assert params["checkpoint"] == f"driver:={driver} is neither policy nor expert"
    with pytest.raises(Exception, match=f"driver:={driver} is neither policy nor expert"):
        Host(diagnostics_period=0).add(NodeSpec(PolicyNode, "policy_node", params=params))


def test_the_sim_arguments_reach_the_sim_stack(tmp_path: Path) -> None:
    got = nodes(task="pick_cube", seed="4", timeout="7", faults="[object_slip]", realtime="0.5", mode="sync",
                policy=str(tmp_path), rrd=str(tmp_path / "s.rrd"), web_port="9191", grpc_port="9292")
    assert got["sim_node"]["task"] == "pick_cube" and got["sim_node"]["seed"] == 4 and got["policy_node"]["seed"] == 4
    assert got["sim_node"]["faults"] == ["object_slip"] and got["sim_node"]["realtime_factor"] == 0.5
    assert got["task_judge_node"]["timeout"] == 7.0
    assert got["policy_node"]["checkpoint"] == str(tmp_path) and got["policy_node"]["mode"] == "sync"
    assert got["policy_node"]["instruction"] == "pick up the cube"
    assert (got["monitor_node"]["rrd"], got["monitor_node"]["web_port"], got["monitor_node"]["grpc_port"]) == (
        str(tmp_path / "s.rrd"), 9191, 9292)
    assert "camera_node" not in nodes(cameras="false")


def test_the_demo_runs_the_shipped_policy_to_a_verdict_and_ends_with_the_shadow_and_monitor(tmp_path: Path) -> None:
    from tests.shadow.support import tiny_worldmodel

    shadow = tiny_worldmodel(tmp_path / "worldmodel")
    rrd = tmp_path / "session.rrd"
    # the demo's defaults but a tiny random A2World-sim, a short run, and the session and ports of the test's own
    proc = subprocess.run([sys.executable, "-m", "a2w.cli", "-v", "launch", str(DEMO), "task:=pick_cube",
                           "timeout:=10", f"shadow:={shadow}", f"rrd:={rrd}", f"web_port:={free_port()}",
                           f"grpc_port:={free_port()}", "--duration", "300"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=420, cwd=REPO)
    out = proc.stdout
    assert proc.returncode in (0, 1) and "Traceback" not in out, out[-6000:]
    stopped = re.search(r"a2w launch: stopped \(/task_judge_node: task pick_cube (succeeded|not done after 10 s)", out)
    assert stopped and proc.returncode == (0 if stopped.group(1) == "succeeded" else 1), out[-6000:]
    assert f"policy {POLICY}: torch" in out and "policy acquiring -> running" in out, out[-6000:]
    verdict = re.search(r"shadow verdict: (\d+) reports, worst level OK \(uncalibrated[^\n]*lag behind the clock "
                        r"median ([\d.]+) s, max ([\d.]+) s", out)
    assert verdict and int(verdict.group(1)) >= 1, out[-6000:]
    assert "where: per-window scores on /shadow/report" in out
    assert f"monitor: session {rrd} (replay: rerun {rrd}); the live viewer was at http://127.0.0.1:" in out, out[-6000:]
    assert rrd.stat().st_size > 0
    # the verdicts come last, after the policy's own summary, before the launch's
    order = [out.index(s) for s in ("policy node: state=", "shadow verdict:", "monitor: session", stopped.group(0))]
    assert order == sorted(order), order
