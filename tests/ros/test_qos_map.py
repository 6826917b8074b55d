"""a2w QoS presets map to the ROS policies the issue and ros2_facts.md §6 prescribe."""

from a2w.host.qos import QoS
from a2w.ros.qos_map import RosQoS, to_ros


def test_presets() -> None:
    assert to_ros(QoS.sensor()) == RosQoS("best_effort", "volatile", "keep_last", 1)
    assert to_ros(QoS.reliable(7)) == RosQoS("reliable", "volatile", "keep_last", 7)
    assert to_ros(QoS.latched_state()) == RosQoS("reliable", "transient_local", "keep_last", 1)
