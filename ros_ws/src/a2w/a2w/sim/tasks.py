"""Sim tasks: their objects, randomised initial states and success detection.

* ``pick_cube``: single-arm. A 4 cm cube lies at a random pose on one side of the table; the arm
  on that side picks it up. Success: the cube is held 8 cm or more above the table.
* ``lift_box``: bimanual. A 40 cm long bar-shaped box lies across the shared zone (rig_facts.md
  §4.3); each arm grasps one end. Success: the box is 8 cm or more above the table and level
  within 15°.

Initial arm configurations are the ready poses with a little seeded joint noise, so episodes of
different seeds start differently but deterministically.
"""

from __future__ import annotations

import abc
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from a2w.geometry import matrix_to_pose
from a2w.msgs.arms import ARM_NAMES
from a2w.msgs.sim import TaskFacts

if TYPE_CHECKING:
    from a2w.sim.world import SimWorld

TASK_NAMES: tuple[str, ...] = ("pick_cube", "lift_box")
LIFT_HEIGHT = 0.08
ARM_NOISE = 0.03  # rad, uniform, on every arm joint at reset


class Task(abc.ABC):
    name: str
    object_name: str
    half_size: tuple[float, float, float]
    mass: float
    rgba: str

    def mjcf(self) -> str:
        hx, hy, hz = self.half_size
        return (f'<body name="{self.object_name}" pos="0 0 {hz}"><freejoint name="{self.object_name}_free"/>'
                f'<geom name="{self.object_name}_geom" type="box" size="{hx} {hy} {hz}" mass="{self.mass}" '
                f'rgba="{self.rgba}" friction="1.0 0.01 0.0002" contype="4" conaffinity="7"/></body>')

    @abc.abstractmethod
    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """Random initial object pose (and task details) for one episode."""

    def reset(self, world: "SimWorld", rng: np.random.Generator) -> dict[str, Any]:
        """Place the object, put both arms at their ready poses plus noise; returns the episode info."""
        info = self.sample(rng)
        world.set_object_pose(self.object_name, info["position"], info["yaw"])
        for arm in ("left", "right"):
            q = world.ready_q(arm) + rng.uniform(-ARM_NOISE, ARM_NOISE, size=7)
            world.set_arm_q(arm, q)
        info["initial_z"] = float(info["position"][2])
        return info

    def object_pose(self, world: "SimWorld") -> tuple[np.ndarray, np.ndarray]:
        """Object position and rotation matrix in the table frame."""
        return world.body_pose(self.object_name)

    def facts(self, world: "SimWorld", info: dict[str, Any], seed: int) -> TaskFacts:
        """What a scripted expert plans from, as of now: the object's pose and the arm bases."""
        with world.lock:
            pos, rot = self.object_pose(world)
            bases = tuple(matrix_to_pose(world.arms[a].base_T) for a in ARM_NAMES)
            t = world.time
        obj = np.eye(4)
        obj[:3, :3], obj[:3, 3] = rot, pos
        return TaskFacts(t, self.name, seed, self.object_name, matrix_to_pose(obj), bases, info.get("arm", ""))

    @abc.abstractmethod
    def success(self, world: "SimWorld", info: dict[str, Any]) -> bool: ...

    def active_arms(self, info: dict[str, Any]) -> tuple[str, ...]:
        """The arms the task moves in the episode ``info`` describes (an episode's ``reset`` result)."""
        return tuple(ARM_NAMES)


class PickCube(Task):
    name = "pick_cube"
    object_name = "cube"
    half_size = (0.02, 0.02, 0.02)
    mass = 0.1
    rgba = "0.85 0.15 0.15 1"

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        side = "left" if rng.random() < 0.5 else "right"  # left arm is at +y (scene.py)
        sign = 1.0 if side == "left" else -1.0
        pos = np.array([rng.uniform(-0.20, 0.05), sign * rng.uniform(0.08, 0.25), self.half_size[2]])
        return {"position": pos, "yaw": float(rng.uniform(-math.pi / 4, math.pi / 4)), "arm": side}

    def active_arms(self, info: dict[str, Any]) -> tuple[str, ...]:
        return (info["arm"],)

    def success(self, world: "SimWorld", info: dict[str, Any]) -> bool:
        pos, _ = self.object_pose(world)
        return bool(pos[2] > info["initial_z"] + LIFT_HEIGHT)


class LiftBox(Task):
    name = "lift_box"
    object_name = "box"
    half_size = (0.025, 0.20, 0.04)
    mass = 0.5
    rgba = "0.15 0.35 0.85 1"
    grasp_offset = 0.15  # grasp points along the box's long axis, from its centre
    max_tilt = math.radians(15)

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        pos = np.array([rng.uniform(-0.18, -0.02), rng.uniform(-0.04, 0.04), self.half_size[2]])
        return {"position": pos, "yaw": float(rng.uniform(-math.radians(10), math.radians(10)))}

    def success(self, world: "SimWorld", info: dict[str, Any]) -> bool:
        pos, rot = self.object_pose(world)
        tilt = math.acos(float(np.clip(rot[2, 2], -1.0, 1.0)))
        return bool(pos[2] > info["initial_z"] + LIFT_HEIGHT and tilt < self.max_tilt)


TASKS: dict[str, Task] = {"pick_cube": PickCube(), "lift_box": LiftBox()}


def get_task(name: str) -> Task:
    """The task called ``name``; ``ValueError`` naming the known ones."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"task: unknown task {name!r}; known: {list(TASK_NAMES)}") from None
