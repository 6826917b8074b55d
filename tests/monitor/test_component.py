"""monitor_node on the in-process host: beside a policy (predictions and chunks), beside teleop
(cameras and arms only), alone, and in the sim stack of launch/sim.launch.xml; the .rrd it writes
read back with Rerun's own reader; the web viewer served on loopback only."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rerun.chunk import RrdReader

from a2w.host import Host
from a2w.host.component import Component, NodeHandle
from a2w.host.host import NodeSpec
from a2w.host.params import Params
from a2w.host.qos import QoS
from a2w.launch import LaunchRunner
from a2w.monitor.component import MonitorNode
from a2w.msgs.cameras import VIEW_NAMES, CameraFrame
from a2w.shadow.component import predicted_topic as shadow_predicted_topic
from tests.monitor.support import FakeRig, PolicyRig, free_port, image, listening, read_rrd, scalars
from tests.support import wait_until

REPO = Path(__file__).resolve().parents[2]
SIM_LAUNCH = REPO / "launch" / "sim.launch.xml"


def run(host: Host, seconds: float) -> None:
    host.start()
    try:
        time.sleep(seconds)
    finally:
        host.stop()
        host.shutdown()


def monitor_params(tmp_path: Path, **kw: Any) -> dict[str, Any]:
    return {"rrd": str(tmp_path / "session.rrd"), "web_port": free_port(), "grpc_port": free_port(), **kw}


def test_beside_a_policy_it_shows_real_predicted_and_their_difference(tmp_path):
    host = Host(diagnostics_period=0.5)
    host.add(NodeSpec(PolicyRig, "rig"))
    mon = host.add(NodeSpec(MonitorNode, "monitor_node", params=monitor_params(tmp_path, serve=False)))
    run(host, 3.5)
    rows = read_rrd(tmp_path / "session.rrd")
    for v in VIEW_NAMES:
        for what in ("real", "predicted", "diff", "diff_mae"):
            assert f"/cameras/{v}/{what}" in rows, (v, what, sorted(rows))
    for e in ("/policy/plan/left/tcp", "/policy/chunk/obs_age", "/arms/left/state/tcp", "/arms/right/target/tcp",
              "/diagnostics/rig/level", "/diagnostics/monitor_node/logged"):
        assert e in rows, (e, sorted(rows))
    # predictions sit on the timeline at the times they predict, up to 2 s past their chunk
    pred = [s for s, _ in rows["/cameras/front/predicted"]]
    real = [s for s, _ in rows["/cameras/front/real"]]
    assert max(pred) > max(real)
    assert mon.dropped == 0 and mon.errors == 0 and not mon.lib.skipped


def test_beside_teleop_and_alone_with_the_web_viewer_on_loopback(tmp_path):
    host = Host(diagnostics_period=0)
    host.add(NodeSpec(FakeRig, "rig"))
    params = monitor_params(tmp_path)
    mon = host.add(NodeSpec(MonitorNode, "monitor_node", params=params))
    host.start()
    try:
        assert wait_until(lambda: bool(listening(params["web_port"])) and bool(listening(params["grpc_port"])),
                          timeout=30), mon.server.output()
        # both servers listen on 127.0.0.1 only (the parameter's default)
        assert listening(params["web_port"]) == ["127.0.0.1"]
        assert listening(params["grpc_port"]) == ["127.0.0.1"]
        url = mon.server.web_url
        assert url.startswith(f"http://127.0.0.1:{params['web_port']}/?url=rerun%2Bhttp")
        page = urllib.request.urlopen(f"http://127.0.0.1:{params['web_port']}/", timeout=10).read()
        assert b"<html" in page.lower() and b"wasm" in page.lower()
        time.sleep(1.5)
        assert mon.diagnostics()["viewer"] == url
    finally:
        host.stop()
        host.shutdown()
    assert mon.server.poll() is not None  # the viewer went with the node
    rows = read_rrd(tmp_path / "session.rrd")
    assert "/cameras/front/real" in rows and "/arms/left/state/tcp" in rows
    assert not any(e.startswith(("/policy", "/cameras/front/predicted", "/cameras/front/diff")) for e in rows)

    # alone: no publisher of anything; it starts, serves and writes a valid, empty recording
    alone = Host(diagnostics_period=0)
    alone.add(NodeSpec(MonitorNode, "monitor_node", params=monitor_params(tmp_path, rrd=str(tmp_path / "alone.rrd"))))
    run(alone, 1.0)
    assert set(read_rrd(tmp_path / "alone.rrd")) <= {"/__properties"}


def test_streams_choose_the_subscriptions(tmp_path):
    host = Host(diagnostics_period=0)
    host.add(NodeSpec(PolicyRig, "rig"))
    host.add(NodeSpec(MonitorNode, "monitor_node", params=monitor_params(tmp_path, serve=False,
                                                                         streams=["arms"])))
    run(host, 1.5)
    rows = read_rrd(tmp_path / "session.rrd")
    assert "/arms/left/state/tcp" in rows
    assert not any(e.startswith(("/cameras", "/policy")) for e in rows)


@pytest.mark.parametrize("params, message", [
    ({"streams": ["cameras", "radar"]}, "unknown ['radar']"),
    ({"serve": False, "rrd": ""}, "nothing to do"),
    ({"views": ["front", "front"]}, "distinct"),
])
def test_bad_parameters_name_the_parameter(tmp_path, params, message):
    host = Host(diagnostics_period=0)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        host.add(NodeSpec(MonitorNode, "monitor_node", params={"rrd": str(tmp_path / "x.rrd"), "serve": False,
                                                               **params}))


def test_in_the_sim_stack_beside_the_policy_node(tmp_path):
    """launch/sim.launch.xml with the policy node on a tiny random checkpoint: its chunks and the
    frames it predicts, beside the cameras, arms, sim and every node's diagnostics."""
    from a2world.policy.bundle import write_random_bundle

    ckpt = write_random_bundle(tmp_path / "policy", ["pick up the cube"], image_size=(32, 32))
    res = LaunchRunner().load(SIM_LAUNCH, {"task": "pick_cube", "policy": str(ckpt)})
    host = Host()
    for spec in res.nodes:
        host.add(spec)
    # as a launch file would give it: the sim's clock, every stream, the viewer on
    mon = host.add(NodeSpec(MonitorNode, "monitor_node", params=monitor_params(tmp_path, use_sim_time=True)))
    host.start()
    try:
        # two chunks with their predicted frames compared, and the cameras' own diagnostics (every
        # second of sim time)
        assert wait_until(lambda: mon.lib.logged["policy"] >= 8 and host.sim_clock.now() >= 3.0, timeout=120), (
            dict(mon.lib.logged), host.sim_clock.now())
        assert wait_until(lambda: all(f"cameras/{v}/diff_mae" in mon.lib.seen for v in VIEW_NAMES), timeout=60)
        assert wait_until(lambda: mon._queue.empty(), timeout=30)
    finally:
        host.stop()
        host.shutdown()
    rows = read_rrd(tmp_path / "session.rrd")
    for e in [f"/cameras/{v}/{what}" for v in VIEW_NAMES for what in ("real", "predicted", "diff")] + [
            "/policy/plan/left/tcp", "/policy/chunk/obs_age", "/arms/left/state/tcp", "/arms/right/target/tcp",
            "/arms/status", "/sim/status", "/diagnostics/camera_node/level", "/diagnostics/camera_node/front/level",
            "/diagnostics/arm_node/level", "/diagnostics/policy_node/level"]:
        assert e in rows, (e, sorted(rows))
    # sim time: the stamps are the sim's seconds from 0, not wall time
    stamps = [s for s, _ in scalars(rows["/arms/left/state/tcp"])]
    assert 0 <= min(stamps) < 60 and np.all(np.diff(stamps) >= 0)
    # each predicted frame sits at the time it predicts: a chunk's 20 frames at 10 fps reach 2 s
    # from its observation, well past the chunk's arrival
    arrivals = [s for s, _ in scalars(rows["/policy/chunk/steps"])]
    predicted = sorted(s for s, _ in rows["/cameras/front/predicted"])
    assert np.allclose(np.diff(predicted[:20]), 0.1) and max(predicted) > min(arrivals) + 1.0
    assert mon.errors == 0 and not mon.lib.skipped


