"""The ROS tier's isolation harness (tests/ros/support.py): each run gets a namespace with only
loopback and its own domain, its exit status as from a direct child, and nothing it started (a
ros2 daemon that detached, a node a launch left behind) outlives it, also on a timeout."""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.ros.support import run_isolated_cmd, run_isolated_shell


def _running(marker: str) -> list[int]:
    """Pids whose command line contains ``marker`` (zombies excluded: they are already dead)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmdline and state != "Z":
            pids.append(int(entry.name))
    return pids


def _gone(marker: str) -> bool:
    # A SIGKILLed orphan is reaped by init shortly after; wait for that, not for a deadline's sake.
    for _ in range(100):
        if not _running(marker):
            return True
        time.sleep(0.1)
    return False


def _marker() -> str:
    # A sleep length no other process uses: its command line identifies what the run started.
    return f"{7000 + uuid.uuid4().int % 1000}.{uuid.uuid4().int % 10**6:06d}"


def test_the_namespace_has_only_loopback_and_a_private_domain(ros_tier: Path) -> None:
    proc = run_isolated_shell('ip -o link show | cut -d: -f2; echo "$ROS_AUTOMATIC_DISCOVERY_RANGE $ROS_DOMAIN_ID"')
    assert proc.returncode == 0, proc.stderr
    *links, env = proc.stdout.split("\n")[:-1]
    assert [link.strip() for link in links] == ["lo"]
    scope, domain = env.split()
    assert scope == "LOCALHOST" and 1 <= int(domain) <= 100


def test_the_isolation_variables_cannot_be_overridden() -> None:
    for name in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_LOCALHOST_ONLY"):
        with pytest.raises(ValueError, match=name):
            run_isolated_cmd(["true"], env={name: "0"})


def test_exit_status_and_signals_arrive_as_from_a_direct_child(ros_tier: Path) -> None:
    assert run_isolated_cmd(["python", "-c", "raise SystemExit(3)"]).returncode == 3
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        proc = run_isolated_cmd(["python", "-c", f"import os; os.kill(os.getpid(), {int(sig)})"])
        assert proc.returncode == -sig, (sig.name, proc.returncode, proc.stderr)


def test_nothing_a_run_started_outlives_it(ros_tier: Path) -> None:
    detached, background = _marker(), _marker()
    # setsid: a new session, as the ros2 daemon makes; & : a job the script never waits for.
    proc = run_isolated_shell(f"setsid sleep {detached} & sleep {background} & sleep 0.5; echo started")
    assert proc.returncode == 0 and "started" in proc.stdout, proc.stderr
    assert _gone(detached) and _gone(background)


def test_a_timeout_kills_the_whole_run(ros_tier: Path) -> None:
    detached, foreground = _marker(), _marker()
    with pytest.raises(subprocess.TimeoutExpired) as info:
        run_isolated_shell(f"setsid sleep {detached} & echo started; sleep {foreground}", timeout=15)
    assert "started" in (info.value.output or "")
    assert _gone(detached) and _gone(foreground)
