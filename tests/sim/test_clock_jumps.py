"""A /clock message far from the simulator's time (issue 12 item 8), during the sim launch
in-process: the jump is refused and reported, the physics thread keeps stepping, and the run ends
as it would have without it."""

from __future__ import annotations

import logging
import math
import threading
from pathlib import Path

import pytest

from a2w.host import Host
from a2w.host.host import CLOCK_TOPIC
from a2w.launch import LaunchRunner
from a2w.msgs.diagnostics import DiagnosticLevel, DiagnosticStatus
from a2w.msgs.sim import ClockTick
from tests.support import wait_until

SIM_LAUNCH = Path(__file__).resolve().parents[2] / "launch" / "sim.launch.xml"


@pytest.mark.slow
def test_clock_jumps_during_a_sim_launch_are_refused_reported_and_the_run_ends(caplog) -> None:
    caplog.set_level(logging.ERROR, logger="a2w")
    specs = LaunchRunner().load(SIM_LAUNCH, {"task": "pick_cube", "cameras": "false", "seed": "3"}).nodes
    host = Host(diagnostics_period=0.2)
    for spec in specs:
        host.add(spec)
    sim = host.components["/sim_node"]
    diags: list[DiagnosticStatus] = []
    host.bus.topic("/diagnostics", DiagnosticStatus, "test").taps.append(diags.append)
    # An outside publisher on /clock (a second simulator, `ros2 bag play --clock`, a bad tool).
    clock_topic = host.bus.topic(CLOCK_TOPIC, ClockTick, "test")
    done = threading.Event()
    runner = threading.Thread(target=lambda: (host.spin(duration=240.0, install_signal_handlers=False),
                                              done.set()), daemon=True)
    runner.start()
    try:
        assert wait_until(lambda: host.sim_clock.now() > 0.5, 60.0)
        offsets = [1000.0, -1000.0, 1e9, 3.0, -0.5, math.nan, math.inf, -math.inf]
        for k, offset in enumerate(offsets):
            t = host.sim_clock.now()
            clock_topic.publish(ClockTick(t + offset), False)  # never raises into the publisher
            # The sim clock did not follow the bad tick; physics and the sim clock keep moving.
            assert host.sim_clock.now() < t + 1.0, f"/clock {t + offset} was followed"
            assert wait_until(lambda: sim.world.time > t + 0.2 and host.sim_clock.now() > t + 0.2, 60.0), \
                f"the sim stopped after /clock {t + offset} (sim time {t})"
            assert host.clock_follower.refused == k + 1
        assert host.introspect()["clock_jumps_refused"] == len(offsets)
        assert wait_until(lambda: any(d.name == CLOCK_TOPIC and d.level == DiagnosticLevel.ERROR for d in diags), 10.0)
        jumps = [r for r in caplog.records if "refused a sim clock jump" in r.getMessage()]
        assert jumps and "1000" in jumps[0].getMessage()
        # The run ends by itself, as it does without the bad ticks.
        assert done.wait(200.0), "the run never ended"
    finally:
        host.stop()
        runner.join(30.0)
    assert host.exit_code == 0, host.stop_reason
    assert "task succeeded" in host.stop_reason
    assert all(n.worker_errors == 0 and n.executor.errors == 0 for n in host.nodes), host.introspect()["nodes"]
    assert not [r for r in caplog.records if "crashed" in r.getMessage()]
