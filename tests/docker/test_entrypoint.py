"""docker/entrypoint.sh, run with bash against fake ROS and workspace setup files: what each command
dispatches to (argv intact, after both setups are sourced in order), that it hands its process
over (exec: signals and the exit code belong to the command), and its usage errors."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.docker.support import ENTRYPOINT, linter

# A fake command: records its argv, its pid and what the setup files exported, then exits with
# $FAKE_RC. The ROS setup puts the fakes on PATH, as the real one puts /opt/ros/jazzy/bin there.
FAKE = """#!/usr/bin/env python3
import json, os, sys
with open(os.environ["FAKE_LOG"], "w") as f:
    json.dump({"cmd": os.path.basename(sys.argv[0]), "argv": sys.argv[1:], "pid": os.getpid(),
               "ros": os.environ.get("FAKE_ROS"), "ws": os.environ.get("FAKE_WS")}, f)
sys.exit(int(os.environ.get("FAKE_RC", "0")))
"""
ROS_SETUP = """export FAKE_ROS=jazzy
export PATH="{bin}:$PATH"
"""
# The workspace's setup extends the ROS environment: it must run second, and see the first.
WS_SETUP = """[ "$FAKE_ROS" = jazzy ] || {{ echo "workspace setup sourced before ROS" >&2; exit 9; }}
export FAKE_WS="{ws}"
"""


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("ros2", "a2w"):
        (bin_dir / name).write_text(FAKE)
        (bin_dir / name).chmod(0o755)
    (tmp_path / "ros_setup.bash").write_text(ROS_SETUP.format(bin=bin_dir))
    (tmp_path / "ws_setup.bash").write_text(WS_SETUP.format(ws=tmp_path / "ws"))
    return {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "FAKE_LOG": str(tmp_path / "fake.json"),
            "A2W_ROS_SETUP": str(tmp_path / "ros_setup.bash"), "A2W_WS_SETUP": str(tmp_path / "ws_setup.bash")}


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(ENTRYPOINT), *args], env=env, capture_output=True, text=True, timeout=30)


def called(env: dict[str, str]) -> dict | None:
    log = Path(env["FAKE_LOG"])
    return json.loads(log.read_text()) if log.exists() else None


def test_bash_parses_it() -> None:
    proc = subprocess.run(["bash", "-n", str(ENTRYPOINT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_shellcheck_finds_nothing() -> None:
    proc = subprocess.run([linter("shellcheck"), "--severity=style", str(ENTRYPOINT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(("args", "cmd", "argv"), [
    (["rig.launch.xml", "rig:=/config/rig.yaml"], "ros2", ["launch", "a2w", "rig.launch.xml", "rig:=/config/rig.yaml"]),
    (["shadow.launch.xml"], "ros2", ["launch", "a2w", "shadow.launch.xml"]),
    (["teleop.launch.py", "sim:=false", "bind:=0.0.0.0"], "ros2",
     ["launch", "a2w", "teleop.launch.py", "sim:=false", "bind:=0.0.0.0"]),
    (["check"], "a2w", ["rig", "check"]),
    (["check", "/config/my rig.yaml", "--max-age-days", "30"], "a2w",
     ["rig", "check", "/config/my rig.yaml", "--max-age-days", "30"]),
    (["a2w", "calib", "--help"], "a2w", ["calib", "--help"]),
    (["a2w"], "a2w", []),
    (["ros2", "topic", "echo", "/rig/state", "--once"], "ros2", ["topic", "echo", "/rig/state", "--once"]),
])
def test_commands_dispatch_with_their_arguments_intact(env: dict[str, str], args: list[str], cmd: str,
                                                       argv: list[str]) -> None:
    proc = run(env, *args)
    assert proc.returncode == 0, proc.stderr
    got = called(env)
    assert got is not None, f"{args}: nothing was run; stderr: {proc.stderr}"
    assert (got["cmd"], got["argv"]) == (cmd, argv)
    assert (got["ros"], got["ws"]) == ("jazzy", str(Path(env["HOME"]) / "ws")), "setup files not sourced"


def test_a_launch_file_path_is_launched_as_that_file(env: dict[str, str], tmp_path: Path) -> None:
    launch = tmp_path / "my.launch.xml"
    launch.write_text("<launch/>")
    assert run(env, str(launch), "a:=b").returncode == 0
    assert called(env)["argv"] == ["launch", str(launch), "a:=b"]


def test_shell_runs_bash_with_everything_sourced(env: dict[str, str]) -> None:
    proc = run(env, "shell", "-c", 'echo "$FAKE_ROS $FAKE_WS"; command -v ros2')
    assert proc.returncode == 0, proc.stderr
    ros, ws, ros2 = proc.stdout.split()
    assert (ros, ws) == ("jazzy", str(Path(env["HOME"]) / "ws"))
    assert Path(ros2).parent == Path(env["HOME"]) / "bin"


@pytest.mark.parametrize("args", [["check"], ["rig.launch.xml"], ["a2w", "rig", "check"], ["shell", "-c", "exit 0"]])
def test_the_command_replaces_the_entrypoint(env: dict[str, str], args: list[str]) -> None:
    """exec: the command has the entrypoint's pid (so `docker stop` signals reach it) and its exit code
    is the container's."""
    env = {**env, "FAKE_RC": "7"}
    if args[0] == "shell":
        args = ["shell", "-c", 'exec a2w "$@"', "a2w", "x"]
    proc = subprocess.Popen(["bash", str(ENTRYPOINT), *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 7, err
    assert called(env)["pid"] == proc.pid


@pytest.mark.parametrize("args", [["help"], ["-h"], ["--help"]])
def test_help_needs_no_setup(env: dict[str, str], args: list[str]) -> None:
    env = {**env, "A2W_ROS_SETUP": "/nonexistent/setup.bash", "A2W_WS_SETUP": "/nonexistent/ws.bash"}
    proc = run(env, *args)
    assert proc.returncode == 0
    assert proc.stdout.startswith("usage:") and "check" in proc.stdout and "shell" in proc.stdout
    assert called(env) is None


@pytest.mark.parametrize(("args", "message"), [
    ([], "no command given"),
    ([""], "unknown command ''"),
    (["launch"], "unknown command 'launch'"),
    (["rig.launch"], "unknown command 'rig.launch'"),
    (["rig.launch.xml.bak"], "unknown command 'rig.launch.xml.bak'"),
    (["CHECK"], "unknown command 'CHECK'"),
    (["--check"], "unknown command '--check'"),
    (["./missing.launch.xml"], "launch file ./missing.launch.xml not found"),
])
def test_anything_else_is_a_usage_error(env: dict[str, str], args: list[str], message: str) -> None:
    proc = run(env, *args)
    assert proc.returncode == 2
    assert f"entrypoint: {message}" in proc.stderr
    assert "usage:" in proc.stderr and proc.stdout == ""
    assert called(env) is None


@pytest.mark.parametrize("which", ["A2W_ROS_SETUP", "A2W_WS_SETUP"])
def test_a_missing_setup_file_is_named(env: dict[str, str], which: str, tmp_path: Path) -> None:
    missing = tmp_path / "absent" / "setup.bash"
    proc = run({**env, which: str(missing)}, "check")
    assert proc.returncode == 1
    assert f"setup file {missing} not found" in proc.stderr
    assert called(env) is None


def test_the_image_defaults_are_used_without_overrides(env: dict[str, str]) -> None:
    """Without the test's overrides it looks where the Dockerfile builds (absent on this machine)."""
    env = {k: v for k, v in env.items() if not k.startswith("A2W_")}
    proc = run(env, "check")
    if os.path.exists("/opt/ros/jazzy/setup.bash"):
        pytest.skip("a real ROS install is here")
    assert proc.returncode == 1 and "/opt/ros/jazzy/setup.bash not found" in proc.stderr
