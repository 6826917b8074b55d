"""The geometry modules: a2w.geometry (SciPy) and a2w.geometry_fast, each fast function against SciPy."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation, Slerp

from a2w import geometry_fast as fast
from a2w.geometry import (
    canonical_quaternion,
    matrix_to_pose,
    pose_to_matrix,
    rotation_angle,
    rpy_to_quaternion,
    wxyz_to_xyzw,
    xyz_rpy_to_matrix,
    xyzw_to_wxyz,
)
from a2w.msgs.common import Pose

seeds = st.integers(0, 2**32 - 1)
# Angles that reach the special cases: zero, tiny (small-angle branches) and close to pi.
angles = st.one_of(st.floats(0.0, math.pi), st.sampled_from([0.0, 1e-13, 1e-9, 1e-7, 1e-4, math.pi - 1e-3,
                                                             math.pi - 1e-6, math.pi]))


def _rotation(seed: int, angle: float) -> Rotation:
    axis = np.random.default_rng(seed).normal(size=3)
    return Rotation.from_rotvec(axis / np.linalg.norm(axis) * angle)




@settings(max_examples=200, deadline=None)
@given(a=seeds, b=seeds, angle_a=angles, angle_b=angles)
def test_qmul_and_qconj_match_scipy(a, b, angle_a, angle_b):
    ra, rb = _rotation(a, angle_a), _rotation(b ^ 1, angle_b)
    np.testing.assert_allclose(fast.qmul(ra.as_quat(), rb.as_quat()), (ra * rb).as_quat(), atol=1e-12)
    np.testing.assert_allclose(fast.qconj(ra.as_quat()), ra.inv().as_quat(), atol=1e-15)


@settings(max_examples=200, deadline=None)
@given(seed=seeds, angle=angles, flip=st.booleans())
def test_rotation_vectors_match_scipy(seed, angle, flip):
    r = _rotation(seed, angle)
    q = -r.as_quat() if flip else r.as_quat()  # either sign of the same rotation
    rv = fast.q_to_rotvec(q)
    assert np.linalg.norm(rv) <= math.pi + 1e-12  # the short way round
    np.testing.assert_allclose(Rotation.from_rotvec(rv).as_matrix(), r.as_matrix(), atol=1e-9)
    if angle < math.pi - 1e-6:  # at pi, r and -r are the same rotation
        np.testing.assert_allclose(rv, r.as_rotvec(), atol=1e-9)
    q_back = fast.rotvec_to_q(r.as_rotvec())
    np.testing.assert_allclose(np.linalg.norm(q_back), 1.0, atol=1e-12)
    assert rotation_angle(q_back, r.as_quat()) < 1e-9


@settings(max_examples=200, deadline=None)
@given(seed=seeds, angle=angles)
def test_matrix_to_rotvec_matches_scipy(seed, angle):
    r = _rotation(seed, angle)
    rv = fast.matrix_to_rotvec(r.as_matrix())
    np.testing.assert_allclose(Rotation.from_rotvec(rv).as_matrix(), r.as_matrix(), atol=1e-9)
    if angle < math.pi - 1e-6:
        np.testing.assert_allclose(rv, r.as_rotvec(), atol=1e-9)


@settings(max_examples=200, deadline=None)
@given(a=seeds, b=seeds, angle=angles, s=st.floats(0.0, 1.0), flip=st.booleans())
def test_slerp_matches_scipy(a, b, angle, s, flip):
    q0 = Rotation.random(random_state=a).as_quat()
    r1 = _rotation(b, angle) * Rotation.from_quat(q0)  # ``angle`` away from q0
    q1 = -r1.as_quat() if flip else r1.as_quat()  # the shortest path whatever the sign
    want = Slerp([0.0, 1.0], Rotation.from_quat([q0, r1.as_quat()]))(s).as_quat()
    got = fast.slerp(q0, q1, s)
    np.testing.assert_allclose(np.linalg.norm(got), 1.0, atol=1e-12)
    if angle < math.pi - 1e-3:  # at pi both ways round are shortest
        # Under 0.063 rad apart slerp is linear-then-normalised: at most ~1e-6 rad off the arc.
        assert rotation_angle(got, want) < 2e-6


@pytest.mark.parametrize("axis", ["x", "y", "z"])
@settings(max_examples=50, deadline=None)
@given(angle=st.floats(-2 * math.pi, 2 * math.pi))
def test_axis_transform_matches_scipy(axis, angle):
    m = fast.axis_transform(axis, angle)
    np.testing.assert_allclose(m[:3, :3], Rotation.from_euler(axis, angle).as_matrix(), atol=1e-15)
    np.testing.assert_array_equal(m[3], [0.0, 0.0, 0.0, 1.0])
    np.testing.assert_array_equal(m[:3, 3], 0.0)


@pytest.mark.parametrize("axis", ["", "X", "w", "xy"])
def test_axis_transform_names_a_bad_axis(axis):
    with pytest.raises(ValueError, match="axis"):
        fast.axis_transform(axis, 0.1)


@settings(max_examples=100, deadline=None)
@given(rpy=st.tuples(*[st.floats(-math.pi, math.pi)] * 3), xyz=st.tuples(*[st.floats(-2.0, 2.0)] * 3))
def test_rpy_is_fixed_axis_xyz(rpy, xyz):
    roll, pitch, yaw = rpy
    r = (Rotation.from_euler("z", yaw).as_matrix() @ Rotation.from_euler("y", pitch).as_matrix()
         @ Rotation.from_euler("x", roll).as_matrix())  # R = Rz(yaw) Ry(pitch) Rx(roll), URDF rpy
    m = xyz_rpy_to_matrix(xyz, rpy)
    np.testing.assert_allclose(m[:3, :3], r, atol=1e-12)
    np.testing.assert_array_equal(m[:3, 3], xyz)
    np.testing.assert_array_equal(m[3], [0.0, 0.0, 0.0, 1.0])
    np.testing.assert_allclose(Rotation.from_quat(rpy_to_quaternion(rpy)).as_matrix(), r, atol=1e-12)


def test_quaternion_orders_and_pose_algebra():
    q = np.array([0.1, 0.2, 0.3, 0.927])
    np.testing.assert_allclose(xyzw_to_wxyz(q), [0.927, 0.1, 0.2, 0.3])
    np.testing.assert_allclose(wxyz_to_xyzw(xyzw_to_wxyz(q)), q)
    a = Pose(np.array([1.0, 2.0, 3.0]), canonical_quaternion(q))
    b = Pose(np.array([0.1, 0.0, -0.2]), canonical_quaternion(np.array([0.0, 0.3, 0.0, 0.95])))
    ab = matrix_to_pose(pose_to_matrix(a) @ pose_to_matrix(b))
    np.testing.assert_allclose(pose_to_matrix(ab), pose_to_matrix(a) @ pose_to_matrix(b), atol=1e-12)
    back = matrix_to_pose(np.linalg.inv(pose_to_matrix(a)) @ pose_to_matrix(ab))
    np.testing.assert_allclose(back.position, b.position, atol=1e-12)
    np.testing.assert_allclose(back.quaternion, b.quaternion, atol=1e-12)
