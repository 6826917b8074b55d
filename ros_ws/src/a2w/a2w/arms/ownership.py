"""Who owns the arms: idle, hold, teleop or policy (docs/architecture.md §7), and who may change that.

Only the owner's targets are accepted: a target must be for the current mode and name the owner as
its ``requester``. Every change passes through HOLD, so the arms are held
still between two owners and no owner inherits the other's motion; every transition is recorded
with its reason.

Ownership policy, applied to every ``/arms/set_mode`` request (``Ownership.refusal`` decides,
``Ownership.claim`` records the outcome):

* A source is the ``requester`` of a request: its node name, compared after stripping blanks.
  Taking the arms (teleop or policy) needs a non-empty requester; an unnamed caller may only stop
  them.
* The arms are free after start-up. A source that asks for teleop or policy while they are free
  becomes their owner and keeps them until it releases them by asking for hold or idle itself.
  While it owns them it may switch between teleop and policy.
* A request for teleop or policy from any other source is refused, naming the owner: nothing
  pre-empts the owner, so the policy never takes the arms from teleop (nor teleop from the policy).
* ``hold`` and ``idle`` are granted to anyone, since stopping is always safe. From a non-owner
  they stop the arms but leave the owner in place (a stop is never a way to take the arms); the
  owner resumes by asking for its mode again.
* The watchdog stopping a silent owner's arms, a fault and its recovery do not change the owner:
  recovery re-enters the owner's mode. An owner that is gone for good is replaced by the operator
  override.
* Operator override (``override=True``): granted whatever the owner, for the operator who must
  take the arms from a dead or misbehaving owner. It is logged at WARNING with the requester and
  the owner it displaced. Overriding to teleop or policy makes the requester the owner; to hold or
  idle it frees the arms. It needs a named requester, so the log says who overrode. ROS services
  carry no caller identity: the flag is a deliberate operator action, not an authentication.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass

from a2w.msgs.arms import ControlMode

log = logging.getLogger(__name__)

STREAMING_MODES = frozenset({ControlMode.TELEOP, ControlMode.POLICY})


@dataclass(frozen=True)
class Transition:
    stamp: float
    old: ControlMode
    new: ControlMode
    reason: str

    def __str__(self) -> str:
        return f"{self.old.value}->{self.new.value} ({self.reason})"


def parse_mode(value: object) -> ControlMode:
    """ControlMode from a mode or its name; ValueError naming the field otherwise."""
    try:
        return ControlMode(value)
    except ValueError:
        raise ValueError(
            f"mode: unknown control mode {value!r}; one of {[m.value for m in ControlMode]}") from None


class Ownership:
    """The current mode, its owner (a requester name, None while the arms are free) and the
    transition log."""

    def __init__(self, mode: ControlMode = ControlMode.IDLE, history: int = 64,
                 logger: logging.Logger | None = None) -> None:
        self.mode = mode
        self.owner: str | None = None
        self.history: deque[Transition] = deque(maxlen=history)
        self._log = logger or log

    def accepts(self, source: ControlMode) -> bool:
        """True if targets for mode ``source`` may move the arms now (the mode half of the check)."""
        return self.mode in STREAMING_MODES and source == self.mode

    def owned_by(self, requester: str) -> bool:
        """True if ``requester`` (a target's sender) is the owner (the sender half of the check)."""
        return self.owner is not None and requester.strip() == self.owner

    def refusal(self, new: ControlMode, requester: str, override: bool = False) -> str:
        """Why the policy refuses ``requester`` the mode ``new`` ('' if it grants it)."""
        who = requester.strip()
        if new not in STREAMING_MODES and not override:
            return ""  # stopping is always safe
        if not who:
            action = "an operator override" if override else f"taking the arms ({new.value})"
            return f"requester: empty; {action} needs the caller's name (its node name)"
        if override or self.owner is None or self.owner == who:
            return ""
        return (f"refused: the arms are owned by {self.owner!r} (mode {self.mode.value}) until it "
                f"releases them (asks for hold or idle); {who!r} may stop them (hold) but not take "
                "them; the operator can take them with an override")

    def claim(self, new: ControlMode, requester: str, override: bool = False) -> str:
        """Record a granted request's effect on the owner; returns what changed ('' if nothing)."""
        who, old = requester.strip(), self.owner
        if override:
            self.owner = who if new in STREAMING_MODES else None
            self._log.warning("operator override by %r: mode %s requested; owner was %r, now %r",
                              who, new.value, old, self.owner)
            return f"operator override by {who!r} (owner was {old!r})"
        if new in STREAMING_MODES:
            self.owner = who
        elif who == old:
            self.owner = None
        if self.owner == old:
            return ""
        change = f"{who!r} owns the arms" if self.owner else f"{who!r} released the arms"
        self._log.info("arms ownership: %s", change)
        return change

    def request(self, new: ControlMode | str, reason: str, stamp: float) -> list[Transition]:
        """Switch to ``new`` (through HOLD); returns the transitions made (empty if already there).
        The owner is unchanged: this is the mode machine, the policy is ``refusal``/``claim``."""
        new = parse_mode(new)
        if not reason or not str(reason).strip():
            raise ValueError("reason: a mode change needs a reason (it is logged)")
        if new == self.mode:
            return []
        steps = [new] if ControlMode.HOLD in (self.mode, new) else [ControlMode.HOLD, new]
        made = []
        for step in steps:
            tr = Transition(stamp, self.mode, step, reason)
            self.mode = step
            self.history.append(tr)
            self._log.info("arms mode %s", tr)
            made.append(tr)
        return made
