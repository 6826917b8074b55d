"""Arm node timing on the simulated rig: target-to-backend latency and command-period jitter at
100 Hz while the node also publishes RigState and /joint_states at 100 Hz, as ratios to a bare
loop measured in the same run (same producer, same backend, same machine load).

    .venv/bin/python bench/arms.py [--seconds 5]

Latency: from publishing a target on /arms/target to the backend's command() call that carries
it. Jitter: |period - 10 ms| between successive command() calls. The bare loop is a plain thread
ticking at 100 Hz on the same clock, streaming the newest target straight to the backend.
Safety limits are set wide so the commanded pose equals the target and each can be recognised.
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from typing import Any

import numpy as np

from a2w.arms.component import SET_MODE_SERVICE, ArmNode, Motion
from a2w.arms.sim.backend import SimRigBackend
from a2w.clock import WallClock
from a2w.host import Component, Host
from a2w.host.host import NodeSpec
from a2w.host.qos import QoS
from a2w.msgs.arms import ArmTarget, ControlMode, RigTarget
from a2w.msgs.common import Pose
from a2w.msgs.services import SetControlModeRequest
from a2w.sim.scene import SceneConfig
from a2w.sim.world import SimRunner, SimWorld, register_world, unregister_world

RATE = 100.0
STEP = 1e-4  # m of x per target: 10 mm/s, a recognisable but gentle ramp


class _Pub(Component):
    def __init__(self, node: Any, params: Any) -> None:
        super().__init__(node, params)
        self.pub = node.create_publisher("/arms/target", RigTarget, QoS.reliable(10))
        self.set_mode = node.create_client(SET_MODE_SERVICE, SetControlModeRequest)


class Recorder:
    """Wraps a backend's command(): when each call happened and which target k it carried."""

    def __init__(self, backend: SimRigBackend, x0: float) -> None:
        self.backend = backend
        self.inner = backend.command
        self.x0 = x0
        self.calls: list[tuple[float, int]] = []

    def __call__(self, targets: tuple[ArmTarget, ArmTarget]) -> None:
        t = time.monotonic()
        k = int(round((float(targets[0].tcp_pose.position[0]) - self.x0) / STEP))
        self.calls.append((t, k))
        self.inner(targets)


def _targets(base: tuple[Any, Any], k: int) -> tuple[ArmTarget, ArmTarget]:
    left, right = base
    pos = np.array(left.tcp_pose.position) + [k * STEP, 0.0, 0.0]
    return ArmTarget(Pose(pos, left.tcp_pose.quaternion), 1.0), ArmTarget(right.tcp_pose, 1.0)


def _produce(send: Any, base: Any, seconds: float, sent: dict[int, float], stop: threading.Event) -> None:
    clock, cancel = WallClock(), threading.Event()
    t_next = clock.now()
    k = 0
    end = time.monotonic() + seconds
    # Offset by a third of a period from the consumer so latency is not aliased to 0 or 10 ms.
    clock.wait_until(t_next + 0.0033, cancel)
    while time.monotonic() < end and not stop.is_set():
        k += 1
        sent[k] = time.monotonic()
        send(_targets(base, k))
        t_next += 1.0 / RATE
        clock.wait_until(t_next + 0.0033, cancel)


def _figures(rec: Recorder, sent: dict[int, float]) -> dict[str, float]:
    first: dict[int, float] = {}
    for t, k in rec.calls:
        if k > 0 and k not in first:
            first[k] = t
    lat = np.array([first[k] - sent[k] for k in sent if k in first]) * 1e3
    times = np.array([t for t, _ in rec.calls])
    jit = np.abs(np.diff(times) - 1.0 / RATE) * 1e3
    return {"lat_p50": float(np.percentile(lat, 50)), "lat_p99": float(np.percentile(lat, 99)),
            "jit_p50": float(np.percentile(jit, 50)), "jit_p99": float(np.percentile(jit, 99)),
            "n": float(len(lat)), "missed": float(len(sent) - len(lat))}


