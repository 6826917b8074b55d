"""The arm node's supervisor: motion states and their transitions, target acceptance, ownership,
the watchdog, arm-data freshness, the gripper watch, and fault and recovery sequencing.

Pure: no I/O, no threads, no clock. Every call takes the times it needs: ``now`` is the clock's
time (stamps: targets, transitions, fault history; wall time on a rig) and ``mono`` the clock's
monotonic timeline (durations: watchdog, freshness, gripper watch), so a wall-clock step neither
trips nor silences them. What the node must do with the outside world is collected as ``Effect``
flags (``take_effects``): stop the backend, start its recovery, publish the status. The node
(a2w.arms.component) owns the backend, the topics, services and timers, and calls in here.

Motion states::

    CONNECTING --connected--> STOPPED --mode hold/teleop/policy--> HOLDING --owner's target--> STREAMING
    CONNECTING --failed--> DISCONNECTED          STREAMING --watchdog hold_after, bad target--> HOLDING
    HOLDING/STREAMING --mode idle, watchdog stop_after--> STOPPED
    any connected --fault--> FAULTED --recover--> RECOVERING --done--> STOPPED -> HOLDING (-> owner's mode)
                                                 RECOVERING --failed--> FAULTED

Faulted stays faulted even if nothing is reported any more (e.g. cleared at the robot): only an
explicit recover resumes, and never while an operator-side fault (e-stop, pendant) is reported.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import math
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from a2w.arms.backend import Fault, FaultKind
from a2w.arms.commander import Commander, Step
from a2w.arms.gripper_watch import GripperWatch
from a2w.arms.ownership import STREAMING_MODES, Ownership, parse_mode
from a2w.arms.safety import Watchdog, WatchdogState
from a2w.msgs.arms import ARM_NAMES, ArmsStatus, ArmState, ControlMode, RigTarget
from a2w.msgs.services import Outcome, SetControlModeRequest, SetControlModeResponse

log = logging.getLogger(__name__)


class Motion(str, enum.Enum):
    CONNECTING = "connecting"
    STOPPED = "stopped"  # nothing streamed (mode idle, or after a watchdog stop)
    HOLDING = "holding"  # braking to rest along the current path, then streaming that pose
    STREAMING = "streaming"  # streaming the owner's targets
    FAULTED = "faulted"
    RECOVERING = "recovering"
    DISCONNECTED = "disconnected"


MOVING = (Motion.STREAMING, Motion.HOLDING)  # commands stream


class RejectReason(str, enum.Enum):
    """Why a target was refused; the value is its key in the diagnostics' reject counts."""

    MALFORMED = "malformed"
    NON_FINITE = "non-finite value (NaN or inf)"
    STALE = "stale"
    TOO_FAR_AHEAD = "too far ahead"
    FAULTED = "faulted"
    NOT_OWNER = "not owner"

    @property
    def holds(self) -> bool:
        """A bad target stops the stream it came in (the arms hold); a target that is fine but not
        the owner's, or sent while faulted, leaves the owner's stream alone."""
        return self not in (RejectReason.FAULTED, RejectReason.NOT_OWNER)


@dataclass(frozen=True)
class Reject:
    reason: RejectReason
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.reason.value}: {self.detail}" if self.detail else self.reason.value


def target_problem(position: np.ndarray, quaternion: np.ndarray, gripper: float, stamp: float,
                   now: float, stale_after: float, max_lead: float, quat_tol: float = 1e-3) -> Reject | None:
    """Why one arm's target must be refused (None if acceptable). Re-checks what message
    constructors check, because a codec or a buggy producer can hand over objects built around them."""
    try:
        p = np.asarray(position, dtype=float)
        q = np.asarray(quaternion, dtype=float)
        g = float(gripper)
        t = float(stamp)
    except (TypeError, ValueError) as exc:
        return Reject(RejectReason.MALFORMED, str(exc))
    if p.shape != (3,) or q.shape != (4,):
        return Reject(RejectReason.MALFORMED, f"position/quaternion shapes {p.shape}/{q.shape}")
    if not (np.all(np.isfinite(p)) and np.all(np.isfinite(q)) and math.isfinite(g) and math.isfinite(t)):
        return Reject(RejectReason.NON_FINITE)
    if abs(float(np.linalg.norm(q)) - 1.0) > quat_tol:
        return Reject(RejectReason.MALFORMED, f"quaternion norm {float(np.linalg.norm(q)):.4f}")
    if not 0.0 <= g <= 1.0:
        return Reject(RejectReason.MALFORMED, f"gripper_open {g} outside [0, 1]")
    if t < now - stale_after:
        return Reject(RejectReason.STALE, f"stamped {now - t:.3f} s in the past")
    if t > now + max_lead:
        return Reject(RejectReason.TOO_FAR_AHEAD, f"stamped {t - now:.3f} s in the future")
    return None


