"""A wall-clock step (NTP, an operator setting the date) neither silences nor trips the arm node:
the watchdog, arm-data freshness and rates run on the monotonic timeline, while stamps stay wall
time and show the step (issue 12 item 9)."""

from __future__ import annotations

import time

import pytest

from a2w.arms.component import Motion
from a2w.clock import WallClock
from tests.arms.support import hold_targets, make_rig, wait_for


class SteppableWall:
    """time.time() plus an offset the test steps."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.mark.parametrize("step", [-5.0, 5.0, -3600.0, 3600.0])
def test_wall_clock_step_keeps_watchdog_state_and_freshness(step: float) -> None:
    wall = SteppableWall()
    for rig in make_rig(clock=WallClock(time_source=wall), hold_after=0.15, stop_after=0.6):
        assert rig.set_mode("teleop").success
        left, right = hold_targets(rig)
        rig.stream(lambda t: (left, right), 0.3)
        assert rig.arm.motion == Motion.STREAMING
        seen = len(rig.probe.states)
        wall.offset += step  # and the targets stop: the watchdog must still hold, then stop
        # Liveness bounds far below the step (old code: no hold for a backwards step's |step| s;
        # a forward step faulted at once on 'stale' arm data and skipped hold).
        wait_for(lambda: rig.arm.motion == Motion.HOLDING, 2.0, "watchdog hold after the step")
        wait_for(lambda: rig.arm.motion == Motion.STOPPED, 3.0, "watchdog stop after the step")
        wait_for(lambda: len(rig.probe.states) > seen + 20, 3.0, "/arms/state after the step")
        assert abs(rig.probe.states[-1].stamp - wall()) < 1.0, "state stamps are wall time"
        diag = rig.diag()
        assert not diag["fault_history"] and diag["fresh"] == [True, True]
        # Streaming resumes with targets stamped on the stepped wall clock.
        assert rig.set_mode("teleop").success
        left, right = hold_targets(rig)
        rig.stream(lambda t: (left, right), 0.3)
        assert rig.arm.motion == Motion.STREAMING and not rig.diag()["rejected"].get("stale")
