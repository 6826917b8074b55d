"""Our own MJCF for the simulated rig, generated from the facts (no downloaded assets).

Two Rizon 4S-like 7-DoF arms (kinematics, limits, inertias from rig_facts.md §1), each with a
2F-85-like parallel gripper (two slide fingers, rig_facts.md §2.4 option B), a table in the
TRI-style ±45° yaw layout (rig_facts.md §4.5) with the base poses as parameters, task objects,
a front D435i-like camera and two wrist D405-like cameras. Visuals are the collision primitives:
shadows off, no MSAA, so three cameras render fast on a CPU (rig_facts.md §0.9, §5.4).

Frames: the world frame is the table-top frame T (origin at the top-surface centre, z up, +x away
from the arms). "left" is the arm at +y, i.e. on the robot's own left when it faces +x (REP 103),
so the front camera (at +x, looking back) sees the left arm on the right of its image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from a2w.arms.kinematics import FLANGE_ORIGIN, JOINT_ORIGINS, TRI_BASE_POSES  # rig_facts.md §1.1, §4.5
from a2w.geometry import rpy_to_quaternion, xyzw_to_wxyz

ARMS: tuple[str, str] = ("left", "right")
N_JOINTS = 7
TIMESTEP = 1.0 / 600.0  # 20 substeps per 30 Hz frame (rig_facts.md §5.3)

_D = math.radians
HARD_LIMITS = np.array([(-_D(165), _D(165)), (-_D(135), _D(135)), (-_D(175), _D(175)),
                        (-_D(112), _D(159)), (-_D(175), _D(175)), (-_D(85), _D(265)),
                        (-_D(175), _D(175))])
# Soft limits, 5° inside the hard ones: the controller never commands beyond them (§1.1).
SOFT_LIMITS = np.array([(-2.7925, 2.7925), (-2.2689, 2.2689), (-2.9671, 2.9671),
                        (-1.8675, 2.6878), (-2.9671, 2.9671), (-1.3963, 4.5379),
                        (-2.9671, 2.9671)])
VELOCITY_LIMITS = np.array([2.0944, 2.0944, 2.4435, 2.4435, 4.8869, 4.8869, 4.8869])
EFFORT_LIMITS = np.array([123.0, 123.0, 64.0, 64.0, 39.0, 39.0, 39.0])
ARMATURE = np.array([3.17, 3.17, 1.38, 1.38, 0.13, 0.13, 0.13])  # menagerie (§5.2)
# 4x / 2x menagerie gains with gravity compensation (rig_facts.md §5.2, §6).
KP = np.array([1156.0, 2692.0, 896.0, 1492.0, 948.0, 928.0, 744.0])
KV = np.array([122.0, 286.0, 72.0, 118.0, 26.0, 24.0, 19.8])

# rig_facts.md §1.3 (4S): mass, COM, (ixx, iyy, izz, ixy, ixz, iyz) for base_link, link1..link7.
LINK_INERTIA: tuple[tuple[float, tuple[float, float, float], tuple[float, ...]], ...] = (
    (3.788, (0.0002, -0.0007, 0.0871), (0.0182, 0.0184, 0.010, 0.0, 0.0, 0.0)),
    (3.596, (0.0001, 0.0035, 0.150), (0.0274, 0.0273, 0.0071, 0.0, 0.0, 0.0011)),
    (2.690, (-0.0003, 0.0361, 0.0998), (0.0230, 0.0239, 0.0036, 0.0, 0.0, 0.0)),
    (2.354, (-0.0123, -0.0012, 0.1366), (0.0143, 0.0137, 0.0040, 0.0, -0.0015, 0.0)),
    (2.354, (-0.0129, 0.0313, 0.1034), (0.0180, 0.0184, 0.0030, 0.0, -0.0016, -0.0012)),
    (2.310, (0.0003, 0.0014, 0.1363), (0.0142, 0.0135, 0.0037, 0.0, 0.0, 0.0)),
    (2.223, (0.0202, 0.0596, 0.0724), (0.0085, 0.0090, 0.0042, 0.0, 0.0012, 0.0018)),
    (1.403, (0.0, 0.0001, 0.0544), (0.0032, 0.0032, 0.0018, 0.0, 0.0, 0.0)),
)
LINK_RADIUS = (0.06, 0.055, 0.055, 0.047, 0.047, 0.045, 0.045, 0.042)

# 2F-85-like gripper (rig_facts.md §2): 85 mm stroke, TCP between the pads 0.145 m past the
# flange face (§2.3), 0.90 kg.
GRIPPER_STROKE = 0.085
TCP_OFFSET = 0.145
PAD_HALF = (0.011, 0.004, 0.0125)  # x (along the jaw), y (thickness), z (along the tool)
FINGER_KP = 2000.0  # N/m; the force cap (grip force) limits the squeeze, not the gain

# Ready poses for the TRI layout, each arm its own (rig_facts.md §4.4, §6).
READY_POSE_DEG: dict[str, tuple[float, ...]] = {
    "left": (10.0, -7.0, 10.0, 94.0, -1.0, 12.0, 5.0),  # +y arm, base yaw -45°
    "right": (1.0, -6.0, 3.0, 95.0, 0.0, 12.0, 5.0),  # -y arm, base yaw +45°
}

# Camera intrinsics at 640x480 (rig_facts.md §0.7, §6): f in pixels -> vertical FOV.
FRONT_F_PX = 610.0
WRIST_F_PX = 385.0

# Collision groups: intra-arm contacts are off (the real arm's own geometry and controller handle
# that); the two arms collide with each other, and both with the world and objects.
_CT = {"left": (1, 6), "right": (2, 5), "world": (4, 7)}


def fovy_for(f_px: float, height_px: float = 480.0) -> float:
    """MuJoCo ``fovy`` (degrees) of a pinhole with focal length ``f_px`` at ``height_px`` rows."""
    return math.degrees(2.0 * math.atan(height_px / 2.0 / f_px))


@dataclass(frozen=True)
class BasePose:
    """An arm's mount in the table-top frame: position (m) and roll/pitch/yaw (rad, fixed xyz)."""

    x: float
    y: float
    z: float
    roll: float = 0.0
    pitch: float = 0.0
    yaw: float = 0.0


