"""The arm supervisor (a2w.arms.supervisor) without a host, a backend or a clock: every call gets the
times the test chooses, wall time (``now``: stamps) and the monotonic timeline (``mono``:
durations), so the state machine, target acceptance, watchdog, freshness, faults and recovery
are checked step by step."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from a2w.arms.backend import Fault, FaultKind
from a2w.arms.commander import Commander, Step
from a2w.arms.kinematics import TRI_BASE_POSES, RigFrames
from a2w.arms.safety import MotionLimits, WorkspaceBox
from a2w.arms.supervisor import Effect, Motion, RejectReason, Supervisor
from a2w.geometry import xyz_rpy_to_matrix
from a2w.msgs.arms import ArmState, ArmTarget, ControlMode, RigTarget
from a2w.msgs.common import Pose
from a2w.msgs.services import SetControlModeRequest

FRAMES = RigFrames([xyz_rpy_to_matrix(p[:3], p[3:]) for p in (TRI_BASE_POSES["left"], TRI_BASE_POSES["right"])])
Q0 = np.array([0.0, 0.0, 0.0, 1.0])
TCP = (np.array([0.0, 0.25, 0.3]), np.array([0.0, -0.25, 0.3]))  # world frame, well inside the boxes
HOLD_AFTER, STOP_AFTER, STATE_TIMEOUT, STALE_AFTER, MAX_LEAD = 0.2, 1.0, 0.25, 0.25, 2.5
DT = 0.01
OWNER = "teleop_node"


def forge(cls: type, **fields: Any) -> Any:
    """An instance of a message class built around its constructor's checks, as a buggy codec or
    producer can hand one over."""
    obj = object.__new__(cls)
    for k, v in fields.items():
        object.__setattr__(obj, k, v)
    return obj


class Drive:
    """A supervisor and the times it is driven with."""

    def __init__(self, initial: ControlMode = ControlMode.HOLD, wall: float = 1.7e9, mono: float = 100.0) -> None:
        commander = Commander(FRAMES, MotionLimits(), [WorkspaceBox([-0.375, -0.7, 0.03], [0.2, 0.7, 0.9])] * 2,
                              [0.08, 0.07, 0.06, 0.05, 0.06], 0.05, DT)
        self.sup = Supervisor(commander, initial_mode=initial, hold_after=HOLD_AFTER, stop_after=STOP_AFTER,
                              stale_after=STALE_AFTER, max_lead=MAX_LEAD, state_timeout=STATE_TIMEOUT,
                              gripper_tolerance=0.1, gripper_jam_after=0.5)
        self.wall, self.mono = wall, mono
        self.arm_stamps = [0.0, 0.0]
        self.frozen: set[int] = set()
        self.grip_measured = [1.0, 1.0]
        self.grip_wanted = (0.5, 0.5)

    def states(self) -> tuple[ArmState, ArmState]:
        return tuple(ArmState(FRAMES.to_base(i, TCP[i], Q0), np.zeros(7), np.zeros(7), np.zeros(6),
                              self.grip_measured[i], self.arm_stamps[i]) for i in range(2))  # type: ignore[return-value]

    def connect(self) -> Effect:
        self.sup.connected(self.states(), self.wall, self.mono)
        return self.sup.take_effects()

    def advance(self, dt: float, wall_step: float = 0.0) -> None:
        """``dt`` passes (the arms' data moves on unless frozen); the wall clock also steps by ``wall_step``."""
        self.mono += dt
        self.wall += dt + wall_step
        for i in range(2):
            if i not in self.frozen:
                self.arm_stamps[i] += dt

    def tick(self, faults: tuple[Fault, ...] = ()) -> Step | None:
        """One control tick: read, supervise, and send the step (the backend accepts it)."""
        states = self.states()
        self.sup.observe(states, self.wall, self.mono)
        step = self.sup.tick(states, faults, self.wall, self.mono)
        if step is not None:
            self.sup.commanded(step, states, self.mono)
        return step

    def run(self, seconds: float, feed: bool = False, **tick: Any) -> None:
        """Ticks for ``seconds``; ``feed``: the owner sends a target before each."""
        for _ in range(round(seconds / DT)):
            self.advance(DT)
            if feed:
                self.send()
            self.tick(**tick)

    def set_mode(self, mode: ControlMode, who: str = OWNER, override: bool = False) -> Any:
        return self.sup.set_mode(SetControlModeRequest(mode, who, override), self.wall, self.mono)

    def message(self, lead: float = 0.05, source: ControlMode = ControlMode.TELEOP, who: str = OWNER) -> RigTarget:
        arms = [ArmTarget(FRAMES.to_base(i, TCP[i] + [0.0, 0.0, 0.02], Q0), self.grip_wanted[i]) for i in range(2)]
        return RigTarget(arms[0], arms[1], self.wall + lead, source, who)

    def send(self, *msg: Any) -> Any:
        """Deliver ``msg`` (the owner's target by default)."""
        return self.sup.target(msg[0] if msg else self.message(), self.wall, self.mono)

    def streaming(self) -> None:
        assert self.set_mode(ControlMode.TELEOP).success
        assert self.send() is None and self.sup.motion == Motion.STREAMING
        self.sup.take_effects()


def test_connecting_leads_to_the_initial_mode_and_a_failed_connect_to_disconnected() -> None:
    for initial, motion in ((ControlMode.HOLD, Motion.HOLDING), (ControlMode.IDLE, Motion.STOPPED)):
        d = Drive(initial)
        assert d.sup.motion == Motion.CONNECTING and not d.sup.supervising
        assert not d.set_mode(ControlMode.HOLD).success  # nothing to hand over yet
        fx = d.connect()
        assert d.sup.motion == motion and d.sup.ownership.mode == initial and d.sup.supervising
        assert fx == Effect.STATUS  # nothing to stop: nothing was streamed
    d = Drive()
    d.sup.disconnected("connect failed: no robot")
    assert d.sup.motion == Motion.DISCONNECTED and not d.sup.supervising
    assert d.sup.take_effects() == Effect.STATUS and d.sup.status(0.0).message == "connect failed: no robot"


def _bad_messages(d: Drive) -> list[tuple[Any, RejectReason]]:
    good = d.message()
    left = good.left
    bad: list[tuple[Any, RejectReason]] = []
    for other in (None, "target", 3, good.left, {"left": good.left}):
        bad.append((other, RejectReason.MALFORMED))
    for k in range(3):
        for v in (math.nan, math.inf, -math.inf):
            p = np.array(left.tcp_pose.position)
            p[k] = v
            arm = forge(ArmTarget, tcp_pose=forge(Pose, position=p, quaternion=left.tcp_pose.quaternion),
                        gripper_open=0.5)
            bad.append((forge(RigTarget, left=arm, right=good.right, stamp=good.stamp, source=good.source,
                              requester=OWNER), RejectReason.NON_FINITE))
    for g in (math.nan, math.inf):
        arm = forge(ArmTarget, tcp_pose=good.right.tcp_pose, gripper_open=g)
        bad.append((forge(RigTarget, left=left, right=arm, stamp=good.stamp, source=good.source, requester=OWNER),
                    RejectReason.NON_FINITE))
    for g in (-0.1, 1.5):
        arm = forge(ArmTarget, tcp_pose=left.tcp_pose, gripper_open=g)
        bad.append((forge(RigTarget, left=arm, right=good.right, stamp=good.stamp, source=good.source,
                          requester=OWNER), RejectReason.MALFORMED))
    for q in ([0, 0, 0, 2.0], [0.5, 0.5, 0.5, 0.0], [1.0, 0.0, 0.0]):
        arm = forge(ArmTarget, tcp_pose=forge(Pose, position=left.tcp_pose.position, quaternion=np.array(q)),
                    gripper_open=0.5)
        bad.append((forge(RigTarget, left=arm, right=good.right, stamp=good.stamp, source=good.source,
                          requester=OWNER), RejectReason.MALFORMED))
    bad.append((forge(RigTarget, left=left, right=good.right, stamp=good.stamp, source="joystick",
                      requester=OWNER), RejectReason.MALFORMED))
    for age in (STALE_AFTER + 0.01, 1.0, 3600.0):
        bad.append((d.message(lead=-age), RejectReason.STALE))
    for lead in (MAX_LEAD + 0.01, 10.0):
        bad.append((d.message(lead=lead), RejectReason.TOO_FAR_AHEAD))
    for source in (ControlMode.POLICY, ControlMode.HOLD, ControlMode.IDLE):
        bad.append((d.message(source=source), RejectReason.NOT_OWNER))
    for who in ("policy_node", "", " teleop"):
        bad.append((d.message(who=who), RejectReason.NOT_OWNER))
    return bad


def test_every_bad_target_is_refused_with_its_reason_and_only_bad_data_holds_the_stream() -> None:
    d = Drive()
    d.connect()
    cases = _bad_messages(d)
    assert {r for _, r in cases} == set(RejectReason) - {RejectReason.FAULTED}
    for msg, reason in cases:
        d.streaming()
        before = d.sup.rejects[reason.value]
        reject = d.send(msg)
        assert reject is not None and reject.reason is reason, (msg, reject)
        # Counted by the reason; the text shown is the reason and its detail, parsed by nobody.
        assert d.sup.rejects[reason.value] == before + 1
        assert d.sup.last_reject == str(reject) and str(reject).startswith(reason.value)
        assert d.sup.motion == (Motion.HOLDING if reason.holds else Motion.STREAMING), reason
        assert d.sup.take_effects() == (Effect.STATUS if reason.holds else Effect.NONE)
    assert sum(d.sup.rejects.values()) == len(cases)


def test_the_owner_is_named_in_a_refusal_and_a_faulted_rig_refuses_every_target() -> None:
    d = Drive()
    d.connect()
    d.streaming()
    reject = d.send(d.message(who="policy_node"))
    assert reject.reason is RejectReason.NOT_OWNER and repr(OWNER) in reject.detail and "'policy_node'" in reject.detail
    d.advance(DT)
    d.tick(faults=(Fault(0, FaultKind.JOINT_LIMIT, "A7 at its limit"),))
    for who in (OWNER, "policy_node"):
        reject = d.send(d.message(who=who))
        assert reject.reason is RejectReason.FAULTED and "A7 at its limit" in reject.detail


@settings(max_examples=25, deadline=None)
@given(wall_step=st.one_of(st.just(0.0), st.floats(-7200.0, 7200.0)))
def test_watchdog_holds_then_stops_on_the_monotonic_timeline_whatever_the_wall_clock_does(wall_step: float) -> None:
    d = Drive()
    d.connect()
    d.streaming()
    d.advance(DT)
    assert isinstance(d.tick(), Step) and d.sup.motion == Motion.STREAMING
    d.advance(HOLD_AFTER - 2 * DT, wall_step)  # a wall step lands here; the targets stop
    d.tick()
    assert d.sup.motion == Motion.STREAMING
    d.run(2 * DT)
    assert d.sup.motion == Motion.HOLDING and "watchdog" in d.sup.message
    assert Effect.STOP not in d.sup.take_effects()
    d.run(STOP_AFTER - HOLD_AFTER - 2 * DT)
    assert d.sup.motion == Motion.HOLDING
    d.run(2 * DT)
    assert d.sup.motion == Motion.STOPPED and d.sup.ownership.mode == ControlMode.IDLE
    assert Effect.STOP in d.sup.take_effects()
    assert d.sup.ownership.owner == OWNER  # the watchdog stops a silent owner, it does not evict it
    assert not d.sup.faults


def test_frozen_arm_data_faults_only_while_commands_stream() -> None:
    for arms in ({0}, {1}, {0, 1}):
        d = Drive()
        d.connect()
        assert d.set_mode(ControlMode.IDLE).success and d.sup.motion == Motion.STOPPED
        d.frozen = set(arms)
        d.run(STATE_TIMEOUT + 2 * DT)
        # Stopped: marked stale, no fault (a robot's Stop may block its state for a while).
        assert d.sup.motion == Motion.STOPPED and not d.sup.faults
        assert [st.fresh for st in d.sup.marked(d.states(), d.mono)] == [i not in arms for i in range(2)]
        d.frozen = set()
        d.run(DT)
        assert all(st.fresh for st in d.sup.marked(d.states(), d.mono))
        d.streaming()
        d.frozen = set(arms)
        d.run(STATE_TIMEOUT - 2 * DT, feed=True)
        assert d.sup.motion == Motion.STREAMING
        d.run(3 * DT, feed=True)
        assert d.sup.motion == Motion.FAULTED
        assert {(f.arm, f.kind) for f in d.sup.faults} == {(i, FaultKind.COMMUNICATION) for i in arms}
        assert Effect.STOP in d.sup.take_effects()


def test_operator_fault_is_refreshed_until_released_and_recovery_re_enters_the_owners_mode() -> None:
    d = Drive()
    d.connect()
    d.streaming()
    estop = Fault(1, FaultKind.ESTOP, "Emergency stop pressed")
    d.advance(DT)
    assert d.tick(faults=(estop,)) is None
    assert d.sup.motion == Motion.FAULTED and d.sup.ownership.mode == ControlMode.IDLE
    assert d.sup.ownership.owner == OWNER and d.sup.faults == [estop]
    assert Effect.STOP in d.sup.take_effects() and d.sup.fault_history
    for _ in range(2):  # refused for as long as the backend reports it
        out = d.sup.recover([estop])
        assert not out.success and "needs the operator" in out.message and "right estop" in out.message
        assert d.sup.motion == Motion.FAULTED and Effect.RECOVER not in d.sup.take_effects()
    # Released: gone from the list at the next tick, but the rig stays faulted (latched).
    latched = Fault(1, FaultKind.OTHER, "Emergency stop pressed (released): clear the fault")
    d.run(DT, faults=(latched,))
    assert d.sup.faults == [latched] and d.sup.motion == Motion.FAULTED
    d.run(0.5)  # nothing reported any more: a recoverable fault stays until a recover
    assert d.sup.faults == [latched] and d.sup.motion == Motion.FAULTED
    assert d.set_mode(ControlMode.TELEOP).message.endswith("call recover first")
    out = d.sup.recover([])
    assert out.success and "re-enters teleop" in out.message
    assert d.sup.motion == Motion.RECOVERING and not d.sup.supervising
    assert Effect.RECOVER in d.sup.take_effects()
    assert d.sup.recover([]).message == "recovery already running"
    assert d.send().reason is RejectReason.FAULTED
    d.sup.recovered(None, "recovery failed: robot busy", d.wall, d.mono)
    assert d.sup.motion == Motion.FAULTED and d.sup.recovery_ok is False
    assert d.sup.recover([]).success
    d.advance(1.0)  # the recovery took a while: freshness restarts from its read
    d.sup.recovered(d.states(), "recovered", d.wall, d.mono)
    assert d.sup.recovery_ok is True and not d.sup.faults
    assert d.sup.ownership.mode == ControlMode.TELEOP and d.sup.motion == Motion.HOLDING
    assert [str(t).split(" ")[0] for t in list(d.sup.ownership.history)[-2:]] == ["idle->hold", "hold->teleop"]
    d.advance(DT)
    assert d.tick() is not None and d.sup.motion == Motion.HOLDING  # no communication fault
    assert d.send() is None and d.sup.motion == Motion.STREAMING


def test_a_stop_asked_for_while_faulted_is_what_recovery_re_enters() -> None:
    for mode, motion in ((ControlMode.IDLE, Motion.STOPPED), (ControlMode.HOLD, Motion.HOLDING)):
        d = Drive()
        d.connect()
        d.streaming()
        d.sup.fault([Fault(0, FaultKind.EXCESSIVE_FORCE, "force")], d.wall)  # e.g. a command refused
        resp = d.set_mode(mode)
        assert resp.success and "after recover" in resp.message and resp.mode == ControlMode.IDLE
        assert d.sup.recover([]).success
        d.sup.recovered(d.states(), "recovered", d.wall, d.mono)
        assert d.sup.ownership.mode == mode and d.sup.motion == motion


def test_a_fault_while_faulted_is_merged_once_per_arm_and_kind() -> None:
    d = Drive()
    d.connect()
    d.streaming()
    force = Fault(0, FaultKind.EXCESSIVE_FORCE, "force")
    d.sup.fault([force], d.wall)
    d.sup.take_effects()
    link = Fault(-1, FaultKind.COMMUNICATION, "reading the arms' state failed")
    for _ in range(3):
        d.sup.fault([link, force], d.wall)
    assert d.sup.faults == [force, link] and len(d.sup.fault_history) == 1
    assert d.sup.take_effects() == Effect.STATUS
    assert d.sup.status(d.wall).faults == ("left: excessive_force: force", "rig: communication: reading the "
                                           "arms' state failed")


def test_a_jammed_gripper_is_a_warning_on_the_status_not_a_fault() -> None:
    d = Drive()
    d.connect()
    d.grip_wanted = (0.5, 1.0)  # close the left gripper, which does not follow
    d.streaming()
    d.run(1.2, feed=True)
    assert list(d.sup.warnings) == [0] and "left gripper: jammed" in d.sup.warnings[0]
    assert d.sup.motion == Motion.STREAMING and not d.sup.faults
    assert d.sup.status(d.wall).warnings == (d.sup.warnings[0],)
    d.sup.take_effects()
    d.grip_measured = [0.5, 1.0]
    d.run(DT, feed=True)
    assert not d.sup.warnings and d.sup.take_effects() == Effect.STATUS


def test_mode_changes_go_through_hold_and_idle_stops_the_backend() -> None:
    d = Drive(ControlMode.IDLE)
    d.connect()
    resp = d.set_mode(ControlMode.POLICY, "policy_node")
    assert resp.success and resp.message.startswith("idle->hold") and "hold->policy" in resp.message
    assert d.sup.motion == Motion.HOLDING and d.sup.take_effects() == Effect.STATUS
    assert not d.set_mode(ControlMode.TELEOP, OWNER).success  # owned by the policy
    assert d.set_mode(ControlMode.IDLE, OWNER).success  # anyone may stop the arms
    assert d.sup.motion == Motion.STOPPED and Effect.STOP in d.sup.take_effects()
    assert d.sup.ownership.owner == "policy_node"
