"""The URDF tree reader: what it refuses (a document that is not one tree) and its forward
kinematics against an independent composition (SciPy rotations)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from a2w.description.tree import UrdfError, parse_urdf

VALID = """<robot name="r">
  <link name="a"/><link name="b"/><link name="c"/><link name="d"/>
  <joint name="j1" type="revolute"><parent link="a"/><child link="b"/>
    <origin xyz="0.1 0.2 0.3" rpy="0.3 -0.2 1.1"/><axis xyz="0 0 2"/>
    <limit lower="-1" upper="1" effort="1" velocity="1"/></joint>
  <joint name="j2" type="prismatic"><parent link="b"/><child link="c"/>
    <origin xyz="0 0 0.5"/><axis xyz="1 1 0"/><limit lower="0" upper="1" effort="1" velocity="1"/></joint>
  <joint name="j3" type="continuous"><parent link="c"/><child link="d"/>
    <origin rpy="0 1.5707963267948966 0"/><axis xyz="0 1 0"/></joint>
</robot>"""


def _step(xyz: tuple[float, ...], rpy: tuple[float, ...], rot: Rotation | None = None,
          slide: np.ndarray | None = None) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = Rotation.from_euler("xyz", rpy).as_matrix()
    m[:3, 3] = xyz
    move = np.eye(4)
    if rot is not None:
        move[:3, :3] = rot.as_matrix()
    if slide is not None:
        move[:3, 3] = slide
    return m @ move


def test_fk_composes_origin_then_motion_about_the_unit_axis() -> None:
    tree = parse_urdf(VALID)
    assert tree.root == "a" and [j.name for j in tree.moving_joints] == ["j1", "j2", "j3"]
    rng = np.random.default_rng(0)
    for _ in range(20):
        q1, q2, q3 = rng.uniform(-3, 3, 3)
        ref = (_step((0.1, 0.2, 0.3), (0.3, -0.2, 1.1), rot=Rotation.from_rotvec([0, 0, q1]))
               @ _step((0, 0, 0.5), (0, 0, 0), slide=np.array([1, 1, 0]) / math.sqrt(2) * q2)
               @ _step((0, 0, 0), (0, math.pi / 2, 0), rot=Rotation.from_rotvec([0, q3, 0])))
        got = tree.pose("d", {"j1": q1, "j2": q2, "j3": q3})
        np.testing.assert_allclose(got, ref, atol=1e-12)
        # Relative poses are the same chain seen from another link.
        np.testing.assert_allclose(tree.pose("d", {"j1": q1, "j2": q2, "j3": q3}, relative_to="b"),
                                   np.linalg.inv(tree.pose("b", {"j1": q1})) @ ref, atol=1e-12)


def test_joint_pose_as_quaternions_equals_its_matrix() -> None:
    rng = np.random.default_rng(1)
    for j in parse_urdf(VALID).joints:
        for x in [0.0, *rng.uniform(-4, 4, 20)]:
            pos, quat = j.pose(x)
            m = j.transform(x)
            np.testing.assert_allclose(pos, m[:3, 3], atol=1e-12)
            np.testing.assert_allclose(Rotation.from_quat(quat).as_matrix(), m[:3, :3], atol=1e-12)


def test_fk_refuses_a_joint_that_is_not_a_moving_joint() -> None:
    with pytest.raises(KeyError, match="j9"):
        parse_urdf(VALID).link_poses({"j9": 0.1})


def _edit(old: str, new: str) -> str:
    assert old in VALID
    return VALID.replace(old, new, 1)


BAD = {
    "not xml": (VALID[:-3], "not XML"),
    "not a robot": (VALID.replace("<robot", "<robox").replace("</robot>", "</robox>"), "robot"),
    "two roots": (_edit('<link name="d"/>', '<link name="d"/><link name="e"/>'), "one root"),
    "undeclared child": (_edit('<child link="b"/>', '<child link="x"/>'), "child link 'x'"),
    "undeclared parent": (_edit('<parent link="b"/>', '<parent link="x"/>'), "parent link 'x'"),
    "missing parent": (_edit('<parent link="b"/>', ""), "parent link None"),
    "two parents": (_edit('<child link="d"/>', '<child link="b"/>'), "child of two joints"),
    "self parent": (_edit('<parent link="b"/><child link="c"/>', '<parent link="c"/><child link="c"/>'), "same link"),
    "cycle": (_edit('<parent link="a"/><child link="b"/>', '<parent link="d"/><child link="b"/>'), "cycle"),
    "duplicate link": (_edit('<link name="d"/>', '<link name="d"/><link name="c"/>'), "declared twice"),
    "duplicate joint": (_edit('name="j3"', 'name="j2"'), "unique"),
    "unknown type": (_edit('type="continuous"', 'type="planar"'), "planar"),
    "revolute without limit": (_edit('<limit lower="-1" upper="1" effort="1" velocity="1"/>', ""), "needs <limit>"),
    "limit without effort": (_edit('effort="1" velocity="1"/></joint>\n  <joint name="j2"',
                                   'velocity="1"/></joint>\n  <joint name="j2"'), "effort"),
    "inverted limit": (_edit('lower="-1" upper="1"', 'lower="1" upper="-1"'), "lower"),
    "nan origin": (_edit('xyz="0.1 0.2 0.3"', 'xyz="0.1 nan 0.3"'), "finite"),
    "short rpy": (_edit('rpy="0.3 -0.2 1.1"', 'rpy="0.3 -0.2"'), "3 finite"),
    "word in axis": (_edit('<axis xyz="0 0 2"/>', '<axis xyz="0 0 z"/>'), "not numbers"),
    "zero axis": (_edit('<axis xyz="0 0 2"/>', '<axis xyz="0 0 0"/>'), "zero axis"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_not_a_tree_is_refused_saying_why(case: str) -> None:
    text, why = BAD[case]
    with pytest.raises(UrdfError, match=why):
        parse_urdf(text)
