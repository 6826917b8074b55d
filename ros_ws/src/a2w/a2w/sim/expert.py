"""Scripted experts: demonstrations through the arm interface, in the A2World action convention.

An expert is a list of segments (duration, per-arm TCP goal in the table frame, gripper opening)
planned from the task's privileged facts (``TaskFacts``: object pose, arm bases) at the start of
the episode. The ``ExpertDriver`` runs
as a world pre-step hook at exactly 30 Hz of sim time (every 20 physics steps): it samples the
min-jerk trajectory, converts it to each arm's base frame and calls ``RigBackend.command``, just
as the policy or teleop path would. The recorded actions are the A2World 14-D deltas between
consecutive commanded TCP poses (the first from the pose measured when the expert starts), with
the absolute gripper opening (docs/architecture.md §5).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from a2w.actions import encode_dual
from a2w.arms.backend import ArmFaultError
from a2w.arms.sim.backend import SimRigBackend
from a2w.geometry import matrix_to_pose, pose_to_matrix
from a2w.msgs.arms import ArmTarget
from a2w.msgs.common import Pose
from a2w.msgs.sim import TaskFacts
from a2w.sim.scene import ARMS
from a2w.sim.tasks import LiftBox, PickCube, Task
from a2w.sim.world import SimWorld

log = logging.getLogger(__name__)

ACTION_RATE = 30.0  # Hz (docs/architecture.md §5)
SETTLE_TIME = 0.2  # s of sim time before the expert starts, so objects come to rest
TRAVEL_SPEED = 0.25  # m/s for free-space moves


@dataclass(frozen=True)
class Segment:
    duration: float
    goals: tuple[np.ndarray | None, np.ndarray | None]  # 4x4 per arm (table frame); None = stay
    grips: tuple[float | None, float | None]  # gripper_open per arm; None = unchanged


def tool_down(finger_axis_angle: float, pos: np.ndarray) -> np.ndarray:
    """TCP pose pointing straight down with the fingers travelling along world angle ``a``."""
    a = finger_axis_angle
    t = np.eye(4)
    t[:3, 0] = (-math.sin(a), math.cos(a), 0.0)
    t[:3, 1] = (math.cos(a), math.sin(a), 0.0)
    t[:3, 2] = (0.0, 0.0, -1.0)
    t[:3, 3] = pos
    return t


def _finger_angle(tcp: np.ndarray) -> float:
    return math.atan2(tcp[1, 1], tcp[0, 1])


def _closest(options: np.ndarray, current: float, period: float) -> float:
    """The option closest to ``current`` with angles equal modulo ``period``."""
    diff = (options - current + period / 2) % period - period / 2
    return float(current + diff[np.argmin(np.abs(diff))])


def _min_jerk(s: float) -> float:
    s = min(max(s, 0.0), 1.0)
    return min(1.0, max(0.0, s * s * s * (10 - 15 * s + 6 * s * s)))


def plan(task: Task, facts: TaskFacts, tcp0: tuple[np.ndarray, np.ndarray]) -> list[Segment]:
    """Segments for ``task`` from its privileged ``facts`` and the measured TCP poses ``tcp0``
    (4x4, table frame)."""
    obj = pose_to_matrix(facts.object_pose)
    pos, rot = obj[:3, 3], obj[:3, :3]
    yaw = math.atan2(rot[1, 0], rot[0, 0])
    if isinstance(task, PickCube):
        a = ARMS.index(facts.arm)
        # The gripper is symmetric: any cube face pair, fingers' angle modulo pi/2.
        ang = _closest(yaw + np.arange(4) * math.pi / 2, _finger_angle(tcp0[a]), math.pi / 2)
        above = tool_down(ang, pos + [0, 0, 0.13])
        # Pads (25 mm tall) centred 10 mm above the cube's centre: a firm grip whose tips stay
        # above the arm node's workspace floor (z 0.03 for the TCP).
        grasp = tool_down(ang, np.array([pos[0], pos[1], 0.03]))
        lifted = tool_down(ang, np.array([pos[0], pos[1], 0.20]))
        travel = max(1.0, float(np.linalg.norm(above[:3, 3] - tcp0[a][:3, 3])) / TRAVEL_SPEED)

        def one(goal: np.ndarray | None) -> tuple[np.ndarray | None, np.ndarray | None]:
            return (goal, None) if a == 0 else (None, goal)

        def grip(g: float) -> tuple[float | None, float | None]:
            return (g, None) if a == 0 else (None, g)

        return [Segment(travel, one(above), grip(1.0)), Segment(1.0, one(grasp), grip(1.0)),
                Segment(0.8, one(None), grip(0.0)), Segment(1.2, one(lifted), grip(0.0)),
                Segment(0.6, one(None), grip(0.0))]
    if isinstance(task, LiftBox):
        long_axis = rot[:3, 1]
        ends = [pos + s * task.grasp_offset * long_axis for s in (1.0, -1.0)]
        if ends[0][1] < ends[1][1]:
            ends.reverse()  # the left arm (+y) takes the +y end
        # Fingers close across the box's short axis (its local x), modulo pi.
        angs = [_closest(np.array([yaw, yaw + math.pi]), _finger_angle(tcp0[i]), math.pi) for i in range(2)]
        above = tuple(tool_down(angs[i], np.array([ends[i][0], ends[i][1], 0.16])) for i in range(2))
        grasp = tuple(tool_down(angs[i], np.array([ends[i][0], ends[i][1], 0.05])) for i in range(2))
        lifted = tuple(tool_down(angs[i], np.array([ends[i][0], ends[i][1], 0.20])) for i in range(2))
        travel = max(1.2, max(float(np.linalg.norm(above[i][:3, 3] - tcp0[i][:3, 3])) for i in range(2))
                     / TRAVEL_SPEED)
        return [Segment(travel, above, (1.0, 1.0)), Segment(1.0, grasp, (1.0, 1.0)),
                Segment(0.8, (None, None), (0.0, 0.0)), Segment(1.5, lifted, (0.0, 0.0)),
                Segment(0.6, (None, None), (0.0, 0.0))]
    raise ValueError(f"task: no scripted expert for {task.name!r}")


class ScriptedExpert:
    """Samples a plan at any time since its start: per-arm TCP pose (table frame) and gripper."""

    def __init__(self, segments: list[Segment], start_poses: tuple[np.ndarray, np.ndarray],
                 start_grips: tuple[float, float]) -> None:
        self.segments = segments
        self.duration = sum(s.duration for s in segments)
        # Resolve "stay" goals into explicit waypoints per arm.
        self._knots: list[list[tuple[float, np.ndarray, float]]] = []
        for a in range(2):
            t, pose, grip = 0.0, start_poses[a], start_grips[a]
            knots = [(t, pose, grip)]
            for s in segments:
                t += s.duration
                pose = s.goals[a] if s.goals[a] is not None else pose
                grip = s.grips[a] if s.grips[a] is not None else grip
                knots.append((t, pose, grip))
            self._knots.append(knots)

    def sample(self, t: float) -> tuple[tuple[np.ndarray, float], tuple[np.ndarray, float]]:
        return self._sample_arm(0, t), self._sample_arm(1, t)

    def _sample_arm(self, a: int, t: float) -> tuple[np.ndarray, float]:
        knots = self._knots[a]
        for (t0, p0, g0), (t1, p1, g1) in zip(knots, knots[1:]):
            if t <= t1:
                s = _min_jerk((t - t0) / (t1 - t0))
                pose = np.eye(4)
                pose[:3, 3] = (1 - s) * p0[:3, 3] + s * p1[:3, 3]
                rots = Rotation.from_matrix(np.stack([p0[:3, :3], p1[:3, :3]]))
                pose[:3, :3] = Slerp([0.0, 1.0], rots)(s).as_matrix()
                # The 2F-85 closes on a byte command; the width ramp is the gripper's own speed.
                return pose, g1 if t > t0 else g0
        return knots[-1][1], knots[-1][2]


@dataclass(eq=False)
class ExpertDriver:
    """Drives ``rig`` from ``expert`` at 30 Hz of sim time, as a world pre-step hook."""

    world: SimWorld
    rig: SimRigBackend
    expert: ScriptedExpert
    on_action: Callable[[float], None] | None = None  # called after each command (stamp)
    t_start: float = 0.0
    commanded: list[np.ndarray] = field(default_factory=list)  # (2, 8) per step, base frames
    stamps: list[float] = field(default_factory=list)
    error: str = ""
    done: bool = False

    def __post_init__(self) -> None:
        self._period_steps = int(round(1.0 / ACTION_RATE / self.world.dt))
        self.t_start = self.world.time
        self._start_step = self.world.steps
        left, right = self.rig.read()
        self.commanded.append(np.stack([_pose8(left.tcp_pose, left.gripper_open),
                                        _pose8(right.tcp_pose, right.gripper_open)]))
        self.world.pre_step.append(self)

    def __call__(self, world: SimWorld) -> None:
        if self.done or (world.steps - self._start_step) % self._period_steps:
            return
        t = world.time - self.t_start
        if t > self.expert.duration + 1e-9:
            self.detach()
            return
        targets = []
        row = []
        for a, (pose_w, grip) in enumerate(self.expert.sample(t + 1.0 / ACTION_RATE)):
            p = matrix_to_pose(np.linalg.inv(self.rig.base_pose(a)) @ pose_w)
            targets.append(ArmTarget(p, grip))
            row.append(_pose8(p, grip))
        try:
            self.rig.command((targets[0], targets[1]))
        except ArmFaultError as exc:
            self.error = str(exc)
            log.warning("expert stopped: %s", exc)
            self.detach()
            return
        self.commanded.append(np.stack(row))
        self.stamps.append(world.time)
        if self.on_action is not None:
            self.on_action(world.time)

    def detach(self) -> None:
        self.done = True
        if self in self.world.pre_step:
            self.world.pre_step.remove(self)

    def actions(self) -> np.ndarray:
        """(T, 14) A2World deltas of the commanded trajectory."""
        return encode_dual(np.stack(self.commanded)).astype(np.float32)


def _pose8(pose: Pose, grip: float) -> np.ndarray:
    return np.concatenate([pose.position, pose.quaternion, [grip]])


def start_expert(task: Task, facts: TaskFacts, world: SimWorld, rig: SimRigBackend,
                 on_action: Callable[[float], None] | None = None) -> ExpertDriver:
    """Plan from ``facts`` and the arms' current state, and attach a driver to ``world``."""
    with world.lock:
        states = rig.read()
        tcp0 = tuple(rig.base_pose(a) @ pose_to_matrix(states[a].tcp_pose) for a in range(2))
        expert = ScriptedExpert(plan(task, facts, tcp0), tcp0, (states[0].gripper_open, states[1].gripper_open))
        return ExpertDriver(world, rig, expert, on_action)
