"""Calibration captures rendered in the MuJoCo rig: the board on the table, the arms driven to
poses around it, images and TCP poses exactly as a real capture records them (a2w.calib.capture).

The board is the scene's optional ``Board`` (a2w.sim.scene), textured with the ChArUco image of
``board.yaml``; the arms are teleported (``SimWorld.set_arm_q``) to joint solutions of a small
numeric IK on ``a2w.arms.kinematics`` (no ROS). The TCP poses a capture records come from that
forward kinematics, as the arm node reports them on a real rig; the sim's truth (a2w.calib.truth)
is used only to choose where to look, never by the solvers.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares
from scipy.spatial.transform import Rotation

from a2w.arms.kinematics import joint_frames
from a2w.calib.board import BoardSpec, texture_file
from a2w.calib.capture import Capture, Frame
from a2w.calib.files import WRIST_VIEW, Transform
from a2w.calib.truth import sim_bases, sim_handeye
from a2w.msgs.cameras import FRONT
from a2w.sim.scene import SOFT_LIMITS, TCP_OFFSET, Board, SceneConfig
from a2w.sim.world import VIEW_CAMERAS, SimWorld

log = logging.getLogger(__name__)

WIDTH, HEIGHT = 640, 480
# Where the board lies in the sim: face up on the table between the arms, long side along y,
# seen by both wrist cameras from their ready poses and by the front camera.
BOARD_CENTRE = (0.05, 0.0, 0.003)  # on the table top (z = 0): the face is a thickness above
BOARD_YAW = math.pi / 2
_TCP = np.eye(4)
_TCP[2, 3] = TCP_OFFSET


def body_to_board(spec: BoardSpec) -> np.ndarray:
    """The board frame (a2w.calib.board) in the scene board body's frame (printed face centre,
    face along +z): MuJoCo stretches the texture's rows along the body's -y, columns along +x."""
    w, h = spec.size
    m = np.diag([1.0, -1.0, -1.0, 1.0])
    m[:3, 3] = (-w / 2, h / 2, 0.0)
    return m


def board_world_pose(spec: BoardSpec, centre=BOARD_CENTRE, yaw: float = BOARD_YAW) -> Transform:
    """``world -> board`` for a board lying face up with its centre at ``centre``."""
    body = np.eye(4)
    body[:3, :3] = Rotation.from_euler("z", yaw).as_matrix()
    body[:3, 3] = centre
    return Transform.from_matrix(body @ body_to_board(spec))


def board_scene(spec: BoardSpec, world_board: Transform | None = None) -> SceneConfig:
    """A scene without task objects, with the board placed at ``world_board``."""
    world_board = world_board or board_world_pose(spec)
    body = world_board.matrix() @ np.linalg.inv(body_to_board(spec))
    q = Rotation.from_matrix(body[:3, :3]).as_quat()
    w, h = spec.size
    margin = 0.5 * spec.square_length  # board.texture_file's default margin
    board = Board(texture=str(texture_file(spec)), half_size=(w / 2 + margin, h / 2 + margin),
                  pos=tuple(float(x) for x in body[:3, 3]), quat=(float(q[3]), *map(float, q[:3])))
    return SceneConfig(task="none", board=board)


def set_board(world: SimWorld, spec: BoardSpec, world_board: Transform) -> None:
    """Move the scene's (mocap) board so that its frame is at ``world_board``."""
    body = world_board.matrix() @ np.linalg.inv(body_to_board(spec))
    q = Rotation.from_matrix(body[:3, :3]).as_quat()
    b = world.model.body("calib_board")
    import mujoco

    with world.lock:
        world.data.mocap_pos[b.mocapid[0]] = body[:3, 3]
        world.data.mocap_quat[b.mocapid[0]] = [q[3], q[0], q[1], q[2]]
        mujoco.mj_forward(world.model, world.data)


def tcp_in_base(q: np.ndarray) -> np.ndarray:
    """4x4 TCP pose in the arm's base frame (the arm node's TCP pose)."""
    return joint_frames(q)[-1] @ _TCP


def solve_ik(target: np.ndarray, q0: np.ndarray) -> np.ndarray | None:
    """Joint angles within the soft limits putting the TCP at ``target`` (4x4, base frame), or
    None if the pose is not reached to 0.1 mm / 0.01°."""
    r_target = Rotation.from_matrix(target[:3, :3])

    def residual(q: np.ndarray) -> np.ndarray:
        m = tcp_in_base(q)
        dr = (r_target.inv() * Rotation.from_matrix(m[:3, :3])).as_rotvec()
        return np.concatenate([m[:3, 3] - target[:3, 3], 0.2 * dr])

    lo, hi = SOFT_LIMITS[:, 0], SOFT_LIMITS[:, 1]
    sol = least_squares(residual, np.clip(q0, lo + 1e-6, hi - 1e-6), bounds=(lo, hi), xtol=1e-10, ftol=1e-10)
    res = residual(sol.x)
    if np.linalg.norm(res[:3]) > 1e-4 or np.linalg.norm(res[3:]) / 0.2 > math.radians(0.01):
        return None
    return sol.x


