"""The rig's URDF, generated from the tables the sim's MJCF is built from (no second copy).

Sources: the Rizon 4S chain and base layout (``a2w.arms.kinematics``: JOINT_ORIGINS,
FLANGE_ORIGIN, TRI_BASE_POSES), its joint limits, the gripper's TCP offset and the camera mounts
(``a2w.sim.scene``: HARD_LIMITS/SOFT_LIMITS/VELOCITY_LIMITS/EFFORT_LIMITS, TCP_OFFSET,
front_camera_mount, wrist_camera_mount). Frame names are ``a2w.frames``'s. The tree
(docs/architecture.md §5)::

    world
    ├── <arm>_base                     fixed: the arm's mount (base pose parameter)
    │   └── <arm>_link1 … <arm>_link7  revolute <arm>_joint1..7 (the /joint_states names)
    │       └── <arm>_flange           fixed (Rizon 4S flange, 0.124 m)
    │           ├── <arm>_gripper      fixed (Robotiq 2F-85 body; fingers not modelled)
    │           │   └── <arm>_tcp      fixed, tcp_offset along the tool z (pad centre)
    │           └── cam_<arm>_wrist_link                  fixed: the wrist camera mount
    │               └── cam_<arm>_wrist_color_optical_frame
    └── cam_front_link                 fixed: the front camera mount
        └── cam_front_color_optical_frame

Camera links follow realsense-ros (``cam_<view>_link``: x forward, y left, z up); optical frames
look along +z with +y down (REP 103). A MuJoCo camera looks along its -z with +y up, so
R_optical = R_mujoco · diag(1, -1, -1). The sim renders from the optical frame's origin, so the
link and the optical frame share an origin here; on a RealSense the driver publishes its own
link → optical transforms (``optical_frames=False`` leaves them to it).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
from scipy.spatial.transform import Rotation

from a2w import frames
from a2w.arms.kinematics import FLANGE_ORIGIN, JOINT_ORIGINS, TRI_BASE_POSES
from a2w.msgs.cameras import FRONT, LEFT_WRIST, RIGHT_WRIST
from a2w.sim.scene import (
    ARMS,
    EFFORT_LIMITS,
    HARD_LIMITS,
    LINK_RADIUS,
    SOFT_LIMITS,
    TCP_OFFSET,
    VELOCITY_LIMITS,
    SceneConfig,
    front_camera_mount,
    wrist_camera_mount,
)

ROBOT_NAME = "a2w_dual_rizon4s"
VIEWS: tuple[str, ...] = (FRONT, LEFT_WRIST, RIGHT_WRIST)
WRIST_ARM: dict[str, str] = {LEFT_WRIST: "left", RIGHT_WRIST: "right"}  # wrist view -> its arm
# Columns: the camera link's x (forward), y (left), z (up) in optical coordinates.
OPTICAL_TO_LINK = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
MUJOCO_TO_OPTICAL = np.diag([1.0, -1.0, -1.0])
# Flexiv's safety_controller gains for the soft limits (rig_facts.md §1.1).
SOFT_K_POSITION, SOFT_K_VELOCITY = 100.0, 40.0


def joint_name(arm: str, i: int) -> str:
    """Name of joint A``i`` (1..7) of ``arm``, as the arm node publishes it on /joint_states."""
    return f"{arm}_joint{i}"


def link_name(arm: str, i: int) -> str:
    """Link ``i`` of ``arm``: 0 is the base (``<arm>_base``), 1..7 the links, 8 the flange."""
    if i == 0:
        return frames.base_frame(arm)
    return f"{arm}_flange" if i == len(JOINT_ORIGINS) + 1 else f"{arm}_link{i}"


def flange_frame(arm: str) -> str:
    return link_name(arm, len(JOINT_ORIGINS) + 1)


def gripper_frame(arm: str) -> str:
    return f"{arm}_gripper"


def _pose6(v: Sequence[float], what: str) -> tuple[float, ...]:
    t = tuple(float(x) for x in v)
    if len(t) != 6 or not all(math.isfinite(x) for x in t):
        raise ValueError(f"{what}: need 6 finite values x, y, z, roll, pitch, yaw, got {list(v)}")
    return t


@dataclass(frozen=True)
class RigSpec:
    """What the URDF contains: which arms and cameras, where the bases are, the TCP offset."""

    arms: tuple[str, ...] = ARMS
    bases: Mapping[str, Sequence[float]] = field(default_factory=lambda: dict(TRI_BASE_POSES))
    tcp_offset: float = TCP_OFFSET
    views: tuple[str, ...] = VIEWS
    optical_frames: bool = True
    # cam_front_link in the world as x, y, z, roll, pitch, yaw; None: the sim scene's mount.
    front_link_pose: Sequence[float] | None = None
    # cam_<arm>_wrist_link in <arm>_flange per arm (4x4; a calibrated hand-eye through
    # a2w.rig.extrinsics.wrist_link_in_flange); an arm not in it: the sim scene's mount.
    wrist_link_poses: Mapping[str, np.ndarray] = field(default_factory=dict)
    scene: SceneConfig = field(default_factory=lambda: SceneConfig(task="none"))

    def __post_init__(self) -> None:
        arms = tuple(self.arms)
        if len(set(arms)) != len(arms) or not set(arms) <= set(ARMS):
            raise ValueError(f"arms: distinct names from {list(ARMS)}, got {list(arms)}")
        object.__setattr__(self, "arms", arms)
        missing = [a for a in arms if a not in self.bases]
        if missing:
            raise ValueError(f"bases: no base pose for {missing}")
        object.__setattr__(self, "bases", {a: _pose6(self.bases[a], f"{a} base pose") for a in arms})
        if not (math.isfinite(self.tcp_offset) and 0.0 <= self.tcp_offset <= 1.0):
            raise ValueError(f"tcp_offset: must be within [0, 1] m, got {self.tcp_offset}")
        views = tuple(self.views)
        if len(set(views)) != len(views):
            raise ValueError(f"views: duplicate names in {list(views)}")
        for v in views:
            if v not in VIEWS:
                raise ValueError(f"views: unknown view {v!r}; known: {list(VIEWS)}")
            if v in WRIST_ARM and WRIST_ARM[v] not in arms:
                raise ValueError(f"views: {v!r} is mounted on the {WRIST_ARM[v]} arm, which is not in arms")
        object.__setattr__(self, "views", views)
        if self.front_link_pose is not None:
            object.__setattr__(self, "front_link_pose", _pose6(self.front_link_pose, "front_link_pose"))
        wrist = {}
        for arm, m in dict(self.wrist_link_poses).items():
            m = np.asarray(m, dtype=float)
            if arm not in ARMS or m.shape != (4, 4) or not np.isfinite(m).all():
                raise ValueError(f"wrist_link_poses: a 4x4 finite pose per arm of {list(ARMS)}, got {arm!r}")
            wrist[arm] = m
        object.__setattr__(self, "wrist_link_poses", wrist)


def mujoco_to_link(axes: np.ndarray) -> np.ndarray:
    """Rotation of a realsense-style camera link from a MuJoCo camera's axes (same parent)."""
    return axes @ MUJOCO_TO_OPTICAL @ OPTICAL_TO_LINK


