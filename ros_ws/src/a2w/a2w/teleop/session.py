"""The teleop session without ROS or sockets: the page's messages, their checks, both clutches and
the dead man. ``TeleopSession`` takes each raw message with its arrival time (the wall clock's
seconds: a dead man watches the operator's link, not the sim) and keeps the two arms' targets in
the world; the node publishes them.

Protocol (JSON text frames, ``"v": PROTOCOL``), page -> node:

* ``{"v":1,"type":"pose","seq":N,"arms":{"left":ARM,"right":ARM}}`` with
  ``ARM = {"tracked":bool,"pose":[x,y,z,qx,qy,qz,qw],"grip":bool,"trigger":0..1}`` (a pose in the
  page's XR reference space; ``pose`` may be null when not tracked);
* ``{"v":1,"type":"episode","action":"start|save|discard|rerecord","task":"..."}``.

Node -> page: ``state`` (ownership, engaged arms, recording, counters, the last error), ``error``
(why a message was dropped) and ``haptic`` (pulse the controllers).

Every bad input is dropped and counted by kind, never turned into motion (issue 19 item 6):
``malformed`` (not JSON, wrong shape or types), ``version`` (an old page), ``non_finite`` (NaN or
Inf anywhere), ``quaternion`` (not a unit quaternion), ``jump`` (a controller moved more than
``max_jump`` between two messages: that arm also disengages) and ``flood`` (over ``max_rate``
messages per second). After a jump, lost tracking or the dead man an arm engages again only when
its grip is released and pressed anew, so a glitch never re-engages by itself.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from a2w.teleop.mapping import Alignment, Clutch, world_to_base

PROTOCOL = 1
ARMS = ("left", "right")
EPISODE_ACTIONS = ("start", "save", "discard", "rerecord")
DROP_KINDS = ("malformed", "version", "non_finite", "quaternion", "jump", "flood")


class BadInput(ValueError):
    """A message dropped; ``kind`` is one of ``DROP_KINDS``."""

    def __init__(self, kind: str, why: str) -> None:
        super().__init__(why)
        self.kind = kind


@dataclass(frozen=True)
class ArmInput:
    tracked: bool
    pose: np.ndarray | None  # [x, y, z, qx, qy, qz, qw] in the XR space
    grip: bool
    trigger: float


@dataclass(frozen=True)
class PoseMessage:
    seq: int
    arms: tuple[ArmInput, ArmInput]


@dataclass(frozen=True)
class EpisodeMessage:
    action: str
    task: str


def _finite(name: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise BadInput("malformed", f"{name}: a number expected, got {type(v).__name__}")
    if not math.isfinite(v):
        raise BadInput("non_finite", f"{name}: {v} is not finite")
    return float(v)


def _arm(name: str, d: Any) -> ArmInput:
    if not isinstance(d, dict):
        raise BadInput("malformed", f"arms.{name}: an object expected")
    tracked, grip = d.get("tracked", False), d.get("grip", False)
    if not isinstance(tracked, bool) or not isinstance(grip, bool):
        raise BadInput("malformed", f"arms.{name}: tracked and grip must be booleans")
    trigger = _finite(f"arms.{name}.trigger", d.get("trigger", 0.0))
    if not 0.0 <= trigger <= 1.0:
        raise BadInput("malformed", f"arms.{name}.trigger: {trigger} is outside [0, 1]")
    raw = d.get("pose")
    if raw is None:
        if tracked:
            raise BadInput("malformed", f"arms.{name}: tracked without a pose")
        return ArmInput(False, None, grip, trigger)
    if not isinstance(raw, list) or len(raw) != 7:
        raise BadInput("malformed", f"arms.{name}.pose: 7 numbers expected [x, y, z, qx, qy, qz, qw]")
    pose = np.array([_finite(f"arms.{name}.pose[{i}]", v) for i, v in enumerate(raw)])
    n = float(np.linalg.norm(pose[3:]))
    if abs(n - 1.0) > 1e-3:
        raise BadInput("quaternion", f"arms.{name}.pose: quaternion norm {n:.4g}, not a unit quaternion")
    pose[3:] /= n
    return ArmInput(tracked, pose, grip, trigger)


def parse(raw: str | bytes) -> PoseMessage | EpisodeMessage:
    """One page message; ``BadInput`` names what is wrong with it."""
    try:
        # parse_constant: Python's json reads NaN/Infinity literals, which JSON forbids
        msg = json.loads(raw, parse_constant=lambda c: float(c))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadInput("malformed", f"not JSON: {exc}") from None
    if not isinstance(msg, dict):
        raise BadInput("malformed", "a JSON object expected")
    if msg.get("v") != PROTOCOL:
        raise BadInput("version", f"protocol version {msg.get('v')!r}, this node speaks {PROTOCOL}: reload the page")
    kind = msg.get("type")
    if kind == "pose":
        arms = msg.get("arms")
        seq = msg.get("seq", 0)
        if not isinstance(arms, dict) or isinstance(seq, bool) or not isinstance(seq, int):
            raise BadInput("malformed", "pose: 'arms' object and integer 'seq' expected")
        return PoseMessage(seq, (_arm("left", arms.get("left")), _arm("right", arms.get("right"))))
    if kind == "episode":
        action, task = msg.get("action"), msg.get("task", "")
        if action not in EPISODE_ACTIONS or not isinstance(task, str):
            raise BadInput("malformed", f"episode: action must be one of {EPISODE_ACTIONS}, task a string")
        return EpisodeMessage(action, task)
    raise BadInput("malformed", f"unknown message type {kind!r}")


class RateLimit:
    """Token bucket: ``rate`` messages per second on average, bursts of ``burst``."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = burst
        self.t: float | None = None

    def allow(self, now: float) -> bool:
        if self.t is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.t) * self.rate)
        self.t = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass
