"""Issue 20 item 4: the rig launch files. Each shipped launch file evaluates with `a2w launch --check`
for the real rig (the rig configuration file, real drivers) and for the sim (sim drivers swapped in
by argument); a real variant without rig:= names what is missing; shadow.launch.xml with the sim
drivers runs in-process until the shadow has reported on the sim's executed motion and the monitor
has logged it. (The ros2 launch tier: tests/ros/test_launch.py.)"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from a2w import cli
from a2w.host import Host
from a2w.launch.runner import LaunchError, LaunchRunner

REPO = Path(__file__).resolve().parents[2]
LAUNCH = REPO / "launch"
RIG = REPO / "configs" / "rig" / "example.yaml"
CKPT = "/nonexistent/checkpoint"  # --check builds no node: a path is enough

# launch file -> {variant: arguments}. Every shipped launch file has a line: a new one must say how
# it runs on the rig and on the sim.
VARIANTS: dict[str, dict[str, list[str]]] = {
    "rig.launch.xml": {"real": [f"rig:={RIG}", f"policy:={CKPT}", f"shadow:={CKPT}"],
                       "sim": ["sim:=true", f"policy:={CKPT}", f"shadow:={CKPT}"]},
    "teleop.launch.xml": {"real": ["sim:=false", f"rig:={RIG}"], "sim": []},
    "shadow.launch.xml": {"real": [f"rig:={RIG}", f"shadow:={CKPT}"], "sim": ["sim:=true", f"shadow:={CKPT}"]},
    # the sim's own file has no real variant (read-only here; its own tests: test_sim_launch.py)
    "sim.launch.xml": {"sim": [f"shadow:={CKPT}", "monitor:=true"]},
    # `make demo`: the sim only, the trained policy, shadow (its own tests: test_demo_launch.py)
    "demo.launch.xml": {"sim": [f"shadow:={CKPT}"]},
}
# What each variant must run, node name -> parameters it must have.
EXPECT: dict[tuple[str, str], dict[str, dict[str, Any]]] = {
    ("rig.launch.xml", "real"): {
        "camera_node": {"driver": "realsense", "realsense.serials": ["_000000000000", "_000000000001",
                                                                     "_000000000002"]},
        "arm_node": {"backend": "flexiv", "calibration": "calibration/example", "flexiv.software_version": "3.11.2"},
        "robot_state_node": {"calibration": "calibration/example"},
        "policy_node": {"checkpoint": CKPT, "device": "cuda"},
        "shadow_node": {"checkpoint": CKPT, "device": "cuda"},
        "monitor_node": {"use_sim_time": False}},
    ("rig.launch.xml", "sim"): {
        "sim_node": {}, "camera_node": {"driver": "sim"}, "arm_node": {"backend": "sim"}, "robot_state_node": {},
        "policy_node": {"checkpoint": CKPT}, "shadow_node": {"checkpoint": CKPT}, "monitor_node": {},
        "task_judge_node": {}},
    ("teleop.launch.xml", "real"): {
        "camera_node": {"driver": "realsense"}, "arm_node": {"backend": "flexiv"},
        "robot_state_node": {"calibration": "calibration/example"}, "record_node": {"width": 640, "height": 480},
        "teleop_node": {"use_sim_time": False}},
    ("teleop.launch.xml", "sim"): {
        "sim_node": {}, "camera_node": {"driver": "sim"}, "arm_node": {"backend": "sim"}, "robot_state_node": {},
        "record_node": {"width": 256, "height": 192}, "teleop_node": {"use_sim_time": True}},
    ("shadow.launch.xml", "real"): {"shadow_node": {"device": "cuda", "checkpoint": CKPT},
                                    "monitor_node": {"use_sim_time": False}},
    ("shadow.launch.xml", "sim"): {
        "sim_node": {}, "camera_node": {"driver": "sim"}, "arm_node": {"backend": "sim"}, "robot_state_node": {},
        "expert_node": {}, "shadow_node": {"checkpoint": CKPT, "use_sim_time": True}, "monitor_node": {}},
    ("sim.launch.xml", "sim"): {
        "sim_node": {}, "camera_node": {"driver": "sim"}, "arm_node": {"backend": "sim"}, "robot_state_node": {},
        "expert_node": {}, "shadow_node": {"checkpoint": CKPT}, "monitor_node": {}},
    ("demo.launch.xml", "sim"): {
        "sim_node": {}, "camera_node": {"driver": "sim"}, "arm_node": {"backend": "sim"}, "robot_state_node": {},
        "policy_node": {"checkpoint": "models/checkpoints/sim/policy"}, "task_judge_node": {},
        "shadow_node": {"checkpoint": CKPT, "optional": True}, "monitor_node": {}},
}
CASES = [(f, v) for f, variants in VARIANTS.items() for v in variants]


def test_every_launch_file_has_its_variants() -> None:
    assert sorted(p.name for p in LAUNCH.glob("*.launch.xml")) == sorted(VARIANTS)
    assert sorted(CASES) == sorted(EXPECT)


@pytest.mark.parametrize("name,variant", CASES)
def test_launch_check_evaluates_each_variant(name: str, variant: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["launch", str(LAUNCH / name), *VARIANTS[name][variant], "--check"]) == 0
    out = capsys.readouterr().out
    listed = {line.split()[0].lstrip("/") for line in out.splitlines() if line.startswith("/")}
    assert listed == set(EXPECT[name, variant]), out
    specs = {s.name: s for s in LaunchRunner().load(LAUNCH / name, dict(a.split(":=", 1) for a in
                                                                        VARIANTS[name][variant])).nodes}
    for node, params in EXPECT[name, variant].items():
        for key, value in params.items():
            assert specs[node].params.get(key) == value, (node, key, specs[node].params)
    real = variant == "real"
    for spec in specs.values():  # one clock per variant: the rig's wall clock, or the sim's
        assert spec.params.get("use_sim_time", False) is (not real), (spec.name, spec.params)


@pytest.mark.parametrize("name", ["rig.launch.xml", "shadow.launch.xml", "teleop.launch.xml"])
def test_a_real_variant_without_a_rig_file_says_rig_is_required(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["launch", str(LAUNCH / name), "sim:=false", "--check"]) == 2
    assert "rig:=FILE is required with sim:=false" in capsys.readouterr().err


def test_a_rig_file_with_a_misspelt_parameter_is_refused_by_the_launch(tmp_path: Path) -> None:
    bad = tmp_path / "rig.yaml"
    bad.write_text(RIG.read_text().replace("software_version:", "sofware_version:"))
    runner = LaunchRunner()
    specs = runner.load(LAUNCH / "rig.launch.xml", {"rig": str(bad)}).nodes
    arm = next(s for s in specs if s.name == "arm_node")
    host = Host(diagnostics_period=0)
    try:
        with pytest.raises(ValueError, match="sofware_version"):
            host.add(arm)
    finally:
        host.shutdown()
    with pytest.raises(LaunchError, match="file not found"):
        runner.load(LAUNCH / "rig.launch.xml", {"rig": str(tmp_path / "missing.yaml")})


def _wait(cond: Any, timeout: float, what: str, diag: Any) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}: {diag()}")


def test_shadow_launch_with_sim_drivers_runs_in_process(tmp_path: Path) -> None:
    from tests.shadow.support import tiny_worldmodel

    ckpt = tiny_worldmodel(tmp_path / "worldmodel")
    specs = LaunchRunner().load(LAUNCH / "shadow.launch.xml", {"sim": "true", "shadow": str(ckpt)}).nodes
    for spec in specs:
        if spec.name == "camera_node":
            spec.params.update(width=64, height=48)
        elif spec.name == "expert_node":
            spec.params.update(exit_when_done=False, timeout=600.0)
        elif spec.name == "shadow_node":
            spec.params.update(steps=1)
        elif spec.name == "monitor_node":  # no viewer ports in a test; the session file in tmp
            spec.params.update(serve=False, rrd=str(tmp_path / "session.rrd"))
    host = Host(diagnostics_period=0)
    try:
        nodes = {spec.name: host.add(spec) for spec in specs}
        host.start()
        shadow, monitor = nodes["shadow_node"], nodes["monitor_node"]
        _wait(lambda: len(shadow.reports) >= 1, 240, "a shadow report", shadow.diagnostics)
        _wait(lambda: monitor.lib.logged["shadow"] >= 1, 60, "the monitor logging the shadow's report",
              monitor.diagnostics)
        assert not host.stopping, host.stop_reason
    finally:
        host.shutdown()