@dataclass
class SimRig:
    """A sim world with the board, and the truth the captures are checked against."""

    spec: BoardSpec
    world: SimWorld
    world_board: Transform

    @classmethod
    def open(cls, spec: BoardSpec, world_board: Transform | None = None) -> "SimRig":
        world_board = world_board or board_world_pose(spec)
        return cls(spec, SimWorld(board_scene(spec, world_board)), world_board)

    def close(self) -> None:
        self.world.close()

    def render(self, view: str) -> np.ndarray:
        return self.world.render(VIEW_CAMERAS[view], WIDTH, HEIGHT)

    def wrist_capture(self, arm: str, n_views: int = 12, seed: int = 0, max_tilt_deg: float = 25.0) -> Capture:
        """``n_views`` wrist-camera images of the fixed board with the TCP poses: the camera
        orbits the board centre (tilts up to ``max_tilt_deg`` about random horizontal axes, ±30°
        about the vertical, 0.75-1.15 of the ready distance), each pose reached by IK."""
        rng = np.random.default_rng(seed)
        world = self.world
        world.reset_arms()
        base = sim_bases()[arm].matrix()
        x = sim_handeye()[arm].matrix()  # only to aim the camera
        q_ready = world.ready_q(arm)
        cam0 = base @ tcp_in_base(q_ready) @ x
        centre = self.world_board.matrix() @ np.array([*(np.array(self.spec.size) / 2), 0.0, 1.0])
        centre = centre[:3]
        # Re-aim the ready camera at the board centre (smallest rotation), keep its distance.
        axis = cam0[:3, 2]
        want = centre - cam0[:3, 3]
        dist = float(np.linalg.norm(want))
        align, _ = Rotation.align_vectors([want / dist], [axis])
        aimed = np.eye(4)
        aimed[:3, :3] = align.as_matrix() @ cam0[:3, :3]
        aimed[:3, 3] = cam0[:3, 3]
        frames: list[Frame] = []
        q = q_ready
        tries = 0
        from a2w.calib.charuco import detect

        while len(frames) < n_views and tries < 20 * n_views:
            tries += 1
            # Orbit about the board centre, then move along the line of sight.
            h = rng.uniform(-1.0, 1.0, 2)
            tilt = math.radians(max_tilt_deg) * math.sqrt(rng.uniform(0.15, 1.0))
            rot = Rotation.from_rotvec(tilt * np.array([*h / np.linalg.norm(h), 0.0])) \
                * Rotation.from_euler("z", rng.uniform(-30.0, 30.0), degrees=True)
            orbit = np.eye(4)
            orbit[:3, :3] = rot.as_matrix()
            orbit[:3, 3] = centre - rot.as_matrix() @ centre
            cam = orbit @ aimed
            scale = rng.uniform(0.75, 1.15)
            cam[:3, 3] = centre + scale * (cam[:3, 3] - centre)
            target = np.linalg.inv(base) @ cam @ np.linalg.inv(x)
            sol = solve_ik(target, q)
            if sol is None:
                continue
            world.set_arm_q(arm, sol)
            image = self.render(WRIST_VIEW[arm])
            if detect(image, self.spec, min_corners=12) is None:
                continue
            q = sol
            frames.append(Frame(image=image, tcp_in_base=Transform.from_matrix(tcp_in_base(sol))))
        if len(frames) < n_views:
            raise RuntimeError(f"only {len(frames)} of {n_views} usable {arm} wrist views in {tries} tries")
        world.reset_arms()
        log.info("%s wrist capture: %d views in %d tries", arm, len(frames), tries)
        return Capture(view=WRIST_VIEW[arm], arm=arm, board_in_world=self.world_board, frames=frames)

    def front_capture(self) -> Capture:
        """One front-camera image of the board at its placement (arms at their ready poses)."""
        self.world.reset_arms()
        set_board(self.world, self.spec, self.world_board)
        return Capture(view=FRONT, arm=None, board_in_world=self.world_board,
                       frames=[Frame(image=self.render(FRONT), tcp_in_base=None)])

    def board_views(self, view: str, n_views: int = 12, seed: int = 0) -> Capture:
        """``n_views`` images of the board moved (mocap) to random tilted poses in front of a
        camera that stays put: the intrinsics capture for the front camera, as waving a board
        in front of it. Arms at their ready poses; the board goes back to its placement."""
        rng = np.random.default_rng(seed)
        world = self.world
        world.reset_arms()
        pos, rot = world.camera_pose(VIEW_CAMERAS[view])
        cam = np.eye(4)
        cam[:3, :3], cam[:3, 3] = rot, pos
        from a2w.calib.charuco import detect

        frames: list[Frame] = []
        w, h = self.spec.size
        tries = 0
        while len(frames) < n_views and tries < 20 * n_views:
            tries += 1
            d = rng.uniform(0.45, 0.8) if view == FRONT else rng.uniform(0.25, 0.4)
            # The board's centre on a random ray inside the central part of the image; faced to
            # the camera, then tilted up to 40° and turned about its normal.
            ray = np.array([rng.uniform(-0.25, 0.25), rng.uniform(-0.2, 0.2), 1.0])
            c = ray / np.linalg.norm(ray) * d
            tilt = Rotation.from_rotvec(np.radians(40.0) * math.sqrt(rng.uniform(0.1, 1.0))
                                        * np.array([*(lambda v: v / np.linalg.norm(v))(rng.normal(size=2)), 0.0]))
            r = tilt * Rotation.from_euler("z", rng.uniform(-30.0, 30.0), degrees=True)
            board = np.eye(4)
            board[:3, :3] = r.as_matrix()
            board[:3, 3] = c - r.as_matrix() @ np.array([w / 2, h / 2, 0.0])
            set_board(world, self.spec, Transform.from_matrix(cam @ board))
            image = self.render(view)
            if detect(image, self.spec, min_corners=12) is None:
                continue
            frames.append(Frame(image=image, tcp_in_base=None))
        set_board(world, self.spec, self.world_board)
        if len(frames) < n_views:
            raise RuntimeError(f"only {len(frames)} of {n_views} usable {view} board views in {tries} tries")
        return Capture(view=view, arm=None, board_in_world=None, frames=frames)
