"""Ownership policy of /arms/set_mode (a2w.arms.ownership): a source keeps the arms until it
releases them, others are refused with a reason, anyone may stop them, the override is logged."""

from __future__ import annotations

import itertools
import logging
from typing import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from a2w.arms.ownership import STREAMING_MODES, Ownership
from a2w.msgs.arms import ControlMode
from a2w.msgs.services import SetControlModeRequest
from tests.arms.support import Rig, hold_targets, make_rig, target, wait_for

MODES = list(ControlMode)
OWNERS = [None, ("teleop_node", ControlMode.TELEOP), ("policy_node", ControlMode.POLICY)]
REQUESTERS = ["teleop_node", "policy_node", "monitor", "", "  ", " policy_node "]


def expected(owner: str | None, requester: str, mode: ControlMode, override: bool) -> tuple[bool, str | None]:
    """The documented policy, written out independently: (granted, owner afterwards)."""
    who = requester.strip()
    if override:
        return (bool(who), (who if mode in STREAMING_MODES else None) if who else owner)
    if mode not in STREAMING_MODES:  # hold / idle: stopping is always safe
        return True, (None if who == owner else owner)
    if not who:
        return False, owner
    if owner in (None, who):
        return True, who
    return False, owner


@pytest.fixture
def slow_rig() -> Iterator[Rig]:
    # The watchdog must not change the mode while the matrix runs without targets.
    yield from make_rig(hold_after=60.0, stop_after=120.0)


def _call(rig: Rig, mode: ControlMode, who: str, override: bool = False):
    return rig.probe.set_mode_client.call(SetControlModeRequest(mode, who, override))


def _establish(rig: Rig, owner: tuple[str, ControlMode] | None) -> None:
    _call(rig, ControlMode.HOLD, "test_setup", override=True)  # frees the arms
    assert rig.arm.ownership.owner is None
    if owner is not None:
        resp = _call(rig, owner[1], owner[0])
        assert resp.success, resp.message


def test_set_mode_matrix_over_owner_requester_mode_and_override(slow_rig: Rig, caplog) -> None:
    rig = slow_rig
    for owner, who, mode, override in itertools.product(OWNERS, REQUESTERS, MODES, (False, True)):
        case = f"owner={owner} requester={who!r} mode={mode.value} override={override}"
        _establish(rig, owner)
        before = rig.arm.ownership.mode
        owner_name = owner[0] if owner else None
        caplog.clear()
        with caplog.at_level(logging.INFO):
            resp = _call(rig, mode, who, override)
        granted, owner_after = expected(owner_name, who, mode, override)
        assert resp.success == granted, f"{case}: {resp}"
        assert rig.arm.ownership.owner == owner_after, case
        if granted:
            assert resp.mode == mode == rig.arm.ownership.mode, case
        else:
            assert resp.mode == before == rig.arm.ownership.mode, case
            assert resp.message, case
            if who.strip():
                assert repr(owner_name) in resp.message and "owned by" in resp.message, case
            else:
                assert "requester" in resp.message, case
        overrides = [r for r in caplog.records if "operator override by" in r.getMessage()]
        if override and granted:
            assert overrides and overrides[0].levelno == logging.WARNING, case
            assert repr(who.strip()) in overrides[0].getMessage(), case
            assert repr(owner_name) in overrides[0].getMessage(), case  # the displaced owner
        else:
            assert not overrides, case


def test_the_policy_never_takes_the_arms_from_teleop(rig: Rig) -> None:
    assert rig.set_mode("teleop", "operator").success
    left, right = hold_targets(rig)
    up = target(left.tcp_pose.position + [0.0, 0.0, 0.03], left.tcp_pose.quaternion)
    z0 = rig.read()[0].tcp_pose.position[2]

    for mode in ("policy", "teleop"):
        resp = rig.set_mode(mode, "policy_node")
        assert not resp.success and "'operator'" in resp.message, resp
        assert rig.arm.ownership.mode == ControlMode.TELEOP and rig.arm.ownership.owner == "operator"
    # The operator is not locked out: its targets still move the arm, the policy's do not.
    before = rig.diag()["targets_accepted"]
    rig.stream(lambda t: (left, right), 0.2, source="policy")
    assert rig.diag()["targets_accepted"] == before
    rig.stream(lambda t: (up, right), 0.6, source="teleop")
    assert rig.read()[0].tcp_pose.position[2] - z0 > 0.02

    # Anyone may stop the arms, but that does not hand them over.
    resp = rig.set_mode("hold", "policy_node")
    assert resp.success and rig.arm.ownership.mode == ControlMode.HOLD
    assert rig.arm.ownership.owner == "operator"
    assert not rig.set_mode("policy", "policy_node").success
    assert rig.set_mode("teleop", "operator").success  # the owner resumes

    # Released by the owner, the arms go to whoever asks next.
    assert rig.set_mode("hold", "operator").success and rig.arm.ownership.owner is None
    resp = rig.set_mode("policy", "policy_node")
    assert resp.success and rig.arm.ownership.owner == "policy_node"
    assert not rig.set_mode("teleop", "operator").success