DEFAULT_BASES: dict[str, BasePose] = {arm: BasePose(*TRI_BASE_POSES[arm]) for arm in ARMS}


@dataclass(frozen=True)
class Marker:
    """A small fixed visual sphere (for camera tests and calibration targets)."""

    name: str
    pos: tuple[float, float, float]
    radius: float = 0.01
    rgba: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 1.0)


@dataclass(frozen=True)
class Board:
    """An optional textured calibration board (a2w.calib.sim_capture builds it from the ChArUco
    definition): a thin box whose +z face shows ``texture`` (a PNG file) stretched over
    ``half_size``, on a mocap body with that face's centre at ``pos`` / ``quat`` (w, x, y, z), so a
    tool can move it. No collisions: it is a target, not an object."""

    texture: str
    half_size: tuple[float, float]
    pos: tuple[float, float, float] = (0.0, 0.0, 0.0)
    quat: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    thickness: float = 0.003


@dataclass(frozen=True)
class SceneConfig:
    """Everything that shapes the generated MJCF. Equal configs give identical models."""

    task: str = "pick_cube"  # which task objects to add: pick_cube, lift_box or none
    left_base: BasePose = DEFAULT_BASES["left"]
    right_base: BasePose = DEFAULT_BASES["right"]
    max_width: int = 640  # offscreen buffer; renders up to this size
    max_height: int = 480
    front_pos: tuple[float, float, float] = (0.75, 0.0, 0.55)  # rig_facts.md §4.5 proposal
    front_target: tuple[float, float, float] = (-0.1, 0.0, 0.0)
    front_f_px: float = FRONT_F_PX
    wrist_f_px: float = WRIST_F_PX
    wrist_offset: float = 0.075  # off the tool axis, across the finger travel (rig_facts.md §3.4)
    wrist_standoff: float = 0.03  # past the flange face
    wrist_aim: float = 0.20  # the camera looks at this point on the tool axis (≈24° pitch)
    markers: tuple[Marker, ...] = field(default_factory=tuple)
    board: Board | None = None  # a calibration board (a2w.calib); None in every task scene

    def __post_init__(self) -> None:
        from a2w.sim.tasks import TASK_NAMES  # local: tasks imports this module

        if self.task not in TASK_NAMES + ("none",):
            raise ValueError(f"task: unknown task {self.task!r}; known: {list(TASK_NAMES) + ['none']}")
        if self.max_width <= 0 or self.max_height <= 0:
            raise ValueError("max_width/max_height: must be positive")
        for name in ("front_f_px", "wrist_f_px"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: must be positive")

    def base(self, arm: str) -> BasePose:
        return self.left_base if arm == "left" else self.right_base


def _v(a: Sequence[float]) -> str:
    return " ".join(f"{float(x):.10g}" for x in a)


def _mjcf_quat(rpy: Sequence[float]) -> np.ndarray:
    """MuJoCo's (w, x, y, z) quaternion of URDF roll, pitch, yaw."""
    return xyzw_to_wxyz(rpy_to_quaternion(rpy))


def camera_axes(forward: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Rotation (columns: the camera's x, y, z) of a MuJoCo camera looking along ``forward`` with
    image +x ``right``: MuJoCo cameras look along their -z with +y up."""
    f = forward / np.linalg.norm(forward)
    z = -f
    x = right - np.dot(right, f) * f
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return np.column_stack([x, y, z])


def front_camera_mount(cfg: SceneConfig) -> tuple[np.ndarray, np.ndarray]:
    """Position and ``camera_axes`` of the front camera in the table frame (the MJCF's and the
    URDF's, a2w.description)."""
    pos = np.asarray(cfg.front_pos, dtype=float)
    forward = np.asarray(cfg.front_target, dtype=float) - pos
    return pos, camera_axes(forward, np.cross(forward, [0.0, 0.0, 1.0]))


def wrist_camera_mount(cfg: SceneConfig) -> tuple[np.ndarray, np.ndarray]:
    """Position and ``camera_axes`` of a wrist camera in its arm's flange frame: off the tool axis
    across the finger travel, aimed at the tool axis, the fingers in the lower image."""
    pos = np.array([cfg.wrist_offset, 0.0, cfg.wrist_standoff])
    forward = np.array([0.0, 0.0, cfg.wrist_aim]) - pos
    return pos, camera_axes(forward, np.array([0.0, 1.0, 0.0]))


def _xyaxes(axes: np.ndarray) -> str:
    """MuJoCo camera ``xyaxes`` of a ``camera_axes`` rotation."""
    return _v(np.concatenate([axes[:, 0], axes[:, 1]]))


def _link_geoms(prefix: str, i: int, end: Sequence[float], group: tuple[int, int]) -> str:
    ct, ca = group
    r = LINK_RADIUS[i]
    return (f'<geom name="{prefix}link{i}_geom" type="capsule" fromto="0 0 0 {_v(end)}" '
            f'size="{r}" contype="{ct}" conaffinity="{ca}" material="arm"/>')


def _inertial(i: int) -> str:
    mass, com, (ixx, iyy, izz, ixy, ixz, iyz) = LINK_INERTIA[i]
    return (f'<inertial pos="{_v(com)}" mass="{mass}" '
            f'fullinertia="{_v((ixx, iyy, izz, ixy, ixz, iyz))}"/>')


def _gripper(prefix: str, cfg: SceneConfig, group: tuple[int, int]) -> str:
    ct, ca = group
    px, py, pz = PAD_HALF
    half_stroke = GRIPPER_STROKE / 2
    fingers = []
    for side, sign in (("l", 1.0), ("r", -1.0)):
        pad_y = sign * py
        bar_y = sign * (py + 0.006)
        fingers.append(f"""
      <body name="{prefix}finger_{side}" gravcomp="1">
        <joint name="{prefix}finger_{side}_joint" type="slide" axis="0 {sign:g} 0" range="0 {half_stroke}"
               armature="0.05" damping="20"/>
        <inertial pos="0 {sign * 0.01:g} 0.12" mass="0.05" diaginertia="2e-5 2e-5 1e-5"/>
        <geom name="{prefix}finger_{side}_bar" type="box" size="{px} 0.006 0.025" pos="0 {bar_y:g} 0.11"
              contype="{ct}" conaffinity="{ca}" material="finger"/>
        <geom name="{prefix}pad_{side}" type="box" size="{px} {py} {pz}" pos="0 {pad_y:g} {TCP_OFFSET}"
              contype="{ct}" conaffinity="{ca}" priority="1" condim="4" friction="1.0 0.02 0.0002"
              solref="0.004 1" solimp="0.95 0.99 0.001" material="pad"/>
      </body>""")
    cam_pos, cam_axes = wrist_camera_mount(cfg)
    xy = _xyaxes(cam_axes)
    fovy = fovy_for(cfg.wrist_f_px)
    return f"""
      <site name="{prefix}ft_site" pos="0 0 0" size="0.005" group="4"/>
      <site name="{prefix}tcp" pos="0 0 {TCP_OFFSET}" size="0.006" group="4" rgba="1 0 0 1"/>
      <inertial pos="0 0 0.06" mass="0.8" diaginertia="0.0025 0.0025 0.001"/>
      <geom name="{prefix}coupling" type="cylinder" fromto="0 0 0 0 0 0.07" size="0.037"
            contype="{ct}" conaffinity="{ca}" material="gripper"/>
      <geom name="{prefix}palm" type="box" size="0.022 0.045 0.017" pos="0 0 0.085"
            contype="{ct}" conaffinity="{ca}" material="gripper"/>
      <geom name="{prefix}d405" type="box" size="0.012 0.021 0.021" pos="{_v(cam_pos + [0.012, 0, 0])}"
            contype="0" conaffinity="0" material="camera"/>
      <camera name="{prefix}wrist_cam" pos="{_v(cam_pos)}" xyaxes="{xy}" fovy="{fovy:.8f}"/>
      {''.join(fingers)}"""


def _arm(arm: str, cfg: SceneConfig) -> str:
    prefix = f"{arm}/"
    base = cfg.base(arm)
    group = _CT[arm]
    ends = [o[0] for o in JOINT_ORIGINS[1:]] + [FLANGE_ORIGIN[0]]
    # Innermost first: the flange body holds the gripper; then wrap links 7..1 around it.
    body = (f'<body name="{prefix}flange" pos="{_v(FLANGE_ORIGIN[0])}" '
            f'quat="{_v(_mjcf_quat(FLANGE_ORIGIN[1]))}" gravcomp="1">'
            f'{_gripper(prefix, cfg, group)}</body>')
    for i in range(N_JOINTS, 0, -1):
        xyz, rpy, axis = JOINT_ORIGINS[i - 1]
        ax = {"y": "0 1 0", "z": "0 0 1"}[axis]
        lo, hi = HARD_LIMITS[i - 1]
        body = (
            f'<body name="{prefix}link{i}" pos="{_v(xyz)}" quat="{_v(_mjcf_quat(rpy))}" '
            f'gravcomp="1">'
            f'<joint name="{prefix}joint{i}" axis="{ax}" range="{lo:.6f} {hi:.6f}" '
            f'armature="{ARMATURE[i - 1]}" damping="0.5" actuatorgravcomp="true" '
            f'actuatorfrcrange="{-EFFORT_LIMITS[i - 1]} {EFFORT_LIMITS[i - 1]}"/>'
            f'{_inertial(i)}{_link_geoms(prefix, i, ends[i - 1], group)}{body}</body>'
        )
    r0 = LINK_RADIUS[0]
    base_quat = _mjcf_quat((base.roll, base.pitch, base.yaw))
    return (
        f'<body name="{prefix}base" pos="{_v((base.x, base.y, base.z))}" quat="{_v(base_quat)}">'
        f'{_inertial(0)}'
        f'<geom name="{prefix}base_geom" type="cylinder" fromto="0 0 0 0 0 0.155" size="{r0}" '
        f'contype="0" conaffinity="0" material="arm"/>'
        f'{body}</body>'
        f'<geom name="{prefix}pedestal" type="cylinder" size="0.09" '
        f'fromto="{base.x} {base.y} -0.75 {base.x} {base.y} {base.z}" contype="0" conaffinity="0" '
        f'material="pedestal"/>'
    )


def _actuators(arm: str) -> str:
    prefix = f"{arm}/"
    out = []
    for i in range(N_JOINTS):
        lo, hi = SOFT_LIMITS[i]
        out.append(f'<position name="{prefix}act{i + 1}" joint="{prefix}joint{i + 1}" kp="{KP[i]}" '
                   f'kv="{KV[i]}" ctrlrange="{lo} {hi}"/>')
    for side in ("l", "r"):
        out.append(f'<position name="{prefix}act_finger_{side}" joint="{prefix}finger_{side}_joint" '
                   f'kp="{FINGER_KP}" kv="40" ctrlrange="0 {GRIPPER_STROKE / 2}" forcerange="-60 60"/>')
    return "\n    ".join(out)


def _task_objects(task: str) -> str:
    from a2w.sim.tasks import TASKS

    if task == "none":
        return ""
    return TASKS[task].mjcf()


def _board(board: Board | None) -> tuple[str, str]:
    """The board's asset and body MJCF (empty without a board)."""
    if board is None:
        return "", ""
    h = board.thickness / 2
    asset = (f'<texture name="calib_board" type="2d" file="{board.texture}"/>'
             '<material name="calib_board" texture="calib_board" specular="0" shininess="0"/>')
    body = (f'<body name="calib_board" mocap="true" pos="{_v(board.pos)}" quat="{_v(board.quat)}">'
            f'<geom name="calib_board" type="box" size="{_v((*board.half_size, h))}" pos="0 0 {-h!r}" '
            f'material="calib_board" contype="0" conaffinity="0"/></body>')
    return asset, body


def build_mjcf(cfg: SceneConfig) -> str:
    """The scene as an MJCF string."""
    ct_w, ca_w = _CT["world"]
    front_xy = _xyaxes(front_camera_mount(cfg)[1])
    markers = "".join(
        f'<geom name="marker/{m.name}" type="sphere" size="{m.radius}" pos="{_v(m.pos)}" '
        f'rgba="{_v(m.rgba)}" contype="0" conaffinity="0"/>' for m in cfg.markers)
    board_asset, board_body = _board(cfg.board)
    return f"""<mujoco model="a2w_sim_rig">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{TIMESTEP!r}" integrator="implicitfast" cone="elliptic" impratio="10"/>
  <visual>
    <global offwidth="{cfg.max_width}" offheight="{cfg.max_height}"/>
    <quality offsamples="0" shadowsize="0"/>
    <headlight ambient="0.35 0.35 0.35" diffuse="0.45 0.45 0.45" specular="0 0 0"/>
  </visual>
  <asset>
    <texture name="grid" type="2d" builtin="checker" rgb1="0.32 0.34 0.36" rgb2="0.28 0.30 0.32"
             width="64" height="64"/>
    <material name="floor" texture="grid" texrepeat="8 8"/>
    <material name="table" rgba="0.72 0.60 0.45 1"/>
    <material name="arm" rgba="0.86 0.87 0.88 1"/>
    <material name="pedestal" rgba="0.25 0.25 0.28 1"/>
    <material name="gripper" rgba="0.15 0.15 0.16 1"/>
    <material name="finger" rgba="0.35 0.35 0.38 1"/>
    <material name="pad" rgba="0.05 0.05 0.05 1"/>
    <material name="camera" rgba="0.6 0.6 0.65 1"/>{board_asset}
  </asset>
  <worldbody>
    <light name="key" pos="0.3 0 2.0" dir="-0.1 0 -1" directional="true" castshadow="false"
           diffuse="0.55 0.55 0.55"/>
    <light name="fill" pos="1.5 0.8 1.2" dir="-1 -0.5 -0.8" directional="true" castshadow="false"
           diffuse="0.2 0.2 0.2"/>
    <geom name="floor" type="plane" size="3 3 0.05" pos="0 0 -0.75" material="floor"
          contype="{ct_w}" conaffinity="{ca_w}"/>
    <geom name="table" type="box" size="0.35 0.75 0.025" pos="0 0 -0.025" material="table"
          contype="{ct_w}" conaffinity="{ca_w}" friction="0.8 0.005 0.0001"/>
    <camera name="front" pos="{_v(cfg.front_pos)}" xyaxes="{front_xy}" fovy="{fovy_for(cfg.front_f_px):.8f}"/>
    <body name="obstacle" mocap="true" pos="3 3 1">
      <geom name="obstacle_geom" type="box" size="0.06 0.06 0.03" rgba="0.8 0.2 0.2 1"
            contype="{ct_w}" conaffinity="{ca_w}"/>
    </body>
    {markers}{board_body}
    {_arm("left", cfg)}
    {_arm("right", cfg)}
    {_task_objects(cfg.task)}
  </worldbody>
  <actuator>
    {_actuators("left")}
    {_actuators("right")}
  </actuator>
</mujoco>
"""