class ArmChannel:
    clutch: Clutch
    base: np.ndarray  # world <- base
    target: np.ndarray | None = None  # world TCP target (held while disengaged)
    gripper: float = 1.0
    last_ctrl: np.ndarray | None = None  # world controller pose of the last accepted message
    latched: str = ""  # why the arm may not engage until the grip is released
    grip_was: bool = False


@dataclass
class TeleopConfig:
    yaw: float = 0.0
    scale: float = 1.0
    max_jump: float = 0.25  # m between two messages
    deadman: float = 0.1  # s of silence
    max_rate: float = 250.0  # messages per second
    burst: float = 50.0


@dataclass
class Release:
    arm: int
    why: str


@dataclass
class TeleopSession:
    """Both clutches, the checks and the dead man; targets in the world, read in base frames."""

    config: TeleopConfig
    bases: tuple[np.ndarray, np.ndarray]
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROP_KINDS, 0))
    last_error: str = ""
    accepted: int = 0
    last_message: float | None = None  # arrival time of the last message (any kind)

    def __post_init__(self) -> None:
        self.alignment = Alignment(self.config.yaw)
        self.limit = RateLimit(self.config.max_rate, self.config.burst)
        self.arms = tuple(ArmChannel(Clutch(self.config.scale), np.asarray(b, dtype=np.float64)) for b in self.bases)
        self.releases: list[Release] = []  # what disengaged an arm, for the node to log and show

    # -- state ------------------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return all(a.target is not None for a in self.arms)

    def reset(self, tcp_world: tuple[np.ndarray, np.ndarray], grippers: tuple[float, float]) -> None:
        """Start holding the measured poses (world) and gripper openings; both arms disengaged."""
        for a, t, g in zip(self.arms, tcp_world, grippers):
            a.clutch.release()
            a.target, a.gripper, a.last_ctrl, a.latched = np.array(t, dtype=np.float64), float(g), None, ""

    def set_bases(self, bases: tuple[np.ndarray, np.ndarray]) -> None:
        for a, b in zip(self.arms, bases):
            a.base = np.asarray(b, dtype=np.float64)

    def engaged(self) -> tuple[bool, bool]:
        return (self.arms[0].clutch.engaged, self.arms[1].clutch.engaged)

    def targets_base(self) -> tuple[tuple[np.ndarray, float], tuple[np.ndarray, float]]:
        """Each arm's (4x4 target in its base frame, gripper opening)."""
        if not self.ready:
            raise RuntimeError("no targets yet: reset() with the measured poses first")
        return tuple((world_to_base(a.target, a.base), a.gripper) for a in self.arms)  # type: ignore[return-value]

    def release(self, arm: int, why: str, latch: bool = True) -> None:
        ch = self.arms[arm]
        if ch.clutch.engaged:
            ch.clutch.release()
            self.releases.append(Release(arm, why))
        if latch and ch.grip_was:
            ch.latched = why

    def release_all(self, why: str) -> None:
        for i in range(2):
            self.release(i, why)

    # -- input ------------------------------------------------------------------------------------
    def drop(self, exc: BadInput) -> None:
        self.dropped[exc.kind] += 1
        self.last_error = f"dropped ({exc.kind}): {exc}"

    def receive(self, raw: str | bytes, now: float) -> PoseMessage | EpisodeMessage | None:
        """Check and apply one message that arrived at ``now``; None when it was dropped (counted,
        ``last_error`` says why). A pose message moves the targets; an episode message is
        returned for the node to act on."""
        if not self.limit.allow(now):
            self.drop(BadInput("flood", f"over {self.config.max_rate:g} messages per second"))
            return None
        try:
            msg = parse(raw)
            if isinstance(msg, PoseMessage):
                self._apply(msg)
        except BadInput as exc:
            self.drop(exc)
            return None
        self.last_message = now
        self.accepted += 1
        return msg

    def _apply(self, msg: PoseMessage) -> None:
        ctrl = [None if m.pose is None else self.alignment.controller_in_world(m.pose) for m in msg.arms]
        jumps = []
        for i, (ch, c) in enumerate(zip(self.arms, ctrl)):
            if c is not None and ch.last_ctrl is not None:
                d = float(np.linalg.norm(c[:3, 3] - ch.last_ctrl[:3, 3]))
                if d > self.config.max_jump:
                    jumps.append(f"{ARMS[i]} moved {d:.2f} m in one message (max_jump {self.config.max_jump:g} m)")
                    ch.last_ctrl = c  # the new place is where the next jump is measured from
                    self.release(i, "jump", latch=True)
                    ch.latched = "jump"
        if jumps:
            raise BadInput("jump", "; ".join(jumps))
        for i, (ch, m, c) in enumerate(zip(self.arms, msg.arms, ctrl)):
            ch.last_ctrl = c if c is not None else ch.last_ctrl
            if not m.grip:
                self.release(i, "grip released", latch=False)
                ch.latched = ""
            elif not m.tracked or c is None:
                self.release(i, "tracking lost")
                ch.latched = ch.latched or "tracking lost"
            elif ch.target is None or ch.latched:
                pass  # no hold pose yet (arms not ours), or waiting for a fresh grip
            elif not ch.clutch.engaged:
                ch.clutch.engage(c, ch.target)
            else:
                ch.target = ch.clutch.target(c)
            if ch.clutch.engaged:
                ch.gripper = 1.0 - m.trigger
            ch.grip_was = m.grip

    def check_deadman(self, now: float) -> bool:
        """Release the engaged arms when the page has been silent longer than ``deadman``."""
        if not any(self.engaged()):
            return False
        if self.last_message is None or now - self.last_message > self.config.deadman:
            silent = math.inf if self.last_message is None else now - self.last_message
            self.release_all(f"dead man: no message for {silent * 1e3:.0f} ms")
            return True
        return False
