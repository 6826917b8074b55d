"""Messages of coordinate frames: transforms between named frames (tf2_msgs/TFMessage).

ROS mirror: ``FrameTransforms`` -> tf2_msgs/msg/TFMessage on ``/tf`` and ``/tf_static``. Frame ids
are spelled by ``a2w.frames``.
"""

from __future__ import annotations

from dataclasses import dataclass

from a2w.msgs.checks import finite_scalar
from a2w.msgs.common import Pose


@dataclass(frozen=True)
class FrameTransform:
    """Pose of frame ``child`` in frame ``parent`` at ``stamp`` (geometry_msgs/TransformStamped)."""

    parent: str
    child: str
    pose: Pose
    stamp: float

    def __post_init__(self) -> None:
        for f in ("parent", "child"):
            v = getattr(self, f)
            if not isinstance(v, str) or not v:
                raise ValueError(f"{f}: must be a non-empty frame id, got {v!r}")
        if self.parent == self.child:
            raise ValueError(f"child: a frame cannot be its own parent ({self.child!r})")
        if not isinstance(self.pose, Pose):
            raise ValueError("pose: must be a Pose")
        object.__setattr__(self, "stamp", finite_scalar("stamp", self.stamp))


@dataclass(frozen=True)
class FrameTransforms:
    """Several transforms sent together (one TFMessage)."""

    transforms: tuple[FrameTransform, ...]

    def __post_init__(self) -> None:
        items = tuple(self.transforms)
        if not items or not all(isinstance(t, FrameTransform) for t in items):
            raise ValueError("transforms: must be one or more FrameTransform")
        object.__setattr__(self, "transforms", items)


@dataclass(frozen=True)
class RobotDescription:
    """The rig's URDF as text, published latched on ``/robot_description`` (std_msgs/String, as
    robot_state_publisher does) for RViz and Foxglove."""

    urdf: str

    def __post_init__(self) -> None:
        if not isinstance(self.urdf, str) or "<robot" not in self.urdf:
            raise ValueError("urdf: must be the text of a URDF <robot> document")
