import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.spatial.transform import Rotation

from a2w.actions import compose_chunk, decode_arm, decode_dual, downsample_deltas, encode_arm, encode_dual
from a2w.geometry import canonical_quaternion
from a2w.msgs.common import Pose


def random_poses(seed: int, t: int, step_rot: float = 0.3) -> np.ndarray:
    """(T, 2, 8) dual-arm poses with bounded per-step rotation (Euler angles stay unambiguous)."""
    rng = np.random.default_rng(seed)
    out = np.empty((t, 2, 8))
    for a in range(2):
        r = Rotation.random(random_state=seed + a)
        p = rng.normal(size=3)
        for i in range(t):
            if i:
                r = r * Rotation.from_rotvec(rng.uniform(-step_rot, step_rot, 3))
                p = p + rng.normal(scale=0.02, size=3)
            out[i, a, :3], out[i, a, 3:7] = p, canonical_quaternion(r.as_quat())
            out[i, a, 7] = rng.uniform()
    return out


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), t=st.integers(2, 40))
def test_decode_inverts_encode(seed, t):
    poses = random_poses(seed, t)
    deltas = encode_dual(poses)
    start = tuple(Pose(poses[0, a, :3], poses[0, a, 3:7]) for a in range(2))
    back = decode_dual(start, deltas)
    np.testing.assert_allclose(back[:, :, :3], poses[1:, :, :3], atol=1e-9)
    np.testing.assert_allclose(back[:, :, 7], poses[1:, :, 7])
    # q and -q are one rotation; both sides are canonical (w >= 0).
    np.testing.assert_allclose(back[:, :, 3:7], poses[1:, :, 3:7], atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, (9, 14), elements=st.floats(-0.2, 0.2)))
def test_encode_inverts_decode(deltas):
    deltas[:, 6] = np.abs(deltas[:, 6])
    deltas[:, 13] = np.abs(deltas[:, 13])
    start = (Pose.identity(), Pose(np.array([0.1, 0.2, 0.3]), canonical_quaternion(np.array([0.1, 0.2, 0.3, 0.9]))))
    poses = decode_dual(start, deltas)
    with_start = np.concatenate([np.stack([np.r_[s.as_array(), 0.0] for s in start])[None], poses])
    np.testing.assert_allclose(encode_dual(with_start), deltas, atol=1e-9)


def test_translation_is_expressed_in_previous_ee_frame():
    # EE yawed +90 deg: moving +y in the base frame is moving -x in the EE frame.
    q = Rotation.from_euler("z", 90, degrees=True).as_quat()
    d = encode_arm(np.array([[0, 0, 0], [0, 0.1, 0]], float), np.stack([q, q]), np.array([1.0, 0.3]))
    np.testing.assert_allclose(d[0, :3], [0.1, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(d[0, 3:6], 0.0, atol=1e-12)
    assert d[0, 6] == 0.3  # absolute gripper, not a delta


def test_rotation_is_scipy_xyz_euler_of_relative_rotation():
    r0 = Rotation.from_euler("xyz", [0.3, -0.2, 1.0])
    r1 = r0 * Rotation.from_euler("xyz", [0.05, 0.1, -0.2])
    d = encode_arm(np.zeros((2, 3)), np.stack([r0.as_quat(), r1.as_quat()]), np.ones(2))
    np.testing.assert_allclose(d[0, 3:6], [0.05, 0.1, -0.2], atol=1e-12)
    # R = Rz(yaw) Ry(pitch) Rx(roll)
    roll, pitch, yaw = d[0, 3:6]
    m = (Rotation.from_euler("z", yaw).as_matrix() @ Rotation.from_euler("y", pitch).as_matrix()
         @ Rotation.from_euler("x", roll).as_matrix())
    np.testing.assert_allclose(m, (r0.inv() * r1).as_matrix(), atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), groups=st.integers(1, 8))
def test_downsample_equals_encoding_every_third_pose(seed, groups):
    poses = random_poses(seed, 3 * groups + 1, step_rot=0.15)
    fine = encode_dual(poses)
    coarse = downsample_deltas(fine, 3)
    np.testing.assert_allclose(coarse, encode_dual(poses[::3]), atol=1e-9)


def test_downsample_rejects_ragged_length():
    with pytest.raises(ValueError, match="multiple"):
        downsample_deltas(np.zeros((4, 14)), 3)


def test_compose_chunk_targets_and_times():
    start = (Pose(np.array([0.4, 0.1, 0.3]), np.array([1.0, 0.0, 0.0, 0.0])), Pose.identity())
    deltas = np.zeros((60, 14))
    deltas[:, 0] = 0.001  # +x in EE frame; EE is flipped about x, so base x still increases
    deltas[:, 6] = deltas[:, 13] = 0.5
    chunk = compose_chunk(deltas, start, obs_stamp=10.0, period=1 / 30, seq=3)
    assert len(chunk) == 60 and chunk.seq == 3
    np.testing.assert_allclose(chunk.times[[0, -1]], [10.0 + 1 / 30, 12.0])
    np.testing.assert_allclose(chunk.targets[-1, 0, :3], [0.46, 0.1, 0.3], atol=1e-12)
    with pytest.raises(ValueError, match="non-finite"):
        compose_chunk(np.full((2, 14), np.nan), start, 0.0, 0.1, 0)


def test_decode_arm_sequential_composition():
    # Two quarter turns about z then a step in x: the step is along base -x.
    d = np.zeros((3, 7))
    d[0, 5] = d[1, 5] = np.pi / 2
    d[2, 0] = 1.0
    pos, quat, _ = decode_arm(Pose.identity(), d)
    np.testing.assert_allclose(pos[-1], [-1.0, 0.0, 0.0], atol=1e-12)