class Effect(enum.Flag):
    """What the node must do after a supervisor call."""

    NONE = 0
    STOP = enum.auto()  # stop the backend now
    RECOVER = enum.auto()  # clear the backend's faults (slow: on a worker), then ``recovered``
    STATUS = enum.auto()  # what /arms/status shows changed: publish it


def _fault_name(f: Fault) -> str:
    return ARM_NAMES[f.arm] if f.arm in (0, 1) else "rig"


class Supervisor:
    """The arm node's state; see the module doc for the states and what drives them."""

    def __init__(self, commander: Commander, *, initial_mode: ControlMode, hold_after: float,
                 stop_after: float, stale_after: float, max_lead: float, state_timeout: float,
                 gripper_tolerance: float, gripper_jam_after: float,
                 logger: logging.Logger | None = None) -> None:
        self.log = logger or log
        self.commander = commander
        self.initial_mode = parse_mode(initial_mode)
        self.stale_after = stale_after
        self.max_lead = max_lead
        self.state_timeout = state_timeout
        self.watchdog = Watchdog(hold_after, stop_after)
        self.ownership = Ownership(ControlMode.IDLE, logger=self.log)
        self.gripper_watch = tuple(GripperWatch(gripper_tolerance, gripper_jam_after) for _ in range(2))
        self.motion = Motion.CONNECTING
        self.message = "connecting"
        self.faults: list[Fault] = []
        self.fault_history: deque[str] = deque(maxlen=20)
        self.mode_before_fault = ControlMode.HOLD
        self.recover_mode = ControlMode.HOLD
        self.recovery_ok: bool | None = None
        self.rejects: Counter[str] = Counter()
        self.last_reject = ""
        self.targets_accepted = 0
        self.warnings: dict[int, str] = {}  # arm -> current warning (gripper jam)
        # The last read of the arms: its states, when (timeline) and its stamp (clock).
        self.last_states: tuple[ArmState, ArmState] | None = None
        self.last_read = -math.inf
        self.read_stamp = -math.inf
        # Link freshness per arm: the last state stamp read and when (timeline) it last changed.
        self._arm_stamp = [math.nan, math.nan]
        self._arm_seen = [-math.inf, -math.inf]
        self._effects = Effect.NONE

    # -- effects and status ---------------------------------------------------------------
    def take_effects(self) -> Effect:
        """The effects collected since the last call, which the caller now carries out."""
        fx, self._effects = self._effects, Effect.NONE
        return fx

    @property
    def supervising(self) -> bool:
        """The arms are connected and not being recovered: the control tick reads them."""
        return self.motion not in (Motion.CONNECTING, Motion.RECOVERING, Motion.DISCONNECTED)

    def _set_motion(self, motion: Motion, message: str) -> None:
        self.motion = motion
        self.message = message
        self._effects |= Effect.STATUS

    def status(self, now: float) -> ArmsStatus:
        return ArmsStatus(
            self.ownership.mode, self.motion.value, self.message,
            tuple(f"{_fault_name(f)}: {f.kind.value}: {f.text}" for f in self.faults),
            now, self.recovery_ok, self.ownership.owner or "",
            tuple(self.warnings[i] for i in sorted(self.warnings)))

    # -- connection and freshness -----------------------------------------------------------
    def connected(self, states: tuple[ArmState, ArmState], now: float, mono: float) -> None:
        self._fresh_from(states, now, mono)
        self.commander.seed(states)
        self._set_motion(Motion.STOPPED, "connected")
        if self.initial_mode == ControlMode.HOLD:
            self._switch(ControlMode.HOLD, "initial mode after connect", now, mono)

    def disconnected(self, message: str) -> None:
        self._set_motion(Motion.DISCONNECTED, message)

    def _fresh_from(self, states: tuple[ArmState, ArmState], now: float, mono: float) -> None:
        """Freshness restarts from ``states`` (after connecting or recovering)."""
        self._arm_stamp = [st.stamp for st in states]
        self._arm_seen = [mono, mono]
        self.last_states, self.last_read, self.read_stamp = states, mono, now

    def observe(self, states: tuple[ArmState, ArmState], now: float, mono: float) -> None:
        """The arms were read at ``now`` / ``mono``: note when each arm's data last changed."""
        for i, st in enumerate(states):
            if st.stamp != self._arm_stamp[i]:
                self._arm_stamp[i], self._arm_seen[i] = st.stamp, mono
        self.last_states, self.last_read, self.read_stamp = states, mono, now

    def stale(self, arm: int, mono: float) -> bool:
        """No new data from ``arm`` for ``state_timeout`` at timeline time ``mono``."""
        return mono - self._arm_seen[arm] > self.state_timeout

    def marked(self, states: Sequence[ArmState], mono: float) -> tuple[ArmState, ...]:
        """``states`` read at ``mono``, an arm whose data had stopped updating marked ``fresh=False``."""
        return tuple(dataclasses.replace(st, fresh=False) if self.stale(i, mono) else st
                     for i, st in enumerate(states))

    # -- modes ----------------------------------------------------------------------------
    def _switch(self, mode: ControlMode, reason: str, now: float, mono: float) -> list[str]:
        """Mode change through HOLD: the arms brake to rest, old targets are dropped."""
        made = self.ownership.request(mode, reason, now)
        if not made:
            return []
        self.commander.anchor(now)
        new = self.ownership.mode
        if new == ControlMode.IDLE:
            self._stop(f"mode idle ({reason})")
        else:
            if self.motion == Motion.STOPPED and self.last_states is not None:
                # Restart from where the arms are, not from a command they never reached.
                self.commander.seed(self.last_states)
            self.watchdog.feed(mono)
            self._set_motion(Motion.HOLDING, f"mode {new.value} ({reason})")
        return [str(t) for t in made]

    def _stop(self, why: str) -> None:
        self._effects |= Effect.STOP
        self.commander.rest()
        if self.motion not in (Motion.FAULTED, Motion.RECOVERING):
            self._set_motion(Motion.STOPPED, why)

    def set_mode(self, req: SetControlModeRequest, now: float, mono: float) -> SetControlModeResponse:
        """The ownership policy of ``a2w.arms.ownership``, then the mode change."""
        mode = self.ownership.mode
        try:
            new = parse_mode(req.mode)
        except ValueError as exc:
            return SetControlModeResponse(False, mode, str(exc))
        who = str(req.requester).strip()
        override = bool(req.override)
        reason = f"requested by {who or 'unknown'}" + (" (operator override)" if override else "")
        if self.motion in (Motion.CONNECTING, Motion.DISCONNECTED):
            return SetControlModeResponse(False, mode, f"arms are {self.motion.value}")
        refusal = self.ownership.refusal(new, who, override)
        if refusal:
            self.log.warning("set_mode %s by %s refused: %s", new.value, who or "unknown", refusal)
            return SetControlModeResponse(False, mode, refusal)
        faulted = self.motion in (Motion.FAULTED, Motion.RECOVERING)
        if faulted and new in STREAMING_MODES:
            return SetControlModeResponse(False, mode, f"arms are {self.motion.value}: call recover first")
        owner = self.ownership.claim(new, who, override)
        if faulted:
            # Already stopped; a stop asked for now is what recovery re-enters, not the old mode.
            self.mode_before_fault = self.recover_mode = new
            return SetControlModeResponse(True, mode, "; ".join(filter(None, [
                f"arms are {self.motion.value} and stopped; {new.value} after recover", owner])))
        made = self._switch(new, reason, now, mono)
        return SetControlModeResponse(True, self.ownership.mode, "; ".join(
            filter(None, [*made, owner])) or f"already {new.value}")

    # -- targets --------------------------------------------------------------------------
    def _check_target(self, msg: Any, now: float) -> tuple[Reject | None, ControlMode | None]:
        if not isinstance(msg, RigTarget):
            return Reject(RejectReason.MALFORMED, f"not a RigTarget ({type(msg).__name__})"), None
        try:
            arms = [msg.arm(i) for i in range(2)]
            problems = [target_problem(a.tcp_pose.position, a.tcp_pose.quaternion, a.gripper_open,
                                       msg.stamp, now, self.stale_after, self.max_lead) for a in arms]
            source = ControlMode(msg.source)
        except (AttributeError, TypeError, ValueError) as exc:
            return Reject(RejectReason.MALFORMED, str(exc)), None
        bad = next((pr for pr in problems if pr is not None), None)
        if bad is not None:
            return bad, None
        if self.motion in (Motion.FAULTED, Motion.RECOVERING):
            return Reject(RejectReason.FAULTED, f"motion refused until recover ({self.message})"), None
        if not self.ownership.accepts(source):
            return Reject(RejectReason.NOT_OWNER, f"source {source.value}, mode {self.ownership.mode.value}"), None
        if not self.ownership.owned_by(msg.requester):
            return Reject(RejectReason.NOT_OWNER, f"targets from {msg.requester.strip()!r}, the arms are "
                          f"owned by {self.ownership.owner!r}"), None
        return None, source

    def target(self, msg: Any, now: float, mono: float) -> Reject | None:
        """A target arrived (``msg``, normally a ``RigTarget``): accept it (None) or say why not."""
        reject, source = self._check_target(msg, now)
        if reject is not None:
            self._reject(reject)
            return reject
        resume = self.motion != Motion.STREAMING
        self.commander.push([msg.arm(i) for i in range(2)], msg.stamp, now, resume)
        self.watchdog.feed(mono)
        self.targets_accepted += 1
        if resume:
            self._set_motion(Motion.STREAMING, f"streaming {source.value} targets")
        return None

    def _reject(self, reject: Reject) -> None:
        key = reject.reason.value
        self.rejects[key] += 1
        self.last_reject = str(reject)
        if self.rejects[key] == 1 or self.rejects[key] % 100 == 0:
            self.log.warning("target rejected (%s, %d so far): %s", key, self.rejects[key], reject)
        if reject.reason.holds and self.motion == Motion.STREAMING:
            self._set_motion(Motion.HOLDING, f"target rejected: {reject}")

    # -- control tick ---------------------------------------------------------------------
    def tick(self, states: tuple[ArmState, ArmState], faults: Sequence[Fault], now: float,
             mono: float) -> Step | None:
        """One control tick after reading ``states`` (with the backend's current ``faults``) at
        ``now`` / ``mono``: react to faults, run the watchdog; the step to command, if any."""
        faults = list(faults)
        if self.motion in MOVING:  # never command on lost data
            faults += [Fault(i, FaultKind.COMMUNICATION,
                             f"no new state from the {ARM_NAMES[i]} arm for more than state_timeout "
                             f"{self.state_timeout:g} s (link lost or frozen)")
                       for i in range(2) if self.stale(i, mono)]
        if faults or self.motion == Motion.FAULTED:
            self.fault(faults, now)
            return None
        if self.ownership.mode in STREAMING_MODES and self.motion in MOVING:
            wd = self.watchdog.check(mono)
            if wd == WatchdogState.STOP:
                self._switch(ControlMode.IDLE, f"watchdog: no target for {self.watchdog.stop_after:g} s",
                             now, mono)
                return None
            if wd == WatchdogState.HOLD and self.motion == Motion.STREAMING:
                self._set_motion(Motion.HOLDING, f"watchdog: no target for {self.watchdog.hold_after:g} s")
        if self.motion not in MOVING:
            return None
        return self.commander.step(states, now, holding=self.motion == Motion.HOLDING)

    def commanded(self, step: Step, states: tuple[ArmState, ArmState], mono: float) -> None:
        """``step`` (from ``tick``) reached the backend."""
        self.commander.commit(step)
        self._watch_grippers(states, mono)

    def _watch_grippers(self, states: tuple[ArmState, ArmState], mono: float) -> None:
        """Commanded vs measured gripper opening (a2w.arms.gripper_watch): a jam is a warning, not
        a fault: the arms may keep moving, but whoever commands them must know."""
        for i in range(2):
            commanded = float(np.clip(self.commander.cmd[i].gripper, 0.0, 1.0))
            jam = self.gripper_watch[i].update(mono, commanded, states[i].gripper_open)
            if bool(jam) == (i in self.warnings):
                continue
            if jam:
                self.warnings[i] = f"{ARM_NAMES[i]} gripper: {jam}"
                self.log.warning(self.warnings[i])
            else:
                self.log.info("%s gripper tracks its command again", ARM_NAMES[i])
                del self.warnings[i]
            self._effects |= Effect.STATUS

    # -- faults and recovery ----------------------------------------------------------------
    def fault(self, faults: Sequence[Fault], now: float) -> None:
        """Enter the fault state, or, already in it, bring the fault list up to date."""
        if self.motion != Motion.FAULTED:
            self._enter_fault(list(faults), now)
        else:
            self._refresh_faults(faults)

    def _refresh_faults(self, current: Sequence[Fault]) -> None:
        """The fault list while faulted: an operator-side fault (e-stop, pendant) stays only while
        it is still reported, so its release is seen; recoverable faults stay until a recover.
        One entry per arm and kind."""
        merged: dict[tuple[int, FaultKind], Fault] = {}
        for f in [*(f for f in self.faults if f.recoverable), *current]:
            merged.setdefault((f.arm, f.kind), f)
        faults = list(merged.values())
        if faults != self.faults:
            self.log.info("arm faults now: %s",
                          "; ".join(f"{f.kind.value}: {f.text}" for f in faults) or "none")
            self.faults = faults
            self._effects |= Effect.STATUS

    def _enter_fault(self, faults: list[Fault], now: float) -> None:
        self.faults = faults
        if self.ownership.mode != ControlMode.IDLE:
            self.mode_before_fault = self.ownership.mode
        for f in faults:
            entry = f"{now:.3f} {_fault_name(f)} {f.kind.value}: {f.text}"
            self.fault_history.append(entry)
            self.log.error("arm fault: %s", entry)
        self._set_motion(Motion.FAULTED, "fault: " + "; ".join(f.text for f in faults))
        self._stop("fault")
        if self.ownership.mode != ControlMode.IDLE:
            self.ownership.request(ControlMode.IDLE, "fault: " + faults[0].text, now)

    def recover(self, faults: Sequence[Fault]) -> Outcome:
        """A recover request, with the backend's current ``faults``: refused while an
        operator-side fault is reported; granted, the node runs the recovery (``Effect.RECOVER``)."""
        if self.motion == Motion.RECOVERING:
            return Outcome(False, "recovery already running")
        if self.motion != Motion.FAULTED:
            return Outcome(False, f"nothing to recover (arms are {self.motion.value})")
        self._refresh_faults(faults)
        operator = [f for f in self.faults if not f.recoverable]
        if operator:
            msg = "recovery refused, needs the operator: " + "; ".join(
                f"{_fault_name(f)} {f.kind.value}: {f.text}" for f in operator)
            self.log.warning(msg)
            return Outcome(False, msg)
        self.recover_mode = self.mode_before_fault
        self._set_motion(Motion.RECOVERING, "recovery started")
        self._effects |= Effect.RECOVER
        return Outcome(True, f"recovery started; re-enters {self.recover_mode.value} when done")

    def recovered(self, states: tuple[ArmState, ArmState] | None, message: str, now: float,
                  mono: float) -> None:
        """The recovery finished: ``states`` read after it, or None if it failed (``message``)."""
        if states is None:
            self.log.error(message)
            self._set_motion(Motion.FAULTED, message)
            self.recovery_ok = False  # last: whoever waits on the flag reads the faulted state with it
            return
        self.recovery_ok = True
        self.faults = []
        self._fresh_from(states, now, mono)
        self.commander.seed(states)
        self._set_motion(Motion.STOPPED, message)
        self.log.info("arms recovered; re-entering %s", self.recover_mode.value)
        self._switch(ControlMode.HOLD, "recovered", now, mono)
        if self.recover_mode != ControlMode.HOLD:
            self._switch(self.recover_mode, "re-enter mode after recovery", now, mono)

    # -- diagnostics ----------------------------------------------------------------------
    def diagnostics(self, mono: float) -> dict[str, Any]:
        c = self.commander
        return {
            "mode": self.ownership.mode.value,
            "owner": self.ownership.owner or "",
            "motion": self.motion.value,
            "message": self.message,
            "targets_accepted": self.targets_accepted,
            "clamps": dict(c.clamps),
            "rejected": dict(self.rejects),
            "last_reject": self.last_reject,
            "arm_distance_m": round(c.arm_distance, 4) if math.isfinite(c.arm_distance) else "inf",
            "faults": [f"{f.kind.value}: {f.text}" for f in self.faults],
            "fault_history": list(self.fault_history),
            "warnings": [self.warnings[i] for i in sorted(self.warnings)],
            "fresh": [not self.stale(i, mono) for i in range(2)],
            "transitions": [str(t) for t in list(self.ownership.history)[-5:]],
        }
