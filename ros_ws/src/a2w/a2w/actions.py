"""The A2World 14-D action convention: encode poses to deltas, decode deltas to poses.

Per arm ``[dx, dy, dz, droll, dpitch, dyaw, gripper_open]`` (a2world_release_facts.md §6.1):

* translation  = R_prev^T (p_t - p_prev), i.e. expressed in the previous end-effector frame;
* rotation     = Euler angles of R_prev^T R_t with R = Rz(yaw) Ry(pitch) Rx(roll) (SciPy "xyz");
* gripper_open = the absolute opening at t, not a delta.

Arm 0 (dims 0-6) is the left arm, arm 1 (dims 7-13) the right one. Deltas are composed onto the
measured TCP pose at observation time to give absolute targets, so blending two chunks never
accumulates drift (docs/architecture.md §5).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from a2w.geometry import canonical_quaternion
from a2w.msgs.arms import RigState
from a2w.msgs.common import Pose
from a2w.msgs.policy import ACTION_DIM, ActionChunk

ARM_DIM = 7
EULER_ORDER = "xyz"  # SciPy extrinsic xyz == R = Rz Ry Rx (a2world_release_facts.md §6.1)


def _check(name: str, arr: np.ndarray, tail: tuple[int, ...]) -> np.ndarray:
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim != 1 + len(tail) or arr.shape[1:] != tail:
        raise ValueError(f"{name}: shape must be (N, {', '.join(map(str, tail))}), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains non-finite values")
    return arr


def encode_arm(positions: np.ndarray, quats_xyzw: np.ndarray, gripper: np.ndarray) -> np.ndarray:
    """Poses of one arm over T steps -> (T-1, 7) deltas."""
    p = _check("positions", positions, (3,))
    q = _check("quaternions", quats_xyzw, (4,))
    g = np.asarray(gripper, dtype=np.float64).reshape(-1)
    if not (len(p) == len(q) == len(g)) or len(p) < 2:
        raise ValueError("positions, quaternions and gripper need the same length T >= 2")
    r = Rotation.from_quat(q)
    r_prev_inv = r[:-1].inv()
    out = np.empty((len(p) - 1, ARM_DIM))
    out[:, :3] = r_prev_inv.apply(p[1:] - p[:-1])
    out[:, 3:6] = (r_prev_inv * r[1:]).as_euler(EULER_ORDER)
    out[:, 6] = g[1:]
    return out


def decode_arm(start: Pose, deltas: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, 7) deltas composed onto ``start`` -> positions (N, 3), quats xyzw (N, 4), gripper (N,).

    The returned arrays hold the N poses after ``start`` (``start`` itself is not included).
    """
    d = _check("deltas", deltas, (ARM_DIM,))
    steps = Rotation.from_euler(EULER_ORDER, d[:, 3:6])
    pos = np.empty((len(d), 3))
    quat = np.empty((len(d), 4))
    p = np.asarray(start.position, dtype=np.float64)
    r = Rotation.from_quat(start.quaternion)
    # Sequential by nature: each step is expressed in the frame the previous one reached.
    for i in range(len(d)):
        p = p + r.apply(d[i, :3])
        r = r * steps[i]
        pos[i] = p
        quat[i] = r.as_quat()
    return pos, canonical_quaternion(quat), d[:, 6].copy()


def encode_dual(poses: np.ndarray) -> np.ndarray:
    """Dual-arm poses (T, 2, 8) ``[x, y, z, qx, qy, qz, qw, gripper]`` -> (T-1, 14) deltas."""
    poses = _check("poses", poses, (2, 8))
    return np.concatenate(
        [encode_arm(poses[:, a, :3], poses[:, a, 3:7], poses[:, a, 7]) for a in range(2)], axis=1
    )


def decode_dual(start: tuple[Pose, Pose], deltas: np.ndarray) -> np.ndarray:
    """(N, 14) deltas composed onto the two start poses -> absolute targets (N, 2, 8)."""
    d = _check("deltas", deltas, (ACTION_DIM,))
    out = np.empty((len(d), 2, 8))
    for a in range(2):
        pos, quat, grip = decode_arm(start[a], d[:, a * ARM_DIM:(a + 1) * ARM_DIM])
        out[:, a, :3], out[:, a, 3:7], out[:, a, 7] = pos, quat, grip
    return out


def compose_chunk(
    deltas: np.ndarray,
    measured: tuple[Pose, Pose],
    obs_stamp: float,
    period: float,
    seq: int,
    source: str = "policy",
) -> ActionChunk:
    """Turn model deltas into an ActionChunk of absolute targets.

    Step i is due at ``obs_stamp + (i + 1) * period``: the first delta moves from the pose
    measured at observation time to the pose one control period later.
    """
    d = _check("deltas", deltas, (ACTION_DIM,))
    targets = decode_dual(measured, d)
    np.clip(targets[:, :, 7], 0.0, 1.0, out=targets[:, :, 7])
    times = obs_stamp + period * np.arange(1, len(d) + 1)
    return ActionChunk(d.astype(np.float32), targets, times, seq, obs_stamp, source)


def downsample_deltas(deltas: np.ndarray, factor: int = 3) -> np.ndarray:
    """Compose ``factor`` consecutive deltas into one (30 Hz -> 10 Hz for factor 3).

    The result is the motion from the pose before the group to the pose after it, in the same
    convention; the gripper is the absolute value at the end of the group. N must be a multiple of
    ``factor`` (A2World-sim takes 20 actions per chunk, fed from 60 executed 30 Hz steps).
    """
    d = _check("deltas", deltas, (ACTION_DIM,))
    if factor < 1 or len(d) % factor:
        raise ValueError(f"deltas: length {len(d)} is not a multiple of factor {factor}")
    groups = d.reshape(-1, factor, ACTION_DIM)
    out = np.empty((len(groups), ACTION_DIM))
    for a in range(2):
        sl = slice(a * ARM_DIM, (a + 1) * ARM_DIM)
        # Compose the group's rigid motions starting from the identity frame.
        p = np.zeros((len(groups), 3))
        r = Rotation.identity(len(groups))
        for k in range(factor):
            step = groups[:, k, sl]
            p = p + r.apply(step[:, :3])
            r = r * Rotation.from_euler(EULER_ORDER, step[:, 3:6])
        out[:, sl.start:sl.start + 3] = p
        out[:, sl.start + 3:sl.start + 6] = r.as_euler(EULER_ORDER)
        out[:, sl.start + 6] = groups[:, -1, sl.stop - 1]
    return out


def rig_pose(state: RigState) -> np.ndarray:
    """The measured rig as one (2, 8) row, per arm [x, y, z, qx, qy, qz, qw, gripper_open] in its base
    frame: the layout of ``ActionChunk.targets`` steps and ``encode_dual`` inputs."""
    out = np.zeros((2, 8))
    for a in range(2):
        arm = state.arm(a)
        out[a, :3], out[a, 3:7], out[a, 7] = arm.tcp_pose.position, arm.tcp_pose.quaternion, arm.gripper_open
    return out
