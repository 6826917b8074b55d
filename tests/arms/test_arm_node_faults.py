"""Operator-side faults recover once released (not before), and a lost or frozen arm link is a
communication fault that stops streaming and that /arms/state consumers can see."""

from __future__ import annotations

import time
from typing import Any, Callable

import pytest

from a2w.arms.backend import RECOVERABLE, ArmError, FaultKind, RecoveryRefused
from a2w.arms.component import STATUS_TOPIC, Motion
from a2w.host.qos import QoS
from a2w.msgs.arms import ARM_NAMES, ArmsStatus, ControlMode
from tests.arms.support import Rig, hold_targets, make_rig, target, wait_for

OPERATOR_KINDS = [k for k in FaultKind if k not in RECOVERABLE]


def _engage_all(rig: Rig, kind: FaultKind, arm: int) -> Callable[[], None]:
    """Engage an operator-side ``kind`` on ``arm`` (-1: the rig's e-stop); returns the release."""
    if arm < 0:
        rig.backend.press_estop()
        return rig.backend.release_estop
    rig.backend.inject_fault(arm, kind, f"{kind.value} condition at the robot")
    return lambda: rig.backend.release_operator_fault(arm)


def _moves_again(rig: Rig) -> None:
    assert rig.set_mode("teleop").success
    left, right = hold_targets(rig)
    z0 = rig.read()[0].tcp_pose.position[2]
    up = target(left.tcp_pose.position + [0.0, 0.0, 0.03], left.tcp_pose.quaternion)
    rig.stream(lambda t: (up, right), 0.6)
    assert rig.read()[0].tcp_pose.position[2] - z0 > 0.02


def test_every_non_recoverable_kind_is_covered() -> None:
    assert set(OPERATOR_KINDS) == {FaultKind.ESTOP, FaultKind.OPERATOR}


@pytest.mark.parametrize("kind,arm", [(FaultKind.ESTOP, -1), (FaultKind.ESTOP, 1), (FaultKind.OPERATOR, 0),
                                      (FaultKind.OPERATOR, 1)])
def test_operator_fault_recovery_is_refused_while_engaged_and_granted_after_release(rig, kind, arm) -> None:
    assert rig.set_mode("teleop").success
    release = _engage_all(rig, kind, arm)
    wait_for(lambda: rig.arm.motion == Motion.FAULTED, 2.0, "operator fault")
    for _ in range(2):  # refused again and again while the condition holds
        out = rig.recover()
        assert not out.success and "needs the operator" in out.message, out
        assert rig.arm.motion == Motion.FAULTED
    assert any(f.kind == kind for f in rig.arm.faults)

    release()
    # Still latched: a release alone does not resume motion.
    time.sleep(0.2)
    assert rig.arm.motion == Motion.FAULTED and rig.arm.ownership.mode == ControlMode.IDLE
    out = rig.recover()
    assert out.success, out.message
    wait_for(lambda: rig.arm.recovery_ok is True, 5.0, "recovery")
    assert rig.backend.fault(0) is None and rig.backend.fault(1) is None
    assert rig.arm.ownership.mode == ControlMode.TELEOP  # the owner's mode is re-entered
    _moves_again(rig)


# -- lost and frozen links ---------------------------------------------------------------
class Link:
    """The sim backend's own ``read`` behind a switch: 'up'; 'down' (the read raises, as a
    lost connection does); 'frozen' (the arms in ``arms`` keep returning their last data)."""

    def __init__(self, read: Callable[[], Any]) -> None:
        self._read = read
        self.mode = "up"
        self.arms: tuple[int, ...] = ()
        self._last: Any = None

    def __call__(self) -> Any:
        if self.mode == "down":
            raise ArmError("sim link down (test)")
        states = self._read()
        if self.mode == "frozen" and self._last is not None:
            states = tuple(self._last[i] if i in self.arms else s for i, s in enumerate(states))
        self._last = states
        return states


def _streaming(rig: Rig) -> tuple[Any, Any]:
    assert rig.set_mode("teleop").success
    left, right = hold_targets(rig)
    rig.send(left, right, lead=0.1)
    wait_for(lambda: rig.arm.motion == Motion.STREAMING, 2.0, "streaming")
    return left, right


def _keep_sending(rig: Rig, left: Any, right: Any, seconds: float) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        rig.send(left, right, lead=0.05)
        time.sleep(0.02)


@pytest.mark.parametrize("how,arms", [("down", (0, 1)), ("frozen", (0,)), ("frozen", (1,)),
                                      ("frozen", (0, 1))])
