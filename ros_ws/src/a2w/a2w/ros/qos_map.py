"""a2w QoS presets as ROS 2 QoS policies (ROS-free, so the mapping is testable without rclpy).

sensor -> best effort, keep last 1, volatile; reliable(N) -> reliable, keep last N, volatile;
latched_state -> reliable, keep last 1, transient local (ros2_facts.md §6). A best-effort
subscription matches a reliable publisher under DDS; the reverse does not match.
"""

from __future__ import annotations

from dataclasses import dataclass

from a2w.host.qos import QoS, Reliability


@dataclass(frozen=True)
class RosQoS:
    reliability: str  # "reliable" | "best_effort"
    durability: str  # "volatile" | "transient_local"
    history: str  # always "keep_last": a2w has no unbounded queues
    depth: int


def to_ros(qos: QoS) -> RosQoS:
    return RosQoS(
        reliability="best_effort" if qos.reliability is Reliability.BEST_EFFORT else "reliable",
        durability="transient_local" if qos.latched else "volatile",
        history="keep_last",
        depth=int(qos.depth),
    )


def profile(qos: QoS):  # -> rclpy.qos.QoSProfile (rclpy imported lazily: only a2w.ros.host runs it)
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    r = to_ros(qos)
    return QoSProfile(
        reliability=ReliabilityPolicy.BEST_EFFORT if r.reliability == "best_effort" else ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if r.durability == "transient_local" else DurabilityPolicy.VOLATILE,
        history=HistoryPolicy.KEEP_LAST,
        depth=r.depth,
    )
