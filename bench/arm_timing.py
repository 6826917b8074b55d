"""The arm node's timing in the sim demo, run as users run it: ``launch/sim.launch.xml`` under
``a2w launch`` (every node a thread of one process: the baseline) and under the real ``ros2 launch``
(sim, cameras and arm in a2w's component_container on the rclpy host, the expert in a process of
its own), cameras running, in the same run of this script.

For each: the run's exit code and wall time, and the arm node's figures from the line it logs at
shutdown (``arm node timing:``): control timer ticks, overruns (ticks skipped because the previous
one ran late) and period error p99 on the node's timeline (sim time, as the launch sets
use_sim_time), and how late the expert's targets arrived after their stamp (p50/p99/max; the
check ``stale_after`` = 0.25 s judges this; the expert stamps them one period, 33 ms, ahead).
Then the ros2 launch / a2w launch ratios of overruns and period error, and the difference of the
target age p99.

``ros2 launch`` runs in a loopback-only network namespace with the ROS tier's environment, as
the ROS tier tests it (tests/ros/support.py); without the tier it says why and measures
``a2w launch`` only.

    .venv/bin/python bench/arm_timing.py [--task pick_cube] [--seed 3] [--cameras true]
"""

from __future__ import annotations

import argparse
import logging
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.ros.support: the tier's namespace runner

from tests.ros.support import run_isolated, tier_problem  # noqa: E402

log = logging.getLogger("bench.arm_timing")
LAUNCH = ROOT / "launch" / "sim.launch.xml"
TIMING = re.compile(r"arm node timing: (.*)")
KEYS = ("control_ticks", "control_overruns", "control_period_err_p99_ms", "target_age_p50_ms",
        "target_age_p99_ms", "target_age_max_ms")


def figures(output: str) -> dict[str, float]:
    found = TIMING.findall(output)
    if not found:
        return {}
    return {k: float(v) for k, v in (item.split("=", 1) for item in found[-1].split())}


def run_a2w(args: list[str]) -> tuple[int, float, str]:
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "a2w.cli", "-v", "launch", str(LAUNCH), *args, "--quiet"],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    return proc.returncode, time.monotonic() - t0, proc.stdout + proc.stderr


def run_ros2(args: list[str]) -> tuple[int, float, str]:
    t0 = time.monotonic()
    rc, out, result = run_isolated("ros2_launch.py", "540", "--", str(LAUNCH), *args, timeout=600)
    if result is None:
        return rc or -1, time.monotonic() - t0, out
    return result["rc"], time.monotonic() - t0, out


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="pick_cube")
    p.add_argument("--seed", default="3")
    p.add_argument("--cameras", default="true")
    a = p.parse_args()
    args = [f"task:={a.task}", f"seed:={a.seed}", f"cameras:={a.cameras}"]
    runs = {"a2w launch": run_a2w}
    problem = tier_problem()
    if problem:
        log.info("ros2 launch not measured: %s", problem)
    else:
        runs["ros2 launch"] = run_ros2
    results: dict[str, dict[str, float]] = {}
    log.info("%-12s %4s %7s  %s", "runner", "exit", "wall s", "  ".join(KEYS))
    for name, fn in runs.items():
        rc, wall, out = fn(args)
        fig = figures(out)
        results[name] = fig
        log.info("%-12s %4d %7.1f  %s", name, rc, wall,
                 "  ".join(f"{fig.get(k, float('nan')):g}" for k in KEYS))
        if not fig:
            log.info("  (no 'arm node timing' line; output tail:)\n%s", out[-3000:])
    if len(results) == 2 and all(results.values()):
        base, ros = results["a2w launch"], results["ros2 launch"]
        for k in ("control_overruns", "control_period_err_p99_ms"):
            if base.get(k):
                log.info("ros2 launch / a2w launch %s: %.2f", k, ros.get(k, float("nan")) / base[k])
        # Ages can be negative (targets are stamped one period ahead): a difference, not a ratio.
        log.info("ros2 launch - a2w launch target_age_p99_ms: %+.1f ms",
                 ros.get("target_age_p99_ms", float("nan")) - base.get("target_age_p99_ms", float("nan")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