def camera_mount(spec: RigSpec, view: str) -> tuple[str, np.ndarray]:
    """Parent frame and 4x4 pose of ``cam_<view>_link`` in it."""
    m = np.eye(4)
    if view in WRIST_ARM and WRIST_ARM[view] in spec.wrist_link_poses:
        return flange_frame(WRIST_ARM[view]), spec.wrist_link_poses[WRIST_ARM[view]].copy()
    if view in WRIST_ARM:
        pos, axes = wrist_camera_mount(spec.scene)
        parent = flange_frame(WRIST_ARM[view])
    elif spec.front_link_pose is not None:
        p = spec.front_link_pose
        pos, link_r = np.array(p[:3]), Rotation.from_euler("xyz", p[3:]).as_matrix()
        m[:3, :3], m[:3, 3] = link_r, pos
        return frames.WORLD, m
    else:
        pos, axes = front_camera_mount(spec.scene)
        parent = frames.WORLD
    m[:3, :3], m[:3, 3] = mujoco_to_link(axes), pos
    return parent, m


def front_link_pose(scene: SceneConfig | None = None) -> list[float]:
    """The sim scene's front camera link in the world as x, y, z, roll, pitch, yaw."""
    _, m = camera_mount(RigSpec(arms=(), views=(FRONT,), scene=scene or SceneConfig(task="none")), FRONT)
    return [*map(float, m[:3, 3]), *map(float, Rotation.from_matrix(m[:3, :3]).as_euler("xyz"))]


def _num(x: float) -> str:
    # repr: the shortest text that reads back as the same double, so nothing is lost in the file.
    return repr(float(x) + 0.0)  # + 0.0: no "-0.0"


def _nums(v: Sequence[float]) -> str:
    return " ".join(_num(x) for x in v)


