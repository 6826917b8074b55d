"""The teleop mapping math (a2w.teleop.mapping) and the session's clutch, checks and dead man
(a2w.teleop.session), without sockets or ROS."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from a2w.arms.kinematics import TRI_BASE_POSES
from a2w.geometry import xyz_rpy_to_matrix
from a2w.teleop.mapping import XR_TO_OPERATOR, Alignment, Clutch, quat_to_matrix, world_to_base
from a2w.teleop.session import DROP_KINDS, PROTOCOL, TeleopConfig, TeleopSession, parse

BASES = tuple(xyz_rpy_to_matrix(TRI_BASE_POSES[a][:3], TRI_BASE_POSES[a][3:]) for a in ("left", "right"))
RNG = np.random.default_rng(7)


def rand_pose() -> np.ndarray:
    return np.concatenate([RNG.uniform(-1, 1, 3), Rotation.random(random_state=RNG).as_quat()])


def as_matrix(pose: np.ndarray) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = Rotation.from_quat(pose[3:]).as_matrix(), pose[:3]
    return m


def test_quat_to_matrix_matches_scipy():
    for _ in range(50):
        q = Rotation.random(random_state=RNG).as_quat()
        np.testing.assert_allclose(quat_to_matrix(q), Rotation.from_quat(q).as_matrix(), atol=1e-12)


def test_xr_axes_map_to_rep103_operator_axes():
    # WebXR: -z ahead, x right, y up; REP 103: x ahead, y left, z up
    np.testing.assert_allclose(XR_TO_OPERATOR @ [0, 0, -1], [1, 0, 0])
    np.testing.assert_allclose(XR_TO_OPERATOR @ [1, 0, 0], [0, -1, 0])
    np.testing.assert_allclose(XR_TO_OPERATOR @ [0, 1, 0], [0, 0, 1])
    assert np.linalg.det(XR_TO_OPERATOR) == pytest.approx(1.0)


@pytest.mark.parametrize("yaw_deg", [0.0, 90.0, -45.0, 180.0])
def test_yaw_alignment_turns_the_operators_forward_into_the_world(yaw_deg):
    al = Alignment(math.radians(yaw_deg))
    ident = np.array([0, 0, 0, 0, 0, 0, 1.0])
    ahead = al.controller_in_world(np.array([0, 0, -1.0, 0, 0, 0, 1]))[:3, 3] - al.controller_in_world(ident)[:3, 3]
    y = math.radians(yaw_deg)
    np.testing.assert_allclose(ahead, [math.cos(y), math.sin(y), 0.0], atol=1e-12)
    # a turn of the hand about the operator's up axis is a turn about the world's z, whatever the yaw
    turn = np.concatenate([[0, 0, 0], Rotation.from_rotvec([0, 0.3, 0]).as_quat()])
    r = al.controller_in_world(turn)[:3, :3]
    np.testing.assert_allclose(Rotation.from_matrix(r).as_rotvec(), [0, 0, 0.3], atol=1e-12)


def test_engage_never_jumps_and_release_holds():
    for _ in range(20):
        c0, t0 = as_matrix(rand_pose()), as_matrix(rand_pose())
        clutch = Clutch(scale=RNG.uniform(0.2, 3.0))
        clutch.engage(c0, t0)
        np.testing.assert_allclose(clutch.target(c0), t0, atol=1e-12)
        clutch.release()
        assert not clutch.engaged
        with pytest.raises(RuntimeError):
            clutch.target(c0)


def test_position_is_scaled_and_rotation_turns_the_tcp_in_place():
    c0, t0 = as_matrix(rand_pose()), as_matrix(rand_pose())
    for scale in (0.5, 1.0, 2.0):
        clutch = Clutch(scale)
        clutch.engage(c0, t0)
        moved = c0.copy()
        moved[:3, 3] += [0.1, -0.2, 0.05]
        np.testing.assert_allclose(clutch.target(moved)[:3, 3] - t0[:3, 3], scale * np.array([0.1, -0.2, 0.05]))
        np.testing.assert_allclose(clutch.target(moved)[:3, :3], t0[:3, :3], atol=1e-12)
        turned = c0.copy()
        dr = Rotation.from_rotvec([0.2, -0.4, 0.1]).as_matrix()
        turned[:3, :3] = dr @ c0[:3, :3]
        out = clutch.target(turned)
        np.testing.assert_allclose(out[:3, 3], t0[:3, 3], atol=1e-12)  # about the TCP: it does not move
        np.testing.assert_allclose(out[:3, :3], dr @ t0[:3, :3], atol=1e-12)  # unscaled, in the world
    with pytest.raises(ValueError):
        Clutch(0.0)
    with pytest.raises(ValueError):
        Clutch(float("nan"))


def test_45_degree_mounts_turn_a_world_step_into_each_base():
    step = np.eye(4)
    step[:3, 3] = [0.1, 0.0, 0.0]  # 10 cm along world x
    for arm, base in zip(("left", "right"), BASES):
        yaw = TRI_BASE_POSES[arm][5]
        assert abs(abs(yaw) - math.pi / 4) < 1e-12
        a, b = world_to_base(np.eye(4), base), world_to_base(step, base)
        d = b[:3, 3] - a[:3, 3]
        np.testing.assert_allclose(d, [0.1 * math.cos(yaw), -0.1 * math.sin(yaw), 0.0], atol=1e-12)
        np.testing.assert_allclose(base @ world_to_base(step, base), step, atol=1e-12)


# -- the session -----------------------------------------------------------------------------------

def msg(left=None, right=None, v=PROTOCOL, seq=0) -> str:  # noqa: ANN001
    def arm(a):  # noqa: ANN001, ANN202
        if a is None:
            return {"tracked": False, "pose": None, "grip": False, "trigger": 0.0}
        pose, grip, trigger = a
        return {"tracked": True, "pose": list(map(float, pose)), "grip": grip, "trigger": trigger}
    return json.dumps({"v": v, "type": "pose", "seq": seq, "arms": {"left": arm(left), "right": arm(right)}})


IDENT = np.array([0.0, 1.2, -0.3, 0, 0, 0, 1])


def held(x: float = 0.0, grip: bool = True, trigger: float = 0.0, pose: np.ndarray = IDENT) -> tuple:
    p = pose.copy()
    p[0] += x
    return (p, grip, trigger)


def session(**kw) -> TeleopSession:  # noqa: ANN003
    s = TeleopSession(TeleopConfig(**kw), BASES)
    tcp_w = tuple(b @ as_matrix(np.array([0.5, 0, 0.3, 1, 0, 0, 0.0])) for b in BASES)
    s.reset(tcp_w, (1.0, 1.0))
    return s


def test_session_engages_moves_only_the_gripped_arm_and_maps_the_trigger():
    s = session(scale=2.0)
    start = [t.copy() for t, _ in s.targets_base()]
    assert s.receive(msg(left=held(0.0)), 0.0) is not None
    assert s.engaged() == (True, False)
    np.testing.assert_allclose(s.targets_base()[0][0], start[0], atol=1e-12)  # engage: no jump
    s.receive(msg(left=held(0.05, trigger=0.75), right=held(0.05, grip=False)), 0.01)
    # xr +x is the operator's right (-y in the world at yaw 0), scaled by 2
    moved_w = s.arms[0].target[:3, 3] - (BASES[0] @ start[0])[:3, 3]
    np.testing.assert_allclose(moved_w, [0.0, -0.1, 0.0], atol=1e-12)
    assert s.targets_base()[0][1] == pytest.approx(0.25)
    np.testing.assert_allclose(s.targets_base()[1][0], start[1], atol=1e-12)  # right never gripped
    s.receive(msg(left=held(0.2, grip=False)), 0.02)  # release, then move: holds
    before = s.targets_base()[0][0].copy()
    s.receive(msg(left=held(0.1, grip=False)), 0.03)
    np.testing.assert_allclose(s.targets_base()[0][0], before)


BAD = {
    "malformed": ["{", "[]", "null", '"pose"', json.dumps({"v": 1, "type": "pose"}),
                  json.dumps({"v": 1, "type": "nope"}), json.dumps({"v": 1, "type": "pose", "seq": 1, "arms": []}),
                  msg(left=(np.zeros(6), True, 0.0)), msg(left=held(trigger=1.5)),
                  msg(left=held()).replace('"grip": true', '"grip": 1'),
                  msg(left=held()).replace('"trigger": 0.0', '"trigger": "x"'),
                  json.dumps({"v": 1, "type": "episode", "action": "explode"}), b"\xff\xfe"],
    "version": [msg(left=held(), v=0), msg(left=held(), v=2), msg(left=held(), v=None),
                json.dumps({"type": "pose"})],
    "non_finite": [msg(left=held()).replace("1.2", "NaN", 1), msg(left=held()).replace("1.2", "Infinity", 1),
                   msg(right=held()).replace("-0.3", "-Infinity", 1),
                   msg(left=held(trigger=0.5)).replace("0.5", "NaN")],
    "quaternion": [msg(left=(np.array([0, 0, 0, 0, 0, 0, 2.0]), True, 0.0)),
                   msg(right=(np.array([0, 0, 0, 0, 0, 0, 0.0]), True, 0.0))],
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_every_bad_input_is_dropped_counted_and_never_moves(kind):
    s = session()
    s.receive(msg(left=held(0.0), right=held(0.0)), 0.0)
    assert s.engaged() == (True, True)
    before = [t.copy() for t, _ in s.targets_base()]
    for i, raw in enumerate(BAD[kind]):
        assert s.receive(raw, 0.01 * (i + 1)) is None, raw
        assert s.dropped[kind] == i + 1
        assert kind in s.last_error
    assert sum(s.dropped.values()) == len(BAD[kind])
    for (t, _), b in zip(s.targets_base(), before):
        np.testing.assert_array_equal(t, b)


def test_a_jump_is_dropped_disengages_and_needs_a_fresh_grip():
    s = session(max_jump=0.25)
    s.receive(msg(left=held(0.0), right=held(0.0)), 0.0)
    before = [t.copy() for t, _ in s.targets_base()]
    assert s.receive(msg(left=held(1.5), right=held(0.01)), 0.01) is None  # metres in one message
    assert s.dropped["jump"] == 1 and "left moved 1.50 m" in s.last_error
    assert s.engaged() == (False, True)
    for (t, _), b in zip(s.targets_base(), before):
        np.testing.assert_array_equal(t, b)
    s.receive(msg(left=held(1.51), right=held(0.01)), 0.02)  # still gripped: stays disengaged
    assert s.engaged()[0] is False
    s.receive(msg(left=held(1.51, grip=False), right=held(0.01)), 0.03)
    s.receive(msg(left=held(1.51), right=held(0.01)), 0.04)  # fresh grip: engages where the hand is
    assert s.engaged()[0] is True
    np.testing.assert_allclose(s.targets_base()[0][0], before[0], atol=1e-12)


def test_lost_tracking_holds_that_arm_only():
    s = session()
    s.receive(msg(left=held(0.0), right=held(0.0)), 0.0)
    lost = json.loads(msg(left=held(0.01), right=held(0.01)))
    lost["arms"]["left"]["tracked"] = False
    before = s.targets_base()[0][0].copy()
    s.receive(json.dumps(lost), 0.01)
    assert s.engaged() == (False, True)
    np.testing.assert_array_equal(s.targets_base()[0][0], before)
    s.receive(msg(left=held(0.02), right=held(0.02)), 0.02)  # tracking back, grip never released
    assert s.engaged() == (False, True)


def test_flood_is_dropped_beyond_the_rate():
    s = session(max_rate=100.0, burst=10.0)
    got = [s.receive(msg(left=held(0.0)), 1.0) for _ in range(30)]  # 30 at the same instant
    assert sum(g is not None for g in got) == 10 and s.dropped["flood"] == 20
    assert s.receive(msg(left=held(0.0)), 1.1) is not None  # refilled: 10 tokens after 0.1 s


def test_deadman_releases_after_silence_only():
    s = session(deadman=0.1)
    assert not s.check_deadman(5.0)  # nothing engaged: nothing to do
    s.receive(msg(left=held(0.0), right=held(0.0)), 0.0)
    assert not s.check_deadman(0.09)
    assert s.check_deadman(0.11)
    assert s.engaged() == (False, False) and "dead man" in s.releases[-1].why
    s.receive(msg(left=held(0.0), right=held(0.0)), 0.2)  # grip still held after the silence: stays released
    assert s.engaged() == (False, False)


def test_parse_accepts_the_episode_actions():
    for action in ("start", "save", "discard", "rerecord"):
        m = parse(json.dumps({"v": PROTOCOL, "type": "episode", "action": action, "task": "pick up the cube"}))
        assert (m.action, m.task) == (action, "pick up the cube")
    assert set(DROP_KINDS) >= set(BAD) | {"jump", "flood"}