def test_a_viewer_that_cannot_start_is_reported_and_the_rrd_still_written(tmp_path):
    params = monitor_params(tmp_path)
    with socket.socket() as taken:  # another program holds the web port
        taken.bind(("127.0.0.1", params["web_port"]))
        taken.listen()
        host = Host(diagnostics_period=0)
        host.add(NodeSpec(FakeRig, "rig"))
        mon = host.add(NodeSpec(MonitorNode, "monitor_node", params=params))
        assert mon.server is None and mon.diagnostics()["viewer"].startswith("could not start")
        host.start()
        try:
            assert wait_until(lambda: mon.lib.logged["cameras"] >= 10, timeout=30)
        finally:
            host.stop()
            host.shutdown()
        # serving only, with nowhere to serve: the node refuses to start
        with pytest.raises(RuntimeError, match="could not start"):
            Host(diagnostics_period=0).add(NodeSpec(MonitorNode, "m2", params={**params, "rrd": ""}))
    rows = read_rrd(tmp_path / "session.rrd")  # complete: Rerun's reader finds its footer
    assert "/cameras/front/real" in rows and mon.errors == 0
    assert RrdReader(tmp_path / "session.rrd").store() is not None


def test_a_viewer_that_dies_is_started_again(tmp_path):
    params = monitor_params(tmp_path)
    host = Host(diagnostics_period=0)
    host.add(NodeSpec(FakeRig, "rig"))
    mon = host.add(NodeSpec(MonitorNode, "monitor_node", params=params))
    host.start()
    try:
        first = mon.server.proc.pid
        os.killpg(first, signal.SIGKILL)  # the guard and the viewer: as a crash would
        assert wait_until(lambda: mon.viewer_restarts == 1 and mon.server.poll() is None, timeout=30)
        assert mon.server.proc.pid != first and mon.server.wait_ready()
        assert wait_until(lambda: listening(params["web_port"]) == ["127.0.0.1"], timeout=30)
    finally:
        host.stop()
        host.shutdown()
    assert "/cameras/front/real" in read_rrd(tmp_path / "session.rrd")
    assert RrdReader(tmp_path / "session.rrd").store() is not None


