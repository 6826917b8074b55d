"""Gripper tracking: a jammed gripper (commanded to move, it does not) is reported on
/arms/status and in the diagnostics; normal motion at the rate limit and a grasp are not."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from a2w.arms.component import STATUS_TOPIC
from a2w.arms.gripper_watch import GripperWatch
from a2w.host.qos import QoS
from a2w.msgs.arms import ArmsStatus
from a2w.sim.faults import FaultInjector, FaultSpec
from a2w.sim.scene import ARMS
from tests.arms.support import Rig, base_point, hold_targets, make_rig, target, wait_for, world_tcp

TOL, WINDOW, DT = 0.1, 0.5, 0.01


# -- the check on a model gripper ------------------------------------------------------------
def square(rate: float, period: float) -> Callable[[float], float]:
    """Close, open, close... one move per ``period`` s (>= 1 / ``rate``), each rate-limited like
    the arm node's gripper_rate: a continuous command."""
    assert period * rate >= 1.0 - 1e-9

    def cmd(t: float) -> float:
        phase, k = math.modf(t / period)
        goal_from = 1.0 if int(k) % 2 == 0 else 0.0
        travelled = min(1.0, phase * period * rate)
        return goal_from - travelled if goal_from else travelled
    return cmd


def run_model(cmd: Callable[[float], float], speed: float, lag: float, seconds: float,
              width: float = 0.0, stuck_from: float = math.inf) -> list[tuple[float, str]]:
    """A gripper following ``cmd`` ``lag`` s late at ``speed`` (1/s), stopped by an object of
    ``width`` when closing, frozen from ``stuck_from``; the watch's verdicts per 10 ms tick."""
    watch = GripperWatch(TOL, WINDOW)
    pos, out = cmd(0.0), []
    for k in range(int(seconds / DT)):
        t = k * DT
        if t < stuck_from:
            goal = max(cmd(max(0.0, t - lag)), min(width, pos))
            pos += float(np.clip(goal - pos, -speed * DT, speed * DT))
        out.append((t, watch.update(t, cmd(t), pos)))
    return out


speeds = st.floats(0.3, 5.0)  # 1/s: command rate limits and gripper speeds


@settings(max_examples=200, deadline=None)
@given(rate=speeds, speed=speeds, lag=st.floats(0.0, 0.2), dwell=st.floats(0.0, 2.0),
       width=st.sampled_from([0.0, 0.15, 0.47, 0.8, 0.9]))
def test_no_alarm_for_tracking_at_any_speed_or_for_a_grasp(rate, speed, lag, dwell, width) -> None:
    period = 1.0 / rate + dwell
    verdicts = run_model(square(rate, period), speed, lag, 4 * period + 1.0, width=width)
    assert not [v for _, v in verdicts if v]


@settings(max_examples=200, deadline=None)
@given(rate=speeds, speed=speeds, dwell=st.floats(0.3, 2.0), at_rest=st.sampled_from(["closed", "open"]))
def test_a_gripper_that_does_not_move_at_all_is_a_jam(rate, speed, dwell, at_rest) -> None:
    # Jammed at rest (closed at the end of the first move, open at the end of the second), it
    # does not follow the next move: detected once the error passes the tolerance plus the window.
    period = max(1.0 / rate, 1.0 / speed) + dwell
    moves = 1 if at_rest == "closed" else 2
    verdicts = run_model(square(rate, period), speed, 0.0, 4 * period, stuck_from=(moves - 0.02) * period)
    hits = [t for t, v in verdicts if v]
    assert hits and moves * period < hits[0] <= moves * period + TOL / rate + WINDOW + 3 * DT  # 10 ms ticks
    assert ("open" if at_rest == "closed" else "close") in dict(verdicts)[hits[0]]


def test_an_opening_that_stalls_part_way_is_a_jam() -> None:
    period = 2.0
    verdicts = run_model(square(1.0, period), 1.0, 0.0, 2 * period, stuck_from=period + 0.4)
    assert any("open" in v for _, v in verdicts)


def test_watch_parameters_are_checked() -> None:
    for tol, window in ((0.0, 0.5), (1.5, 0.5), (math.nan, 0.5), (0.1, 0.0), (0.1, math.inf), (0.1, -1.0)):
        with pytest.raises(ValueError, match="tolerance" if not 0 < tol <= 1 else "window"):
            GripperWatch(tol, window)


# -- on the sim rig -------------------------------------------------------------------------
def _status_log(rig: Rig) -> list[ArmsStatus]:
    statuses: list[ArmsStatus] = []
    rig.probe.node.create_subscription(STATUS_TOPIC, ArmsStatus, statuses.append, QoS.latched_state())
    return statuses


