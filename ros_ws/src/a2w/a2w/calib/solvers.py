"""The calibration solvers: library functions from captures (images + TCP poses) to transforms,
fed alike by the sim (a2w.calib.sim_capture) and by a recorded capture folder (a2w.calib.capture).

- ``solve_intrinsics``: OpenCV ``calibrateCamera`` on ChArUco corners of many board views.
- ``solve_handeye``: eye-in-hand, the board fixed on the table and the wrist camera on the moving
  arm. A closed form (Park & Martin, ``cv2.calibrateHandEye``'s default) gives ``tcp -> camera``;
  the board in the arm's base follows from each view; both are then refined together by least
  squares on the reprojection error of every corner in every view (the closed form ignores the
  pixel noise model).
- ``solve_front``: the board fixed at a known placement in the world; ``world -> camera`` =
  ``world -> board`` · ``(camera -> board)⁻¹`` from planar PnP.
- ``solve_bases``: from the hand-eye solve, which also yields ``base -> board``: with the board at
  its known placement, ``world -> base`` = ``world -> board`` · ``(base -> board)⁻¹``. Chosen over
  "board on the gripper seen by the front camera" because it needs no second fixture, uses the
  same capture as the hand-eye, and its error does not inherit the front camera's (far, foreshortened)
  view of the board; the front camera and the bases are then in one frame: the board's placement.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.optimize import least_squares
from scipy.spatial.transform import Rotation

from a2w.calib.board import BoardSpec
from a2w.calib.capture import Capture, require
from a2w.calib.charuco import Detection, board_pose, detect
from a2w.calib.files import CameraIntrinsics, Transform

log = logging.getLogger(__name__)


class SolveError(RuntimeError):
    """The capture does not determine the transform (too few usable views)."""


def detections(capture: Capture, spec: BoardSpec, min_corners: int = 12) -> list[tuple[int, Detection]]:
    """(frame index, detection) of every frame where the board is found."""
    out = []
    for i, f in enumerate(capture.frames):
        d = detect(f.image, spec, min_corners)
        if d is None:
            log.info("frame %d: board not found", i)
            continue
        out.append((i, d))
    return out


@dataclass(frozen=True)
class IntrinsicsResult:
    camera: CameraIntrinsics
    rms_px: float
    n_views: int


def solve_intrinsics(capture: Capture, spec: BoardSpec, serial: str = "", estimate_distortion: bool = True,
                     min_views: int = 6) -> IntrinsicsResult:
    """Pinhole + distortion (k1, k2, p1, p2; k3 fixed) from ChArUco views; ``estimate_distortion``
    False fixes all distortion at zero (a renderer's pinhole)."""
    dets = detections(capture, spec)
    if len(dets) < min_views:
        raise SolveError(f"intrinsics: board found in {len(dets)} views, need {min_views}")
    corners = spec.corners()
    obj = [corners[d.ids].astype(np.float32) for _, d in dets]
    img = [d.pixels.astype(np.float32) for _, d in dets]
    size = dets[0][1].image_size
    flags = cv2.CALIB_FIX_K3
    if not estimate_distortion:
        flags |= cv2.CALIB_ZERO_TANGENT_DIST | cv2.CALIB_FIX_K1 | cv2.CALIB_FIX_K2
    rms, K, dist, _, _ = cv2.calibrateCamera(obj, img, size, None, None, flags=flags)
    dist = np.asarray(dist, dtype=float).reshape(-1)[:5]
    cam = CameraIntrinsics(serial or capture.view, size[0], size[1], float(K[0, 0]), float(K[1, 1]),
                           float(K[0, 2]), float(K[1, 2]), "plumb_bob", tuple(float(x) for x in dist), "measured")
    return IntrinsicsResult(cam, float(rms), len(dets))


def _rt(m: np.ndarray) -> np.ndarray:
    return np.concatenate([Rotation.from_matrix(m[:3, :3]).as_rotvec(), m[:3, 3]])


def _m(p: np.ndarray) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = Rotation.from_rotvec(p[:3]).as_matrix()
    m[:3, 3] = p[3:]
    return m


def _mean_pose(ms: list[np.ndarray]) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3] = Rotation.from_matrix(np.stack([m[:3, :3] for m in ms])).mean().as_matrix()
    out[:3, 3] = np.mean([m[:3, 3] for m in ms], axis=0)
    return out


def _spread(ms: list[np.ndarray], mean: np.ndarray) -> tuple[float, float]:
    """RMS translation (mm) and rotation (deg) of ``ms`` about ``mean``."""
    dt = [np.linalg.norm(m[:3, 3] - mean[:3, 3]) for m in ms]
    dr = [Rotation.from_matrix(mean[:3, :3].T @ m[:3, :3]).magnitude() for m in ms]
    return float(np.sqrt(np.mean(np.square(dt))) * 1000), float(math.degrees(np.sqrt(np.mean(np.square(dr)))))