KILLED_CHILD = """
import os, sys, time
from a2w.host import Host
from a2w.host.host import NodeSpec
from a2w.monitor.component import MonitorNode
from tests.monitor.support import listening
web, grpc = int(sys.argv[1]), int(sys.argv[2])
host = Host(diagnostics_period=0)
host.add(NodeSpec(MonitorNode, "monitor_node", params={"rrd": sys.argv[3], "web_port": web, "grpc_port": grpc}))
host.start()
deadline = time.monotonic() + 30
while not (listening(web) and listening(grpc)) and time.monotonic() < deadline:
    time.sleep(0.1)
sys.stdout.write("UP\\n" if listening(web) else "DOWN\\n")
sys.stdout.flush()
os.kill(os.getpid(), 9)
"""


def test_the_viewer_goes_with_a_killed_node(tmp_path):
    web, grpc = free_port(), free_port()
    proc = subprocess.run([sys.executable, "-c", KILLED_CHILD, str(web), str(grpc), str(tmp_path / "k.rrd")],
                          capture_output=True, text=True, timeout=120, cwd=REPO,
                          env={**os.environ, "TMPDIR": str(tmp_path)})
    assert proc.returncode == -9 and proc.stdout.strip() == "UP", proc.stdout + proc.stderr
    # no orphan keeps the ports: the guard saw the node's pipe close, stopped the viewer and removed
    # its private directory
    assert wait_until(lambda: not listening(web) and not listening(grpc), timeout=15)
    assert wait_until(lambda: not list(tmp_path.glob("a2w-monitor-rerun-*")), timeout=15)


class ShadowFrames(Component):
    """The shadow's output as it arrives: every second, the 20 re-predicted frames of the past 2 s."""

    def __init__(self, node: NodeHandle, params: Params) -> None:
        super().__init__(node, params)
        self.pubs = {v: node.create_publisher(shadow_predicted_topic(v), CameraFrame, QoS.reliable(40))
                     for v in VIEW_NAMES}
        node.create_timer(1.0, self._window)

    def _window(self) -> None:
        t = self.node.clock.now()
        for v in VIEW_NAMES:
            for i in range(20):
                self.pubs[v].publish(image(v, t - 0.1 * (19 - i), 100))


def test_the_shadows_predictions_are_shown_against_the_real_frames_they_predict(tmp_path):
    host = Host(diagnostics_period=0)
    host.add(NodeSpec(PolicyRig, "rig"))  # the policy's predictions are not what this monitor shows
    host.add(NodeSpec(ShadowFrames, "shadow"))
    mon = host.add(NodeSpec(MonitorNode, "monitor_node", params=monitor_params(
        tmp_path, serve=False, predicted_prefix="/shadow/predicted")))
    run(host, 3.5)
    rows = read_rrd(tmp_path / "session.rrd")
    for what in ("real", "predicted", "diff", "diff_mae"):
        assert "/cameras/front/" + what in rows, (what, sorted(rows))
    pred = [s for s, _ in rows["/cameras/front/predicted"]]
    real = [s for s, _ in rows["/cameras/front/real"]]
    # only the shadow's frames: all of past times (a policy's reach 2 s past its chunk)
    assert pred and max(pred) <= max(real) + 1e-6
    assert mon.errors == 0
