"""`a2w describe`: write the rig's URDF (``urdf``), and measure how far it is from our forward
kinematics and from the MuJoCo scene's cameras (``check``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np


def register(sub: argparse._SubParsersAction) -> None:
    from a2w.description.urdf import VIEWS
    from a2w.sim.scene import ARMS

    p = sub.add_parser("describe", help="the rig's URDF (robot_description) and its checks",
                       description="The rig's URDF as robot_state_node publishes it, generated from the "
                       "sim's kinematic tables (a2w.description).")
    cmds = p.add_subparsers(dest="describe_command", metavar="WHAT", required=True)
    u = cmds.add_parser("urdf", help="write the URDF (stdout, or --out)")
    u.add_argument("--out", type=Path, help="write to this file instead of stdout")
    u.add_argument("--arms", nargs="*", choices=ARMS, default=list(ARMS), help="arms in the model")
    u.add_argument("--views", nargs="*", choices=VIEWS, default=list(VIEWS), help="camera mounts in the model")
    u.add_argument("--no-optical-frames", action="store_true",
                   help="leave camera link -> optical frame to the camera driver (realsense-ros publish_tf)")
    u.add_argument("--tcp-offset", type=float, help="TCP along the flange z (m; default the sim's)")
    for arm in ARMS:
        u.add_argument(f"--{arm}-base", type=float, nargs=6, metavar=("X", "Y", "Z", "R", "P", "YAW"),
                       help=f"{arm} base in the world (default the arm node's)")
    u.add_argument("--calibration", type=Path, metavar="DIR",
                   help="the rig's calibration folder: bases, front camera and wrist hand-eye from its files, "
                   "as robot_state_node's calibration parameter (not with --left-base/--right-base)")
    u.set_defaults(func=_urdf)
    c = cmds.add_parser("check", help="print the URDF's FK errors against kinematics.joint_frames and the "
                        "MuJoCo scene's cameras")
    c.add_argument("--samples", type=int, default=500, help="random joint configurations (default 500)")
    c.add_argument("--seed", type=int, default=0)
    c.set_defaults(func=_check)


def _urdf(args: argparse.Namespace) -> int:
    from a2w.arms.kinematics import TRI_BASE_POSES
    from a2w.description.urdf import RigSpec, build_urdf
    from a2w.sim.scene import TCP_OFFSET

    bases = {arm: getattr(args, f"{arm}_base") or TRI_BASE_POSES[arm] for arm in TRI_BASE_POSES}
    kw: dict[str, Any] = {} if args.tcp_offset is None else {"tcp_offset": args.tcp_offset}
    try:
        if args.calibration is not None:
            from a2w.rig.extrinsics import front_link_in_world, load_extrinsics, matrix_pose6, wrist_link_in_flange

            given = [f"--{arm}-base" for arm in TRI_BASE_POSES if getattr(args, f"{arm}_base")]
            if given:
                raise ValueError(f"{' and '.join(given)}: the base poses come from --calibration; give one or "
                                 "the other")
            ext = load_extrinsics(args.calibration)
            tcp = TCP_OFFSET if args.tcp_offset is None else args.tcp_offset
            bases = {arm: matrix_pose6(ext.bases[arm]) for arm in TRI_BASE_POSES}
            kw.update(front_link_pose=matrix_pose6(front_link_in_world(ext.front_optical)),
                      wrist_link_poses={a: wrist_link_in_flange(ext.handeye[a], tcp) for a in args.arms})
        text = build_urdf(RigSpec(arms=tuple(args.arms), bases=bases, views=tuple(args.views),
                                  optical_frames=not args.no_optical_frames, **kw))
    except ValueError as e:
        sys.stderr.write(f"a2w describe urdf: {e}\n")
        return 2
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def agreement(samples: int, seed: int = 0) -> dict[str, tuple[float, float]]:
    """Max position (m) and angle (rad) errors of the default URDF's FK: flange and TCP against
    ``kinematics.joint_frames`` with the base poses and the TCP offset, and camera optical frames
    against the MuJoCo scene's cameras (turned into optical frames) at random joint positions."""
    from scipy.spatial.transform import Rotation

    from a2w import frames
    from a2w.arms.kinematics import TRI_BASE_POSES, joint_frames
    from a2w.description.tree import parse_urdf
    from a2w.description.urdf import MUJOCO_TO_OPTICAL, VIEWS, build_urdf, flange_frame, joint_name
    from a2w.geometry import xyz_rpy_to_matrix
    from a2w.sim.scene import ARMS, HARD_LIMITS, SOFT_LIMITS, TCP_OFFSET, SceneConfig
    from a2w.sim.world import VIEW_CAMERAS, SimWorld

    tree = parse_urdf(build_urdf())
    rng = np.random.default_rng(seed)
    out = {"flange_tcp_vs_kinematics": [0.0, 0.0], "optical_vs_mujoco_cameras": [0.0, 0.0]}

    def worst(key: str, got: np.ndarray, ref: np.ndarray) -> None:
        e = out[key]
        e[0] = max(e[0], float(np.abs(got[:3, 3] - ref[:3, 3]).max()))
        e[1] = max(e[1], float(Rotation.from_matrix(got[:3, :3].T @ ref[:3, :3]).magnitude()))

    tcp = xyz_rpy_to_matrix((0.0, 0.0, TCP_OFFSET), (0.0, 0.0, 0.0))
    for _ in range(samples):
        q = {a: rng.uniform(HARD_LIMITS[:, 0], HARD_LIMITS[:, 1]) for a in ARMS}
        poses = tree.link_poses({joint_name(a, i + 1): q[a][i] for a in ARMS for i in range(7)})
        for a in ARMS:
            base = xyz_rpy_to_matrix(TRI_BASE_POSES[a][:3], TRI_BASE_POSES[a][3:])
            flange = base @ joint_frames(q[a])[-1]
            worst("flange_tcp_vs_kinematics", poses[flange_frame(a)], flange)
            worst("flange_tcp_vs_kinematics", poses[frames.tcp_frame(a)], flange @ tcp)
    world = SimWorld(SceneConfig(task="none", max_width=64, max_height=48))
    try:
        for _ in range(max(1, samples // 10)):
            for a in ARMS:
                world.set_arm_q(a, rng.uniform(SOFT_LIMITS[:, 0], SOFT_LIMITS[:, 1]))
            poses = tree.link_poses({joint_name(a, i + 1): float(world.data.qpos[world.arms[a].qpos][i])
                                     for a in ARMS for i in range(7)})
            for view in VIEWS:
                c = world.model.camera(VIEW_CAMERAS[view]).id
                ref = np.eye(4)
                ref[:3, :3] = world.data.cam_xmat[c].reshape(3, 3) @ MUJOCO_TO_OPTICAL
                ref[:3, 3] = world.data.cam_xpos[c]
                worst("optical_vs_mujoco_cameras", poses[frames.optical_frame(view)], ref)
    finally:
        world.close()
    return {k: (v[0], v[1]) for k, v in out.items()}


def _check(args: argparse.Namespace) -> int:
    for key, (pos, ang) in agreement(args.samples, args.seed).items():
        sys.stdout.write(f"{key}: max position error {pos:.2e} m, max angle error {ang:.2e} rad\n")
    return 0
