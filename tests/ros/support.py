"""The real-rclpy tier: scripts and ROS 2 command-line tools run with the ROS tier's environment,
each run inside a fresh network namespace with only loopback, ROS_AUTOMATIC_DISCOVERY_RANGE=
LOCALHOST and a private ROS_DOMAIN_ID (docs/architecture.md §10). rclpy is never initialised, and
no ``ros2`` tool started, in the pytest process itself.

Three ways in, all with the same isolation:

- ``run_isolated(script, *args)``: a Python script from tests/ros/scripts/ with the tier's Python;
  it prints ``RESULT <json>`` as its verdict. A script may start more processes (``ros2 launch``,
  ``ros2 topic echo``...) with ``subprocess``: they share its namespace, so it can drive a launch
  and query it. ``tests/ros/netns_cli.py`` has the helpers such a driver script needs; e.g.::

      # tests/ros/scripts/my_driver.py
      from tests.ros.netns_cli import report, ros2, start, stop, wait_until
      launch = start(["ros2", "launch", "a2w", "sim.launch.xml"])
      wait_until(lambda: "/sim" in ros2("node", "list").stdout, timeout=60)
      params = ros2("param", "list", "/sim").stdout
      report({"params": params.split(), "rc": stop(launch)})

      # the test
      rc, out, r = run_isolated("my_driver.py", timeout=180)

- ``run_isolated_cmd(argv)``: one command (``["ros2", "pkg", "executables", "a2w"]``).
- ``run_isolated_shell(script)``: a bash script, for several commands in one namespace
  (``ros2 run a2w sim_node & sleep 5; ros2 node list``).

When the command ends (or times out) every process still in its namespace is killed: a ``ros2``
daemon, a node a launch left behind, a background job of a shell script. Nothing outlives a run.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TIER = ROOT / ".venv" / "ros-tier"
SETUP_BASH = TIER / "ws" / "install" / "setup.bash"
SCRIPTS = Path(__file__).parent / "scripts"

# Inside the namespace: bring up loopback, take the tier's workspace environment, run the command,
# then kill whatever is left in this network namespace (the ros2 daemon detaches from our session
# and process group, so only the namespace finds it), and exit with the command's status, a
# signal re-raised as the same signal so callers see -N as from a direct child.
_INNER = r"""
ip link set lo up || exit 97
source "$0" || exit 98
"$@"
rc=$?
me=$(readlink /proc/$$/ns/net)
for p in /proc/[0-9]*; do
  pid=${p#/proc/}
  [ "$pid" = "$$" ] && continue
  [ "$(readlink "$p/ns/net" 2>/dev/null)" = "$me" ] && kill -KILL "$pid" 2>/dev/null
done
if [ $rc -gt 128 ] && [ $rc -lt 160 ]; then trap - $((rc - 128)); kill -$((rc - 128)) $$; fi
exit $rc
"""


def tier_problem() -> str | None:
    """Why the tier cannot run here, or None."""
    if not (TIER / ".ready").is_file() or not SETUP_BASH.is_file():
        return f"ROS tier not set up ({TIER}); run `bash scripts/setup_ros_tier.sh` (make setup does)"
    probe = subprocess.run(["unshare", "--net", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot create a network namespace (unshare --net: {probe.stderr.strip()})"
    return None


def tier_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a run starts with: this process's, the DDS isolation, then ``env`` on top.

    The tier's venv comes first on PATH (``python`` is the tier's interpreter, as for the
    workspace's console scripts). ``env`` must not override the isolation variables.
    """
    out = dict(os.environ)
    out.update({
        "ROS_DOMAIN_ID": str(random.randint(1, 100)),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), out.get("PYTHONPATH")])),  # tests.*
        "PYTHONUNBUFFERED": "1",
        "PATH": os.pathsep.join([str(TIER / "bin"), out.get("PATH", "/usr/bin:/bin")]),
        "VIRTUAL_ENV": str(TIER),
    })
    # The wheels' bootstrap re-executes Python once with its library path; a flag inherited from
    # an outer tier process would skip that.
    out.pop("_ROS_WHEELS_BOOTSTRAP_COMPLETE", None)
    if env:
        clash = {"ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_LOCALHOST_ONLY"} & set(env)
        if clash:
            raise ValueError(f"{sorted(clash)} are the namespace's isolation; a run may not set them")
        out.update(env)
    return out


def _kill_namespace(pid: int) -> None:
    """SIGKILL every process in the network namespace of ``pid`` (``unshare`` execs the inner bash,
    so the child's pid is in the run's namespace), daemons that left its session included."""
    try:
        ns = os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return
    if ns == os.readlink("/proc/self/ns/net"):
        return  # unshare had not switched yet: nothing of the run is in a namespace of its own
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "ns" / "net") == ns:
                    os.kill(int(entry.name), signal.SIGKILL)
            except OSError:
                continue


def _default_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


def _run_in_netns(argv: Sequence[str], *, timeout: float, env: Mapping[str, str] | None,
                  cwd: Path | str) -> subprocess.CompletedProcess[str]:
    cmd = ["unshare", "--net", "bash", "-c", _INNER, str(SETUP_BASH), *argv]
    # Own session: on a timeout the whole tree goes, not just unshare. Default SIGINT/SIGQUIT: a
    # pytest started as a background job of a script (nohup ... &) inherits them ignored, and a
    # Python child started with SIGINT ignored never turns Ctrl-C into KeyboardInterrupt.
    proc = subprocess.Popen(cmd, env=tier_env(env), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, preexec_fn=_default_signals)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_namespace(proc.pid)
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise subprocess.TimeoutExpired(cmd, timeout, output=out, stderr=err) from None
    return subprocess.CompletedProcess(list(argv), proc.returncode, out, err)


def run_isolated_cmd(argv: Sequence[str], *, timeout: float = 120.0, env: Mapping[str, str] | None = None,
                     cwd: Path | str = ROOT) -> subprocess.CompletedProcess[str]:
    """Run one command (e.g. ``["ros2", "topic", "list"]``) in a fresh loopback-only namespace
    with the tier's workspace sourced. Returns the completed process (stdout, stderr apart).

    ``env`` adds variables (never the isolation ones); raises ``subprocess.TimeoutExpired`` (with
    the output so far) after ``timeout`` seconds, having killed everything the command started.
    """
    if isinstance(argv, str):
        raise TypeError("argv is a sequence of arguments; use run_isolated_shell for a shell line")
    return _run_in_netns(argv, timeout=timeout, env=env, cwd=cwd)


def run_isolated_shell(script: str, *, timeout: float = 120.0, env: Mapping[str, str] | None = None,
                       cwd: Path | str = ROOT) -> subprocess.CompletedProcess[str]:
    """Run a bash script (``set -eu``; several commands, background jobs) in one fresh namespace,
    as ``run_isolated_cmd`` does. Background jobs still running at the end are killed."""
    return _run_in_netns(["bash", "-euc", script], timeout=timeout, env=env, cwd=cwd)


def run_isolated(script: str, *args: str, timeout: float = 120.0,
                 env: Mapping[str, str] | None = None) -> tuple[int, str, dict[str, Any] | None]:
    """Run tests/ros/scripts/<script> with the tier's Python in a loopback-only netns.

    Returns (exit code, combined output, the JSON the script printed after ``RESULT ``).
    """
    proc = _run_in_netns([str(TIER / "bin" / "python"), str(SCRIPTS / script), *args], timeout=timeout,
                         env=env, cwd=ROOT)
    result = None
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT "):])
    return proc.returncode, proc.stdout + proc.stderr, result
