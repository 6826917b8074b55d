"""The robot-state node (exec ``robot_state_node``): the rig's URDF and its transforms, as
robot_state_publisher does, for hosts where robot_state_publisher is not installed (ours).

* ``/robot_description`` (std_msgs/String, latched): the URDF of ``a2w.description.urdf`` for the
  parameters' arms, cameras, base poses and TCP offset;
* ``/tf_static`` (tf2_msgs/TFMessage, latched): every fixed joint of that URDF, once (world ->
  ``<arm>_base``, flange, gripper, ``<arm>_tcp``, camera mounts and optical frames);
* ``/tf`` (tf2_msgs/TFMessage): the arms' revolute joints from each ``/joint_states`` message,
  stamped with its stamp (``publish_tf``), at most ``max_rate`` messages per second of stamps
  (robot_state_publisher's ``publish_frequency``; 0 publishes every message). A message with no
  joints, a name the URDF does not move, a stamp older than ``stale_after`` or the same stamp as
  the last one publishes nothing; it is counted by reason in diagnostics. ``JointStates`` itself
  refuses non-finite positions, repeated names and arrays whose length differs from the names',
  so such a message from another process fails to decode and is counted by the host as a
  callback error: never a transform.

Launch choice: the sim and a rig without robot_state_publisher run this node with the defaults.
A rig with robot_state_publisher installed may run that instead, fed the same URDF
(``<param name="robot_description" value="$(command 'a2w describe urdf --calibration DIR')"/>``,
the same text this node publishes for that folder) and not this node;
or run this node with ``publish_tf:=false`` when something else (a vendor driver) publishes the
arm links but the mounts and cameras still need /tf_static. Base poses default to the arm node's
defaults (``kinematics.TRI_BASE_POSES``). On a calibrated rig give both nodes the same
``calibration`` folder: the base poses, the front camera and the wrist hand-eye then come from its
files (``a2w.rig.extrinsics``; a pose parameter that disagrees with them is refused).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from a2w.arms import kinematics
from a2w.arms.component import JOINT_STATES_TOPIC
from a2w.description.tree import KinematicTree, parse_urdf
from a2w.description.urdf import VIEWS, RigSpec, build_urdf, front_link_pose
from a2w.geometry import matrix_to_pose
from a2w.host.component import Component, NodeHandle
from a2w.host.params import Params, param, specs
from a2w.host.qos import QoS
from a2w.msgs.arms import JointStates
from a2w.msgs.common import Pose
from a2w.msgs.tf import FrameTransform, FrameTransforms, RobotDescription
from a2w.rig.extrinsics import front_link_in_world, load_extrinsics, resolve_pose, wrist_link_in_flange
from a2w.sim.scene import ARMS, TCP_OFFSET

DESCRIPTION_TOPIC = "/robot_description"
TF_TOPIC = "/tf"
TF_STATIC_TOPIC = "/tf_static"

# Why a /joint_states message published nothing (diagnostics keys).
REJECT_REASONS = ("empty", "unknown_joint", "stale", "repeated")


@dataclass
class RobotStateParams(Params):
    publish_tf: bool = param(True, "publish the arms' links on /tf from /joint_states (false where another "
                             "node publishes them, e.g. robot_state_publisher or a vendor driver)")
    # robot_state_publisher's publish_frequency (its default 20 Hz). A /tf message costs ~1 ms of
    # CPU to build here (14 validated poses) plus its encoding; the arm node sends /joint_states at
    # 100 Hz, and the cameras, whose stamps TF is looked up at, run at 30 Hz.
    max_rate: float = param(30.0, "publish /tf at most this often by message stamps (Hz); 0: every "
                            "/joint_states message", low=0.0, high=1000.0)
    stale_after: float = param(1.0, "a /joint_states message stamped more than this before the node's "
                               "clock publishes nothing (s); 0: no check", low=0.0)
    arms: list[str] = param(list(ARMS), "arms in the model (left, right)")
    views: list[str] = param(list(VIEWS), "cameras whose mounts are in the model (front, left_wrist, right_wrist)")
    camera_optical_frames: bool = param(True, "camera link -> optical frame transforms (false where the "
                                        "camera driver publishes its own, realsense-ros publish_tf)")
    left_base_pose: list[float] = param(list(kinematics.TRI_BASE_POSES["left"]), "left base in world")
    right_base_pose: list[float] = param(list(kinematics.TRI_BASE_POSES["right"]), "right base in world")
    tcp_offset: float = param(TCP_OFFSET, "TCP along the flange z (m): the 2F-85 pad centre", low=0.0, high=1.0)
    front_camera_pose: list[float] = param(front_link_pose(), "cam_front_link in world: x, y, z, roll, "
                                           "pitch, yaw (default: the sim scene's)")
    calibration: str = param("", "calibration folder (calibration/<rig>/): base poses, front camera and wrist "
                             "hand-eye from its files ('' = the built-in sim values and the pose parameters); "
                             "a pose parameter set to another value than the calibration's is refused")


class RobotStateNode(Component):
    Params = RobotStateParams

    def __init__(self, node: NodeHandle, params: RobotStateParams) -> None:
        super().__init__(node, params)
        p = params
        self.clock = node.clock
        for name in ("left_base_pose", "right_base_pose", "front_camera_pose"):
            if len(getattr(p, name)) != 6:
                raise ValueError(f"{name}: need 6 values x, y, z, roll, pitch, yaw, got {getattr(p, name)}")
        bases = {"left": p.left_base_pose, "right": p.right_base_pose}
        front = p.front_camera_pose
        wrist: dict[str, np.ndarray] = {}
        if p.calibration:
            ext = load_extrinsics(p.calibration)
            defaults = {s.name: s.default for s in specs(RobotStateParams)}
            bases = {a: resolve_pose(f"{a}_base_pose", bases[a], defaults[f"{a}_base_pose"], ext.bases[a],
                                     f"{p.calibration}/bases.yaml {a}") for a in ARMS}
            front = resolve_pose("front_camera_pose", front, defaults["front_camera_pose"],
                                 front_link_in_world(ext.front_optical), f"{p.calibration}/front.yaml")
            wrist = {a: wrist_link_in_flange(ext.handeye[a], p.tcp_offset) for a in ARMS}
            self.log.info("extrinsics from calibration %s", p.calibration)
        self.spec = RigSpec(arms=tuple(p.arms), bases={a: bases[a] for a in p.arms if a in bases},
                            tcp_offset=p.tcp_offset, views=tuple(p.views),
                            optical_frames=p.camera_optical_frames, front_link_pose=front,
                            wrist_link_poses={a: m for a, m in wrist.items() if a in p.arms})
        self.urdf = build_urdf(self.spec)
        # The transforms come from the URDF text as published, so they cannot disagree with it.
        self.tree: KinematicTree = parse_urdf(self.urdf)
        self._moving = {j.name: j for j in self.tree.moving_joints}
        self.published = 0
        self.throttled = 0
        self.rejected: Counter[str] = Counter()
        self.last_reject = ""
        self._last_stamp = -math.inf
        self._min_period = 1.0 / p.max_rate if p.max_rate > 0 else 0.0

        stamp = node.clock.now()
        self.static = FrameTransforms(tuple(
            FrameTransform(j.parent, j.child, matrix_to_pose(j.origin), stamp) for j in self.tree.fixed_joints))
        desc_pub = node.create_publisher(DESCRIPTION_TOPIC, RobotDescription, QoS.latched_state())
        static_pub = node.create_publisher(TF_STATIC_TOPIC, FrameTransforms, QoS.latched_state())
        desc_pub.publish(RobotDescription(self.urdf))
        static_pub.publish(self.static)
        if p.publish_tf:
            # tf2's own /tf QoS: reliable, keep last 100.
            self.tf_pub = node.create_publisher(TF_TOPIC, FrameTransforms, QoS.reliable(100))
            node.create_subscription(JOINT_STATES_TOPIC, JointStates, self._on_joint_states, QoS.sensor())

    def _reject(self, reason: str, detail: str) -> None:
        self.rejected[reason] += 1
        self.last_reject = f"{reason}: {detail}"
        if self.rejected[reason] == 1:
            self.log.warning("/joint_states message not published on /tf (%s); counted in diagnostics",
                             self.last_reject)

    def transforms_for(self, msg: JointStates) -> FrameTransforms | str:
        """The /tf message for ``msg``, or why there is none (``REJECT_REASONS`` key: detail)."""
        names = msg.names
        if not names:
            return "empty: no joints"
        unknown = [n for n in names if n not in self._moving]
        if unknown:
            return f"unknown_joint: {unknown[:3]}"
        stamp = float(msg.stamp)
        return FrameTransforms(tuple(
            FrameTransform(j.parent, j.child, Pose(*j.pose(float(x))), stamp)
            for j, x in ((self._moving[n], x) for n, x in zip(names, msg.position))))

    def _on_joint_states(self, msg: JointStates) -> None:
        stamp = float(msg.stamp)
        if self.params.stale_after > 0 and self.clock.now() - stamp > self.params.stale_after:
            self._reject("stale", f"stamp {stamp:.3f} is {self.clock.now() - stamp:.3f} s old")
            return
        if stamp == self._last_stamp:
            # tf2 listeners warn TF_REPEATED_DATA for a second transform at the same stamp.
            self._reject("repeated", f"stamp {stamp:.6f} already published")
            return
        # 1 µs slack: stamps on the max_rate grid are not skipped for a rounding error.
        if self._min_period and abs(stamp - self._last_stamp) < self._min_period - 1e-6:
            self.throttled += 1
            return
        out = self.transforms_for(msg)
        if isinstance(out, str):
            reason, _, detail = out.partition(": ")
            self._reject(reason, detail)
            return
        self.tf_pub.publish(out)
        self._last_stamp = stamp
        self.published += 1

    def diagnostics(self) -> dict[str, object]:
        d: dict[str, object] = {"links": len(self.tree.links), "static_transforms": len(self.static.transforms),
                                "tf_published": self.published, "tf_throttled": self.throttled,
                                "rejected": sum(self.rejected.values())}
        d.update({f"rejected_{r}": self.rejected[r] for r in REJECT_REASONS})
        if self.last_reject:
            d["last_reject"] = self.last_reject
        return d
