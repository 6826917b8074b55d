"""Three 640x480 camera topics at 30 fps: rclpy between two processes vs the in-process host.

Prints latency (publish stamp -> subscriber callback, wall clock) p50/p99 and CPU time per
delivered frame for both, and rclpy's figures as ratios of the in-process ones measured in the
same run. The rclpy half runs with the ROS tier's Python (scripts/setup_ros_tier.sh) inside a
loopback-only network namespace; without the tier it prints why and measures in-process only.

    .venv/bin/python bench/ros.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from a2w.host.component import Component, NodeHandle
from a2w.host.params import Params, param
from a2w.host.qos import QoS
from a2w.msgs.cameras import VIEW_NAMES, CameraFrame, CameraIntrinsics

ROOT = Path(__file__).resolve().parents[1]
TIER = ROOT / ".venv" / "ros-tier"


class BenchCameras(Component):
    """Publishes the three views at ``fps`` with fresh stamps."""

    @dataclass
    class Params(Params):
        fps: float = param(30.0, "frames per second per view", low=1.0)

    def __init__(self, node: NodeHandle, params: Any) -> None:
        super().__init__(node, params)
        self.img = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
        self.intr = CameraIntrinsics(640, 480, 380.0, 380.0, 319.5, 239.5)
        self.pubs = [node.create_publisher(f"/cameras/{v}/color/image_raw", CameraFrame, QoS.sensor())
                     for v in VIEW_NAMES]
        node.create_timer(1.0 / params.fps, self.tick)

    def tick(self) -> None:
        for v, pub in zip(VIEW_NAMES, self.pubs):
            pub.publish(CameraFrame(v, self.img, time.time(), intrinsics=self.intr))


class BenchSink(Component):
    def __init__(self, node: NodeHandle, params: Any) -> None:
        super().__init__(node, params)
        self.latencies: list[float] = []
        for v in VIEW_NAMES:
            node.create_subscription(f"/cameras/{v}/color/image_raw", CameraFrame,
                                     lambda f: self.latencies.append(time.time() - f.stamp), QoS.sensor())


def _summary(lat: list[float], cpu_s: float) -> dict[str, float]:
    a = np.asarray(lat) * 1e3
    return {"frames": len(lat), "p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99)),
            "cpu_ms_per_frame": cpu_s * 1e3 / max(1, len(lat))}


def in_process(seconds: float) -> dict[str, float]:
    from a2w.host import Host

    host = Host(diagnostics_period=0)
    host.add_component(BenchCameras, "cameras")
    sink = host.add_component(BenchSink, "sink")
    host.start()
    while len(sink.latencies) < 30:
        time.sleep(0.01)
    n0, cpu0 = len(sink.latencies), time.process_time()
    time.sleep(seconds)
    n1, cpu1 = len(sink.latencies), time.process_time()
    host.shutdown()
    out = _summary(sink.latencies[n0:n1], cpu1 - cpu0)
    out["delivered"] = (n1 - n0) / (3 * 30 * seconds)
    return out


def _proc_cpu(pid: int) -> float:
    """utime + stime of a process in seconds (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rclpy_driver(seconds: float) -> dict[str, float]:
    """Runs inside the netns with the tier's Python: cameras in a child process, sink here.
    Latency and CPU are taken over a steady window after discovery and start-up, for both
    processes (the child's Python start-up would otherwise dominate CPU per frame)."""
    import rclpy

    from a2w.ros.host import RosHost

    child = subprocess.Popen([sys.executable, "-m", "a2w.ros.main", "ros:BenchCameras", "--name", "cameras",
                              "--duration", str(seconds + 30.0)])
    rclpy.init()
    host = RosHost(diagnostics_period=0)
    sink = host.add(BenchSink, "sink")
    spinner = threading.Thread(target=host.spin, kwargs={"install_signal_handlers": False})
    spinner.start()
    deadline = time.monotonic() + 30.0
    while len(sink.latencies) < 30 and time.monotonic() < deadline:  # discovered and flowing
        time.sleep(0.05)
    n0, own0, child0 = len(sink.latencies), time.process_time(), _proc_cpu(child.pid)
    time.sleep(seconds)
    n1, own1, child1 = len(sink.latencies), time.process_time(), _proc_cpu(child.pid)
    host.stop()
    spinner.join(30)
    child.terminate()
    child.wait(30)
    rclpy.try_shutdown()
    window = sink.latencies[n0:n1]
    out = _summary(window, (own1 - own0) + (child1 - child0))
    out["delivered"] = len(window) / (3 * 30 * seconds)
    return out


def rclpy_isolated(seconds: float) -> dict[str, float] | str:
    if not (TIER / ".ready").is_file():
        return f"skipped: ROS tier not set up ({TIER}); run bash scripts/setup_ros_tier.sh"
    env = {**os.environ, "ROS_DOMAIN_ID": str(random.randint(1, 100)),
           "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "bench"), os.environ.get("PYTHONPATH")]))}
    inner = 'ip link set lo up && source "$0" && exec "$@"'
    cmd = ["unshare", "--net", "bash", "-c", inner, str(TIER / "ws" / "install" / "setup.bash"),
           str(TIER / "bin" / "python"), str(Path(__file__).resolve()), "--rclpy-driver", "--seconds", str(seconds)]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds * 10 + 120)
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    return f"failed (rc {p.returncode}): {(p.stdout + p.stderr)[-1500:]}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rclpy-driver", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.rclpy_driver:
        print("RESULT " + json.dumps(rclpy_driver(a.seconds)))
        return 0
    base = in_process(a.seconds)
    print(f"in-process host: {base['frames']} frames, latency p50 {base['p50_ms']:.3f} ms, "
          f"p99 {base['p99_ms']:.3f} ms, CPU {base['cpu_ms_per_frame']:.3f} ms/frame")
    ros = rclpy_isolated(a.seconds)
    if isinstance(ros, str):
        print(f"rclpy (2 processes): {ros}")
        return 0
    print(f"rclpy (2 processes, rmw_fastrtps_cpp): {ros['frames']} frames, latency p50 {ros['p50_ms']:.3f} ms, "
          f"p99 {ros['p99_ms']:.3f} ms, CPU {ros['cpu_ms_per_frame']:.3f} ms/frame")
    print(f"ratio rclpy / in-process: latency p50 x{ros['p50_ms'] / base['p50_ms']:.1f}, "
          f"p99 x{ros['p99_ms'] / base['p99_ms']:.1f}, "
          f"CPU/frame x{ros['cpu_ms_per_frame'] / base['cpu_ms_per_frame']:.1f}; "
          f"delivered {ros['delivered']:.0%} vs {base['delivered']:.0%} of the frames sent in the window")
    return 0


if __name__ == "__main__":
    sys.exit(main())