def _grip(rig: Rig, grips: tuple[float, float], seconds: float) -> None:
    left, right = hold_targets(rig)
    rig.stream(lambda t: (replace(left, gripper_open=grips[0]), replace(right, gripper_open=grips[1])),
               seconds)


def _jam(rig: Rig, arm: int) -> FaultInjector:
    return FaultInjector(rig.world, [FaultSpec("gripper_fail", rig.world.time, ARMS[arm])]).attach()


@pytest.mark.parametrize("arm", [0, 1])
def test_a_jammed_gripper_is_reported_in_both_directions(arm) -> None:
    for rig in make_rig(hold_after=1.0, stop_after=5.0):
        statuses = _status_log(rig)
        assert rig.set_mode("teleop").success
        other = 1 - arm
        for start in (1.0, 0.0):  # jammed open, commanded closed; then jammed closed, commanded open
            goal = 1.0 - start
            _grip(rig, (start, start), 1.5)
            assert abs(rig.read()[arm].gripper_open - start) < 0.05
            injector = _jam(rig, arm)
            _grip(rig, (goal, goal), 1.5)
            assert arm in rig.arm.warnings and other not in rig.arm.warnings
            warning = rig.arm.warnings[arm]
            assert warning.startswith(f"{('left', 'right')[arm]} gripper: jammed")
            assert ("close" if goal == 0.0 else "open") in warning
            assert rig.diag()["warnings"] == [warning]
            wait_for(lambda: statuses and statuses[-1].warnings == (warning,), 1.0, "warning on /arms/status")
            assert rig.arm.motion.value == "streaming"  # a warning: the arms keep going

            injector.detach()
            rig.world.gripper_stuck[ARMS[arm]] = False  # freed: it tracks again, the warning clears
            _grip(rig, (goal, goal), 1.5)
            assert not rig.arm.warnings and rig.diag()["warnings"] == []
            wait_for(lambda: statuses[-1].warnings == (), 1.0, "warning cleared on /arms/status")


@pytest.mark.parametrize("gripper_rate,finger_speed", [(1.0, None), (4.0, None), (1.0, 0.05)])
def test_no_false_alarm_opening_and_closing_at_the_rate_limit(gripper_rate, finger_speed) -> None:
    # The node's rate limit above and below the sim gripper's own speed (0.15 m/s ~ 1.8/s), and a
    # slow gripper (0.05 m/s ~ 0.6/s) that lags the command by far more than the tolerance.
    for rig in make_rig(gripper_rate=gripper_rate, hold_after=1.0, stop_after=5.0):
        if finger_speed is not None:
            rig.backend.params = replace(rig.backend.params, gripper_speed=finger_speed)
        statuses = _status_log(rig)
        assert rig.set_mode("teleop").success
        for grips in ((0.0, 1.0), (1.0, 0.0), (0.0, 0.0), (1.0, 1.0)):
            _grip(rig, grips, 1.0 / gripper_rate + 0.3)
        assert rig.diag()["warnings"] == [] and not any(s.warnings for s in statuses)


def test_no_false_alarm_while_grasping_an_object() -> None:
    for rig in make_rig(task="pick_cube", hold_after=1.0, stop_after=5.0):
        statuses = _status_log(rig)
        assert rig.set_mode("teleop").success
        left, right = hold_targets(rig)
        rig.world.set_object_pose("cube", np.array([0.15, -0.5, 0.02]), 0.0)  # out of the way
        low = world_tcp(rig, 0)
        low[2] = 0.03  # pads around the cube's middle, above the table
        rig.stream(lambda t: (target(base_point(rig, 0, low), left.tcp_pose.quaternion, 1.0), right), 2.0)
        p = world_tcp(rig, 0)
        with rig.world.lock:
            finger_axis = rig.world.data.site_xmat[rig.world.arms["left"].tcp_site].reshape(3, 3)[:, 1]
        # The 4 cm cube between the open pads, on the table, its faces square to the fingers.
        yaw = math.atan2(finger_axis[1], finger_axis[0])
        rig.world.set_object_pose("cube", np.array([p[0], p[1], 0.02]), yaw)

        closed = target(base_point(rig, 0, p), left.tcp_pose.quaternion, 0.0)
        rig.stream(lambda t: (closed, right), 1.0 + 2 * WINDOW)
        grip = rig.read()[0].gripper_open
        assert 0.3 < grip < 0.7  # stopped on the 4 cm cube, far more open than commanded
        lifted = target(base_point(rig, 0, p + [0.0, 0.0, 0.08]), left.tcp_pose.quaternion, 0.0)
        rig.stream(lambda t: (lifted, right), 1.0)
        assert rig.world.body_pose("cube")[0][2] > 0.06  # really held
        assert rig.diag()["warnings"] == [] and not any(s.warnings for s in statuses)