def run_node(world: SimWorld, name: str, seconds: float) -> tuple[dict[str, float], float]:
    host = Host(diagnostics_period=0)
    arm = host.add(NodeSpec(ArmNode, "arm_node", params={
        "backend": "sim", "sim.world_name": name, "sim.command_rate": RATE, "state_rate": RATE,
        "hold_after": 0.5, "stop_after": 2.0, "max_linear_vel": 2.0, "max_linear_acc": 100.0,
        "max_angular_vel": 10.0, "max_angular_acc": 1000.0}))
    pub = host.add(NodeSpec(_Pub, "bench_pub"))
    host.start()
    deadline = time.monotonic() + 10
    while arm.motion != Motion.HOLDING and time.monotonic() < deadline:
        time.sleep(0.01)
    resp = pub.set_mode.call(SetControlModeRequest(ControlMode.POLICY, "bench_pub"))
    if not resp.success:
        raise RuntimeError(f"the arm node refused policy mode: {resp.message}")
    base = arm.backend.read()
    rec = Recorder(arm.backend, float(base[0].tcp_pose.position[0]))
    arm.backend.command = rec  # type: ignore[method-assign]
    sent: dict[int, float] = {}
    clock = arm.clock

    def send(t: tuple[ArmTarget, ArmTarget]) -> None:
        pub.pub.publish(RigTarget(t[0], t[1], clock.now(), ControlMode.POLICY, "bench_pub"))

    published0 = host.bus.get("/arms/state").published
    t0 = time.monotonic()
    _produce(send, base, seconds, sent, threading.Event())
    state_rate = (host.bus.get("/arms/state").published - published0) / (time.monotonic() - t0)
    time.sleep(0.05)
    host.shutdown()
    return _figures(rec, sent), state_rate


def run_bare(world: SimWorld, seconds: float) -> dict[str, float]:
    backend = SimRigBackend(world)
    backend.connect()
    base = backend.read()
    rec = Recorder(backend, float(base[0].tcp_pose.position[0]))
    latest: list[tuple[ArmTarget, ArmTarget] | None] = [None]
    stop = threading.Event()

    def loop() -> None:
        clock, cancel = WallClock(), threading.Event()
        t_next = clock.now()
        while not stop.is_set():
            if latest[0] is not None:
                rec(latest[0])
            t_next += 1.0 / RATE
            clock.wait_until(t_next, cancel)

    th = threading.Thread(target=loop, daemon=True)
    th.start()
    sent: dict[int, float] = {}

    def send(t: tuple[ArmTarget, ArmTarget]) -> None:
        latest[0] = t

    _produce(send, base, seconds, sent, stop)
    stop.set()
    th.join(2.0)
    backend.close()
    return _figures(rec, sent)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    name = "bench-arms"
    world = SimWorld(SceneConfig(task="none", max_width=160, max_height=120))
    register_world(name, world)
    runner = SimRunner(world, realtime_factor=1.0).start()
    try:
        bare = run_bare(world, args.seconds)
        node, state_rate = run_node(world, name, args.seconds)
    finally:
        runner.stop()
        unregister_world(name, world)
        world.close()
    print(f"arm node on the sim rig at {RATE:.0f} Hz, {args.seconds:.0f} s per run "
          f"(node published RigState at {state_rate:.1f} Hz meanwhile)")
    print(f"{'':26s}{'node':>10s}{'bare loop':>12s}{'ratio':>8s}")
    for key, label in (("lat_p50", "latency p50 (ms)"), ("lat_p99", "latency p99 (ms)"),
                       ("jit_p50", "period jitter p50 (ms)"), ("jit_p99", "period jitter p99 (ms)")):
        ratio = node[key] / bare[key] if bare[key] > 0 else float("inf")
        print(f"{label:26s}{node[key]:10.3f}{bare[key]:12.3f}{ratio:8.2f}")
    print(f"targets matched: node {node['n']:.0f} (missed {node['missed']:.0f}), "
          f"bare {bare['n']:.0f} (missed {bare['missed']:.0f})")


if __name__ == "__main__":
    main()
