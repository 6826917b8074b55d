"""The sim node in the in-process host: /clock drives the sim clock, other components attach to
its world, the expert runs on sim time, faults are published with their onsets."""

from __future__ import annotations

import threading
import time

import pytest

from a2w.cameras.source import CameraConfig
from a2w.host import Host
from a2w.msgs.sim import FaultEvent, SimStatus
from a2w.nodes import load
from a2w.cameras.sim.source import SimCameraSource
from a2w.sim.component import FAULT_TOPIC, STATUS_TOPIC, SimNode
from a2w.sim.world import get_world


def _wait(cond, timeout: float = 30.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return False


def test_registered_as_sim_node() -> None:
    assert load("sim_node") is SimNode


def test_clock_world_and_camera_share_sim_time() -> None:
    host = Host(diagnostics_period=0)
    host.add_component(SimNode, "sim", task="none", realtime_factor=0.0, max_width=64, max_height=48,
                       world_name="t_clock")
    host.start()
    try:
        world = get_world("t_clock")
        cam = SimCameraSource(CameraConfig("front", width=64, height=48), world_name="t_clock")
        cam.open()
        cam.start()
        frame = cam.wait_frame(10.0)
        # Frames are stamped with world time; /clock publishes it after each stepped chunk, so
        # the host's sim clock reaches every frame's stamp within one chunk (not before it).
        assert frame.stamp <= world.time + 1e-9
        assert _wait(lambda: host.sim_clock.now() >= frame.stamp - 1e-9)
        assert _wait(lambda: host.sim_clock.now() > 0.3)
        assert abs(frame.stamp * 30 - round(frame.stamp * 30)) < 1e-6  # on the 30 Hz grid
        cam.close()
    finally:
        host.shutdown()
    with pytest.raises(LookupError):
        get_world("t_clock")


def test_expert_run_reports_success_and_faults_on_topics() -> None:
    host = Host(diagnostics_period=0)
    statuses: list[SimStatus] = []
    faults: list[FaultEvent] = []
    lock = threading.Lock()

    def on_status(m: SimStatus) -> None:
        with lock:
            statuses.append(m)

    def on_fault(m: FaultEvent) -> None:
        with lock:
            faults.append(m)

    host.add_component(SimNode, "sim", task="pick_cube", seed=0, realtime_factor=0.0,
                       run_expert=True, faults=["camera_black"], fault_window=[0.5, 1.0],
                       world_name="t_expert", max_width=64, max_height=48)
    host.bus.topic(STATUS_TOPIC, SimStatus, "test").taps.append(on_status)
    host.bus.topic(FAULT_TOPIC, FaultEvent, "test").taps.append(on_fault)
    host.start()
    try:
        assert _wait(lambda: any(s.success for s in list(statuses)), 60.0), statuses[-1:]
    finally:
        host.shutdown()
    with lock:
        assert len(faults) == 1 and 0.5 <= faults[0].onset <= 1.0 + 1e-9
        done = [s for s in statuses if s.success]
        assert done[0].faults == (f"camera_black@{faults[0].onset:.3f}:{faults[0].target}",)
        assert all(b.stamp > a.stamp for a, b in zip(statuses, statuses[1:]))


def test_bad_parameters_name_the_field() -> None:
    host = Host(diagnostics_period=0)
    with pytest.raises(ValueError, match="task"):
        host.add_component(SimNode, "sim", task="juggle")
    with pytest.raises(ValueError, match="left_base"):
        host.add_component(SimNode, "sim2", left_base=[0.0, 1.0])
    with pytest.raises(ValueError, match="faults"):
        host.add_component(SimNode, "sim3", faults=["meteor"], world_name="t_bad")
    host.shutdown()
