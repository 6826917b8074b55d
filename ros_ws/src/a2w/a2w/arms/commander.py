"""What the arms are commanded, one step per control tick: the owner's timed targets, interpolated,
then clamped to the workspace box, the velocity/acceleration limits, the gripper rate and the
inter-arm distance (a2w.arms.safety), or braked to rest while holding.

Pure: no I/O, no clock; the supervisor (a2w.arms.supervisor) says when to seed, anchor, push,
step and commit. Commands are kept in the world (table) frame; targets in and out are in each
arm's base frame (a2w.msgs.arms), converted by ``RigFrames``.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from a2w.arms.kinematics import RigFrames
from a2w.arms.safety import (
    CartesianCommand,
    Clamp,
    MotionLimits,
    TargetInterpolator,
    Waypoint,
    WorkspaceBox,
    brake_step,
    chain_capsules,
    inter_arm_stop,
    limit_step,
    min_distance,
)
from a2w.msgs.arms import ArmState, ArmTarget

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Step:
    """One control step: the new commands (world frame) and the targets that send them (base frame)."""

    commands: tuple[CartesianCommand, CartesianCommand]
    targets: tuple[ArmTarget, ArmTarget]


class Commander:
    """The commanded TCP pose of both arms and the owner's timed targets."""

    def __init__(self, frames: RigFrames, limits: MotionLimits, workspace: Sequence[WorkspaceBox],
                 capsule_radii: Sequence[float], min_arm_distance: float, dt: float,
                 logger: logging.Logger | None = None) -> None:
        if len(capsule_radii) != 5 or any(r < 0 for r in capsule_radii):
            raise ValueError(f"capsule_radii: need 5 non-negative values, got {list(capsule_radii)}")
        self.frames = frames
        self.limits = limits
        self.workspace = tuple(workspace)
        self.capsule_radii = list(capsule_radii)
        self.min_arm_distance = min_arm_distance
        self.dt = dt
        self.log = logger or log
        self.cmd: list[CartesianCommand | None] = [None, None]
        self.interp = (TargetInterpolator(), TargetInterpolator())
        self.clamps: Counter[str] = Counter()
        self.arm_distance = math.inf

    def seed(self, states: Sequence[ArmState]) -> None:
        """Command where the arms are, at rest."""
        for i, st in enumerate(states):
            p, q = self.frames.to_world(i, st.tcp_pose.position, st.tcp_pose.quaternion)
            self.cmd[i] = CartesianCommand(p, q, np.zeros(3), np.zeros(3), st.gripper_open)

    def rest(self) -> None:
        """The arms were stopped: the commands keep their poses with no velocity."""
        self.cmd = [c.at_rest() if c is not None else None for c in self.cmd]

    def anchor(self, now: float) -> None:
        """Drop the queued targets: the interpolation starts again from the commands at ``now``."""
        if self.cmd[0] is None:
            return
        for i in range(2):
            c = self.cmd[i]
            self.interp[i].reset(Waypoint(now, c.position, c.quaternion, c.gripper))

    def push(self, targets: Sequence[ArmTarget], stamp: float, now: float, resume: bool) -> None:
        """Queue the owner's targets (base frame), to be reached at ``stamp``. ``resume``: the
        stream (re)starts, from the commands now rather than from older queued targets."""
        for i, a in enumerate(targets):
            p, q = self.frames.to_world(i, np.asarray(a.tcp_pose.position), np.asarray(a.tcp_pose.quaternion))
            if resume and self.cmd[i] is not None:
                c = self.cmd[i]
                self.interp[i].reset(Waypoint(now, c.position, c.quaternion, c.gripper))
            self.interp[i].push(Waypoint(float(stamp), p, q, float(a.gripper_open)), now)

    def _capsules(self, pts: list[np.ndarray] | None, tcp_world: np.ndarray, shift: np.ndarray) -> list:
        r = self.capsule_radii
        if pts is not None:
            # The wrist and flange follow the TCP step; the upper links barely move in one step.
            return chain_capsules([*pts[:-2], pts[-2] + shift, pts[-1] + shift, tcp_world], r)
        return chain_capsules([tcp_world, tcp_world], r[-1:])

    def step(self, states: Sequence[ArmState], now: float, holding: bool) -> Step:
        """The next command of both arms: towards the targets sampled at ``now``, or, ``holding``,
        braking to rest along the current path (holding the last command pose instead would
        overshoot it at speed and drive back)."""
        new: list[CartesianCommand] = []
        flags: set[Clamp] = set()
        for i in range(2):
            prev = self.cmd[i]
            box = self.workspace[i]
            if holding:
                c, f = brake_step(prev, self.dt, self.limits, box)
            else:
                w = self.interp[i].sample(now)
                p, clamped = box.clamp(np.asarray(w.position, dtype=float))
                if clamped:
                    flags.add(Clamp.WORKSPACE)
                # The box is passed on too: a clamped target alone does not keep the path inside.
                c, f = limit_step(prev, p, w.quaternion, w.gripper, self.dt, self.limits, box)
            flags |= f
            new.append(c)
        pts = [self.frames.key_points(i, states[i].joint_positions) for i in range(2)]
        cur = min_distance(self._capsules(pts[0], self.cmd[0].position, np.zeros(3)),
                           self._capsules(pts[1], self.cmd[1].position, np.zeros(3)))
        pred = min_distance(
            self._capsules(pts[0], new[0].position, new[0].position - self.cmd[0].position),
            self._capsules(pts[1], new[1].position, new[1].position - self.cmd[1].position))
        self.arm_distance = pred
        if inter_arm_stop(cur, pred, self.min_arm_distance):
            flags.add(Clamp.INTER_ARM)
            new = [c.at_rest() for c in self.cmd]  # stop before contact; moving apart stays allowed
            if self.clamps[Clamp.INTER_ARM.value] == 0 or not holding:
                self.log.warning("inter-arm distance %.3f m would fall below %.3f m: step refused",
                                 pred, self.min_arm_distance)
        for fl in flags:
            self.clamps[fl.value] += 1
        targets = tuple(ArmTarget(self.frames.to_base(i, c.position, c.quaternion), float(np.clip(c.gripper, 0, 1)))
                        for i, c in enumerate(new))
        return Step((new[0], new[1]), (targets[0], targets[1]))

    def commit(self, step: Step) -> None:
        """``step`` was sent: it is what the arms are commanded now."""
        self.cmd = list(step.commands)