def park_martin(base_tcp: list[np.ndarray], cam_board: list[np.ndarray]) -> np.ndarray:
    """Closed-form AX = XB (Park & Martin 1994) for eye-in-hand: ``X`` = tcp -> camera from TCP
    poses in the base and board poses in the camera. (OpenCV 5.0's Python bindings lack
    ``cv2.calibrateHandEye``; this is its CALIB_HAND_EYE_PARK method over all view pairs.)

    The board is fixed: ``base_tcp[i] · X · cam_board[i]`` is the same for every i, so for a pair
    A = base_tcp[j]⁻¹ · base_tcp[i] and B = cam_board[j] · cam_board[i]⁻¹ satisfy A X = X B.
    Rotation: the rotation vectors obey α = R_X β, solved as an orthogonal Procrustes problem;
    translation: (R_A - I) t_X = R_X t_B - t_A, stacked, least squares."""
    alphas, betas, rows, rhs = [], [], [], []
    pairs = [(i, j) for i in range(len(base_tcp)) for j in range(i + 1, len(base_tcp))]
    motions = []
    for i, j in pairs:
        a = np.linalg.inv(base_tcp[j]) @ base_tcp[i]
        b = cam_board[j] @ np.linalg.inv(cam_board[i])
        alpha = Rotation.from_matrix(a[:3, :3]).as_rotvec()
        if np.linalg.norm(alpha) < math.radians(2.0):
            continue  # too small a rotation to tell the axis
        alphas.append(alpha)
        betas.append(Rotation.from_matrix(b[:3, :3]).as_rotvec())
        motions.append((a, b))
    if len(motions) < 2:
        raise SolveError("handeye: the views need rotations about at least two different axes")
    h = np.einsum("ki,kj->ij", np.array(betas), np.array(alphas))
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(vt.T @ u.T))
    r = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    for a, b in motions:
        rows.append(a[:3, :3] - np.eye(3))
        rhs.append(r @ b[:3, 3] - a[:3, 3])
    t = np.linalg.lstsq(np.concatenate(rows), np.concatenate(rhs), rcond=None)[0]
    x = np.eye(4)
    x[:3, :3], x[:3, 3] = r, t
    return x


@dataclass(frozen=True)
class HandEyeResult:
    tcp_cam: Transform  # <arm>_tcp -> camera optical frame
    base_board: Transform  # <arm>_base -> board
    rms_px: float  # reprojection RMS over all corners after refinement
    n_views: int
    closed_form_spread: tuple[float, float]  # base->board scatter over views before refinement (mm, deg)

    def residuals(self) -> dict[str, float]:
        return {"reprojection_rms_px": self.rms_px, "views": self.n_views,
                "closed_form_board_scatter_mm": self.closed_form_spread[0],
                "closed_form_board_scatter_deg": self.closed_form_spread[1]}


def solve_handeye(capture: Capture, spec: BoardSpec, cam: CameraIntrinsics, source: str = "capture",
                  min_views: int = 5) -> HandEyeResult:
    """Eye-in-hand from a wrist capture of the fixed board (module docstring)."""
    require(capture, source, tcp=True)
    dets = detections(capture, spec)
    if len(dets) < min_views:
        raise SolveError(f"handeye: board found in {len(dets)} views, need {min_views}")
    base_tcp = [capture.frames[i].tcp_in_base.matrix() for i, _ in dets]
    cam_board = [board_pose(d, spec, cam).cam_board.matrix() for _, d in dets]
    x0 = park_martin(base_tcp, cam_board)
    per_view = [b @ x0 @ c for b, c in zip(base_tcp, cam_board)]
    y0 = _mean_pose(per_view)
    spread = _spread(per_view, y0)
    # Joint refinement of X (tcp -> cam) and Y (base -> board) on the corners' reprojection.
    corners = spec.corners()
    K, dist = cam.camera_matrix(), cam.dist_coeffs()
    inv_base_tcp = [np.linalg.inv(b) for b in base_tcp]

    def residual(p: np.ndarray) -> np.ndarray:
        x_inv, y = np.linalg.inv(_m(p[:6])), _m(p[6:])
        out = []
        for bi, (_, d) in zip(inv_base_tcp, dets):
            c = x_inv @ bi @ y  # cam -> board
            rvec = cv2.Rodrigues(c[:3, :3])[0]
            proj, _ = cv2.projectPoints(corners[d.ids], rvec, c[:3, 3], K, dist)
            out.append((proj.reshape(-1, 2) - d.pixels).ravel())
        return np.concatenate(out)

    sol = least_squares(residual, np.concatenate([_rt(x0), _rt(y0)]), x_scale="jac", method="lm")
    res = residual(sol.x).reshape(-1, 2)
    rms = float(np.sqrt(np.mean(np.sum(res ** 2, axis=1))))
    return HandEyeResult(Transform.from_matrix(_m(sol.x[:6])), Transform.from_matrix(_m(sol.x[6:])), rms,
                         len(dets), spread)


@dataclass(frozen=True)
class FrontResult:
    world_cam: Transform
    rms_px: float
    n_corners: int

    def residuals(self) -> dict[str, float]:
        return {"reprojection_rms_px": self.rms_px, "corners": self.n_corners}


def solve_front(capture: Capture, spec: BoardSpec, cam: CameraIntrinsics, source: str = "capture") -> FrontResult:
    """``world -> camera`` of a static camera from views of the board at its known placement
    (all frames one placement: several frames average the pixel noise of a real camera)."""
    require(capture, source, board=True)
    dets = detections(capture, spec)
    if not dets:
        raise SolveError("front: the board is not found in any frame")
    # All frames see one placement: one PnP over every frame's corners.
    joint = Detection(np.concatenate([d.ids for _, d in dets]), np.concatenate([d.pixels for _, d in dets]),
                      dets[0][1].image_size)
    pose = board_pose(joint, spec, cam)
    rms, cam_board = pose.rms_px, pose.cam_board.matrix()
    world_cam = capture.board_in_world.matrix() @ np.linalg.inv(cam_board)
    return FrontResult(Transform.from_matrix(world_cam), rms, len(joint))


def solve_base(handeye: HandEyeResult, board_in_world: Transform) -> Transform:
    """``world -> <arm>_base`` from the hand-eye solve's ``base -> board`` and the board's placement."""
    return board_in_world @ handeye.base_board.inverse()