@pytest.mark.parametrize("sender", ["policy_node", "monitor", "", "operator2", "Operator"])
def test_targets_for_the_owners_mode_from_anyone_else_do_not_move_the_arms(rig: Rig, sender: str) -> None:
    """A sender that is not the owner cannot move the arms by stamping its targets with the
    owner's mode: the target's requester must be the owner too."""
    assert rig.set_mode("teleop", "operator").success
    left, right = hold_targets(rig)
    up = target(left.tcp_pose.position + [0.0, 0.0, 0.03], left.tcp_pose.quaternion)
    z0 = rig.read()[0].tcp_pose.position[2]
    before = rig.diag()["targets_accepted"]
    for t in range(20):
        rig.send(up, right, source="teleop", requester=sender)
    rig.drain()
    assert rig.diag()["targets_accepted"] == before
    assert "owned by 'operator'" in rig.diag()["last_reject"]
    assert abs(rig.read()[0].tcp_pose.position[2] - z0) < 0.005
    # The owner's own targets (its name padded with blanks, as set_mode accepts) still move them.
    rig.stream(lambda t: (up, right), 0.6, source="teleop", requester=" operator ")
    assert rig.read()[0].tcp_pose.position[2] - z0 > 0.02


def test_owner_keeps_the_arms_through_watchdog_stop_and_fault_recovery() -> None:
    from a2w.arms.backend import FaultKind
    from a2w.arms.component import Motion

    for rig in make_rig(hold_after=0.1, stop_after=0.3):
        assert rig.set_mode("teleop", "operator").success
        wait_for(lambda: rig.arm.ownership.mode == ControlMode.IDLE, 3.0, "watchdog stop")
        assert rig.arm.ownership.owner == "operator"
        assert not rig.set_mode("policy", "policy_node").success
        assert rig.set_mode("teleop", "operator").success
        rig.backend.inject_fault(0, FaultKind.JOINT_LIMIT, "Joint A4 reached its position limit")
        wait_for(lambda: rig.arm.motion == Motion.FAULTED, 2.0, "fault")
        assert not rig.set_mode("policy", "policy_node").success
        assert rig.recover().success
        wait_for(lambda: rig.arm.recovery_ok is True, 5.0, "recovery")
        assert rig.arm.ownership.owner == "operator" and rig.arm.ownership.mode == ControlMode.TELEOP


def test_a_stop_asked_for_while_faulted_is_granted_and_is_what_recovery_re_enters(rig: Rig) -> None:
    from a2w.arms.backend import FaultKind
    from a2w.arms.component import Motion

    assert rig.set_mode("teleop", "operator").success
    rig.backend.inject_fault(1, FaultKind.EXCESSIVE_FORCE, "External force exceeds the limit")
    wait_for(lambda: rig.arm.motion == Motion.FAULTED, 2.0, "fault")
    resp = rig.set_mode("hold", "monitor")
    assert resp.success and "after recover" in resp.message
    assert rig.arm.ownership.owner == "operator"
    assert rig.recover().success
    wait_for(lambda: rig.arm.recovery_ok is True, 5.0, "recovery")
    assert rig.arm.ownership.mode == ControlMode.HOLD


# -- the policy itself, over any request sequence ------------------------------------------
_requests = st.lists(st.tuples(st.sampled_from(["a", "b", "c", ""]), st.sampled_from(MODES)), max_size=30)


@settings(max_examples=300, deadline=None)
@given(_requests)
def test_without_override_only_the_owner_changes_who_owns_the_arms(reqs) -> None:
    own = Ownership(ControlMode.HOLD, logger=logging.getLogger("test"))
    for who, mode in reqs:
        owner, refusal = own.owner, own.refusal(mode, who)
        if refusal:
            assert mode in STREAMING_MODES
            continue
        own.claim(mode, who)
        own.request(mode, f"requested by {who}", 0.0)
        if owner is not None and who != owner:
            assert own.owner == owner  # nobody else takes or frees the arms
            assert mode not in STREAMING_MODES  # only stops are granted to others
        if mode in STREAMING_MODES:
            assert own.owner == who != ""
        # Streaming is only ever in the owner's hands.
        assert (own.mode in STREAMING_MODES) <= (own.owner is not None)


def test_set_mode_request_rejects_bad_field_types() -> None:
    for bad in (1, None, b"x"):
        with pytest.raises(ValueError, match="requester"):
            SetControlModeRequest(ControlMode.HOLD, bad)  # type: ignore[arg-type]
    for bad in (1, "yes", None):
        with pytest.raises(ValueError, match="override"):
            SetControlModeRequest(ControlMode.HOLD, "x", bad)  # type: ignore[arg-type]
