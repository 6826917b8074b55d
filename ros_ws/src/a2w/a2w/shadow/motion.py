"""The executed motion in A2World-sim's action convention: measured TCP poses on the 30 Hz grid,
their deltas (``a2w.actions``), composed three at a time into 10 Hz actions, 20 per 2 s chunk
(DESIGN.md §4; A2World-sim's chunks are 20 actions at 10 Hz, a2world_release_facts.md §4.1).

Poses come from /arms/state at whatever rate the arm node publishes; each 30 Hz grid point takes the
newest state at or before it (a zero-order hold, as the arm's own controller sees its state).

A policy's plan (an ``ActionChunk``) goes through the same composition (``planned_poses``): its pose at
the observation, recovered from its first step, then its targets on the same 30 Hz grid.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from a2w.actions import ARM_DIM, EULER_ORDER, downsample_deltas, encode_dual
from a2w.msgs.arms import ARM_NAMES
from a2w.msgs.policy import ActionChunk

RATE_HZ = 30.0
COMPOSE = 3  # 30 Hz -> 10 Hz
CHUNK = 20  # 10 Hz actions per A2World-sim chunk
KEYFRAME_PERIOD = COMPOSE / RATE_HZ  # 0.1 s: one predicted frame per composed action


def grid_poses(stamps: np.ndarray, poses: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Poses (n, 2, 8) at ``times`` from samples at increasing ``stamps``: the newest at or before each."""
    stamps = np.asarray(stamps, dtype=np.float64)
    idx = np.searchsorted(stamps, np.asarray(times, dtype=np.float64), side="right") - 1
    if len(idx) and idx.min() < 0:
        raise ValueError(f"no pose at or before {float(np.min(times)):.3f} (first at {stamps[0]:.3f})")
    return np.asarray(poses)[idx]


def actions_10hz(poses_30hz: np.ndarray) -> np.ndarray:
    """(3k + 1, 2, 8) poses on the 30 Hz grid -> (k, 14) 10 Hz actions: the 30 Hz deltas composed three
    at a time. Equal to encoding every third pose; computed the DESIGN.md way so that a 30 Hz action
    stream (the policy's) and the measured one go through the same composition."""
    p = np.asarray(poses_30hz, dtype=np.float64)
    if p.ndim != 3 or p.shape[1:] != (2, 8) or (len(p) - 1) % COMPOSE or len(p) < COMPOSE + 1:
        raise ValueError(f"poses must be (3k + 1, 2, 8) with k >= 1, got {p.shape}")
    return downsample_deltas(encode_dual(p), COMPOSE)


# A 10 Hz step in which an arm moved at least this much is motion its cameras cannot miss: 1 mm is about
# a pixel at the wrist cameras' working distance at 64x64; no view of 22 nominal sim episodes stayed
# bit-identical through such a step of an arm it sees (issue 18 note).
MOVE_MM = 1.0
MOVE_DEG = 0.5
MOVE_GRIP = 0.02  # of the opening (0 closed .. 1 open)


def moving_steps(actions: np.ndarray, arms: tuple[str, ...] | list[str]) -> np.ndarray:
    """(n,) whether any of ``arms`` moved in each 10 Hz step of ``actions`` (n, 14): its TCP by more than
    ``MOVE_MM`` or ``MOVE_DEG``, or its gripper opening by more than ``MOVE_GRIP`` (openings are absolute,
    so the first step's gripper is compared with itself)."""
    a = np.asarray(actions, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != 2 * ARM_DIM:
        raise ValueError(f"actions must be (n, {2 * ARM_DIM}), got {a.shape}")
    out = np.zeros(len(a), dtype=bool)
    for name in arms:
        first = ARM_NAMES.index(name) * ARM_DIM
        arm = a[:, first:first + ARM_DIM]
        mm = np.linalg.norm(arm[:, :3], axis=1) * 1e3
        deg = np.degrees(Rotation.from_euler(EULER_ORDER, arm[:, 3:6]).magnitude()) if len(arm) else np.zeros(0)
        grip = np.abs(np.diff(arm[:, 6], prepend=arm[:1, 6]))
        out |= (mm > MOVE_MM) | (deg > MOVE_DEG) | (grip > MOVE_GRIP)
    return out


def chunk_start(chunk: ActionChunk) -> np.ndarray:
    """The (2, 8) pose the chunk was composed onto (the measured TCPs at ``obs_stamp``): its first target
    with its first delta undone. The gripper is the first target's (an action carries the absolute one)."""
    start = np.array(chunk.targets[0], dtype=np.float64)
    for a in range(2):
        d = np.asarray(chunk.deltas[0, a * ARM_DIM:(a + 1) * ARM_DIM], dtype=np.float64)
        r = Rotation.from_quat(start[a, 3:7]) * Rotation.from_euler(EULER_ORDER, d[3:6]).inv()
        start[a, :3] = start[a, :3] - r.apply(d[:3])
        start[a, 3:7] = r.as_quat()
    return start


def planned_poses(chunk: ActionChunk, times: np.ndarray) -> np.ndarray:
    """The chunk's plan at ``times`` (n, 2, 8): the target due at or before each time (1 µs tolerance, the
    grid is computed), the pose at the observation before its first step, and its last target held after
    its last step (as the arm holds when a queue runs dry)."""
    stamps = np.concatenate([[chunk.obs_stamp], chunk.times - 1e-6])
    poses = np.concatenate([chunk_start(chunk)[None], chunk.targets])
    return grid_poses(stamps, poses, np.maximum(np.asarray(times, dtype=np.float64), chunk.obs_stamp))