class _Builder:
    def __init__(self) -> None:
        self.robot = ET.Element("robot", name=ROBOT_NAME)

    def link(self, name: str, radius: float | None = None, end: Sequence[float] | None = None) -> None:
        """A link; with ``radius``, a simple shape for RViz's RobotModel as the MJCF's capsule: a
        sphere at the link's origin and a cylinder from there to ``end``."""
        el = ET.SubElement(self.robot, "link", name=name)
        if radius is None:
            return
        vis = ET.SubElement(el, "visual")
        ET.SubElement(ET.SubElement(vis, "geometry"), "sphere", radius=_num(radius))
        d = np.asarray(end if end is not None else (0.0, 0.0, 0.0), dtype=float)
        length = float(np.linalg.norm(d))
        if length > 1e-9:
            # URDF cylinders run along their z: turn z onto d.
            rot, _ = Rotation.align_vectors([d / length], [[0.0, 0.0, 1.0]])
            vis = ET.SubElement(el, "visual")
            ET.SubElement(vis, "origin", xyz=_nums(d / 2), rpy=_nums(rot.as_euler("xyz")))
            ET.SubElement(ET.SubElement(vis, "geometry"), "cylinder", radius=_num(radius), length=_num(length))

    def joint(self, name: str, kind: str, parent: str, child: str, xyz: Sequence[float],
              rpy: Sequence[float]) -> ET.Element:
        el = ET.SubElement(self.robot, "joint", name=name, type=kind)
        ET.SubElement(el, "parent", link=parent)
        ET.SubElement(el, "child", link=child)
        ET.SubElement(el, "origin", xyz=_nums(xyz), rpy=_nums(rpy))
        return el

    def fixed(self, name: str, parent: str, child: str, m: np.ndarray) -> None:
        rpy = Rotation.from_matrix(m[:3, :3]).as_euler("xyz")
        self.joint(name, "fixed", parent, child, m[:3, 3], rpy)


def _arm(b: _Builder, spec: RigSpec, arm: str) -> None:
    base = spec.bases[arm]
    ends = [o[0] for o in JOINT_ORIGINS] + [FLANGE_ORIGIN[0]]  # each link's next joint, as the MJCF's capsules
    b.link(link_name(arm, 0), LINK_RADIUS[0], ends[0])
    b.joint(f"{arm}_base_mount", "fixed", frames.WORLD, link_name(arm, 0), base[:3], base[3:])
    for i, (xyz, rpy, axis) in enumerate(JOINT_ORIGINS, start=1):
        b.link(link_name(arm, i), LINK_RADIUS[i], ends[i])
        el = b.joint(joint_name(arm, i), "revolute", link_name(arm, i - 1), link_name(arm, i), xyz, rpy)
        ET.SubElement(el, "axis", xyz={"x": "1 0 0", "y": "0 1 0", "z": "0 0 1"}[axis])
        lo, hi = HARD_LIMITS[i - 1]
        ET.SubElement(el, "limit", lower=_num(lo), upper=_num(hi), effort=_num(EFFORT_LIMITS[i - 1]),
                      velocity=_num(VELOCITY_LIMITS[i - 1]))
        slo, shi = SOFT_LIMITS[i - 1]
        ET.SubElement(el, "safety_controller", soft_lower_limit=_num(slo), soft_upper_limit=_num(shi),
                      k_position=_num(SOFT_K_POSITION), k_velocity=_num(SOFT_K_VELOCITY))
    b.link(flange_frame(arm))
    b.joint(f"{arm}_flange_joint", "fixed", link_name(arm, len(JOINT_ORIGINS)), flange_frame(arm), *FLANGE_ORIGIN)
    b.link(gripper_frame(arm), 0.037, (0.0, 0.0, spec.tcp_offset))  # the MJCF's coupling radius
    b.joint(f"{arm}_gripper_mount", "fixed", flange_frame(arm), gripper_frame(arm), (0, 0, 0), (0, 0, 0))
    b.link(frames.tcp_frame(arm))
    b.joint(f"{arm}_tcp_joint", "fixed", gripper_frame(arm), frames.tcp_frame(arm),
            (0.0, 0.0, spec.tcp_offset), (0, 0, 0))


def _camera(b: _Builder, spec: RigSpec, view: str) -> None:
    parent, m = camera_mount(spec, view)
    b.link(frames.camera_link(view))
    b.fixed(f"{frames.camera_name(view)}_mount", parent, frames.camera_link(view), m)
    if spec.optical_frames:
        b.link(frames.optical_frame(view))
        # realsense-ros's link -> optical rotation: rpy (-pi/2, 0, -pi/2).
        b.joint(f"{frames.camera_name(view)}_optical_joint", "fixed", frames.camera_link(view),
                frames.optical_frame(view), (0, 0, 0), (-math.pi / 2, 0.0, -math.pi / 2))


def build_urdf(spec: RigSpec | None = None) -> str:
    """The rig's URDF text (a tree rooted at ``world``)."""
    spec = spec or RigSpec()
    b = _Builder()
    b.link(frames.WORLD)
    for arm in spec.arms:
        _arm(b, spec, arm)
    for view in spec.views:
        _camera(b, spec, view)
    ET.indent(b.robot)
    head = "<?xml version=\"1.0\"?>\n<!-- Generated by a2w.description.urdf from the sim's tables: do not edit. -->\n"
    return head + ET.tostring(b.robot, encoding="unicode") + "\n"
