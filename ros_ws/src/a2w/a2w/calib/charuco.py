"""ChArUco detection (OpenCV ≥ 4.7 ``cv2.aruco.CharucoDetector``) and the board's pose in a camera."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from a2w.calib.board import BoardSpec
from a2w.calib.files import CameraIntrinsics, Transform

MIN_CORNERS = 6  # fewer and a planar pose is poorly conditioned


@dataclass(frozen=True)
class Detection:
    """Board corners found in one image: their ChArUco ids and sub-pixel positions (u, v)."""

    ids: np.ndarray  # (N,) int
    pixels: np.ndarray  # (N, 2) float64
    image_size: tuple[int, int]  # (width, height)

    def __len__(self) -> int:
        return int(self.ids.shape[0])


@dataclass(frozen=True)
class BoardPose:
    """``cam -> board`` (the board frame in the camera's optical frame) and its fit."""

    cam_board: Transform
    rms_px: float
    n: int


def _grey(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def detect(image: np.ndarray, spec: BoardSpec, min_corners: int = MIN_CORNERS) -> Detection | None:
    """Board corners in an RGB or grey image, or None with fewer than ``min_corners``."""
    grey = _grey(np.ascontiguousarray(image))
    params = cv2.aruco.DetectorParameters()
    # Sub-pixel marker corners make the corner interpolation start closer; the ChArUco corners
    # themselves are refined on the chessboard saddle points by the detector.
    params.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
    detector = cv2.aruco.CharucoDetector(spec.board(), cv2.aruco.CharucoParameters(), params)
    corners, ids, _, _ = detector.detectBoard(grey)
    if ids is None or len(ids) < min_corners:
        return None
    return Detection(ids.reshape(-1).astype(int), corners.reshape(-1, 2).astype(np.float64),
                     (grey.shape[1], grey.shape[0]))


def board_pose(det: Detection, spec: BoardSpec, cam: CameraIntrinsics) -> BoardPose:
    """The board's pose in the camera (planar PnP: IPPE, then Levenberg-Marquardt refinement)."""
    obj = spec.corners()[det.ids]
    K, dist = cam.camera_matrix(), cam.dist_coeffs()
    ok, rvec, tvec = cv2.solvePnP(obj, det.pixels, K, dist, flags=cv2.SOLVEPNP_IPPE)
    if not ok:
        raise RuntimeError("solvePnP failed")
    rvec, tvec = cv2.solvePnPRefineLM(obj, det.pixels, K, dist, rvec, tvec)
    proj, _ = cv2.projectPoints(obj, rvec, tvec, K, dist)
    rms = float(np.sqrt(np.mean(np.sum((proj.reshape(-1, 2) - det.pixels) ** 2, axis=1))))
    m = np.eye(4)
    m[:3, :3] = cv2.Rodrigues(rvec)[0]
    m[:3, 3] = tvec.reshape(3)
    return BoardPose(Transform.from_matrix(m), rms, len(det))