def test_lost_link_faults_stops_streaming_and_consumers_can_tell(rig, monkeypatch, how, arms) -> None:
    statuses: list[ArmsStatus] = []
    rig.probe.node.create_subscription(STATUS_TOPIC, ArmsStatus, statuses.append, QoS.latched_state())
    link = Link(rig.backend.read)
    monkeypatch.setattr(rig.backend, "read", link)
    left, right = _streaming(rig)
    wait_for(lambda: len(rig.probe.states) > 5
             and rig.probe.states[-1].left.fresh and rig.probe.states[-1].right.fresh, 2.0, "fresh states")
    link.mode, link.arms = how, arms
    cut = rig.now()

    wait_for(lambda: rig.arm.motion == Motion.FAULTED, 2.0, "communication fault")
    assert {f.kind for f in rig.arm.faults} == {FaultKind.COMMUNICATION}
    wait_for(lambda: statuses and statuses[-1].motion == "faulted", 1.0, "fault on /arms/status")
    assert any("communication" in f for f in statuses[-1].faults)
    if how == "frozen":
        wait_for(lambda: {f.arm for f in rig.arm.faults} == set(arms), 1.0, "a fault per frozen arm")
        assert all(ARM_NAMES[f.arm] in f.text for f in rig.arm.faults)
    time.sleep(0.1)  # let what was published before the fault arrive
    sent = rig.diag()["commands_sent"]
    n_states = len(rig.probe.states)
    _keep_sending(rig, left, right, 0.4)  # the owner keeps streaming targets
    assert rig.diag()["commands_sent"] == sent  # nothing reaches the arms
    assert rig.arm.motion == Motion.FAULTED

    new = rig.probe.states[n_states:]
    if how == "down":
        # Nothing is published rather than old data under a new stamp; what was published last
        # is stamped with when it was read, before the cut (or, for a read already under way when
        # the link went down, within one state period after it).
        assert not new
        assert rig.probe.states[-1].stamp <= cut + 0.01
    else:
        assert len(new) > 5
        stamps = [s.stamp for s in new]
        assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)  # each read published once
        for s in new:
            for i in range(2):
                assert s.arm(i).fresh == (i not in arms), (i, s.arm(i).fresh)
        assert rig.diag()["fresh"] == [i not in arms for i in range(2)]

    link.mode = "up"
    out = rig.recover()
    assert out.success, out.message
    wait_for(lambda: rig.arm.recovery_ok is True, 5.0, "recovery")
    wait_for(lambda: len(rig.probe.states) > n_states + len(new) + 3, 2.0, "states again")
    last = rig.probe.states[-1]
    assert last.left.fresh and last.right.fresh and last.stamp > cut
    _moves_again(rig)


def test_frozen_data_while_stopped_is_marked_stale_without_a_fault(rig, monkeypatch) -> None:
    # Stopped, nothing is commanded from the data (and a robot's Stop may block its state for a
    # while): consumers see fresh=False, and fresh data again once it flows, without a recover.
    link = Link(rig.backend.read)
    monkeypatch.setattr(rig.backend, "read", link)
    assert rig.set_mode("idle").success and rig.arm.motion == Motion.STOPPED
    n = len(rig.probe.states)
    link.mode, link.arms = "frozen", (1,)
    wait_for(lambda: any(not s.right.fresh for s in rig.probe.states[n:]), 2.0, "stale right arm")
    assert all(s.left.fresh for s in rig.probe.states[n:])
    assert rig.arm.motion == Motion.STOPPED and not rig.arm.faults
    link.mode = "up"
    n = len(rig.probe.states)
    wait_for(lambda: len(rig.probe.states) > n + 3 and rig.probe.states[-1].right.fresh, 2.0, "fresh again")
    # Commanding again needs fresh data: freezing it while streaming faults.
    _streaming(rig)
    link.mode = "frozen"
    wait_for(lambda: rig.arm.motion == Motion.FAULTED, 2.0, "communication fault")
    assert [(f.arm, f.kind) for f in rig.arm.faults] == [(1, FaultKind.COMMUNICATION)]


def test_published_state_is_stamped_with_its_read_and_never_repeated(rig) -> None:
    wait_for(lambda: len(rig.probe.states) > 20, 2.0, "states")
    states = list(rig.probe.states)
    stamps = [s.stamp for s in states]
    assert len(set(stamps)) == len(stamps)
    # A read from the arm node's clock: never ahead of now, and the sim data advances with it.
    assert stamps[-1] <= rig.now()
    sim = [s.left.stamp for s in states]
    assert sim == sorted(sim) and sim[-1] > sim[0]
    assert all(s.left.fresh and s.right.fresh for s in states)


def test_state_timeout_must_be_a_positive_time() -> None:
    for bad in (0.0, -1.0, 100.0):
        with pytest.raises(ValueError, match="state_timeout"):
            next(make_rig(state_timeout=bad))



@pytest.mark.parametrize("error,said", [(ArmError("clear fault timed out"), "recovery failed: clear fault timed out"),
                                        (RecoveryRefused("pendant in manual"), "recovery refused: pendant in manual")])
def test_a_failed_recovery_leaves_the_arms_faulted_and_a_later_one_can_succeed(rig, monkeypatch, error, said) -> None:
    assert rig.set_mode("teleop").success
    rig.backend.inject_fault(0, FaultKind.EXCESSIVE_FORCE, "External force exceeds the limit")
    wait_for(lambda: rig.arm.motion == Motion.FAULTED, 2.0, "fault")
    clear = rig.backend.clear_fault

    def failing() -> None:
        raise error

    monkeypatch.setattr(rig.backend, "clear_fault", failing)
    assert rig.recover().success
    wait_for(lambda: rig.arm.recovery_ok is False, 5.0, "the recovery's failure")
    assert rig.arm.motion == Motion.FAULTED and rig.arm.message == said
    monkeypatch.setattr(rig.backend, "clear_fault", clear)
    assert rig.recover().success
    wait_for(lambda: rig.arm.recovery_ok is True, 5.0, "recovery")
    assert rig.arm.ownership.mode == ControlMode.TELEOP
