"""The in-process host: components, topics with QoS, timers, services, parameters.

A component is written once against ``NodeHandle`` and runs either here (in-process, for tests,
benchmarks and laptops) or as an rclpy node through ``a2w.ros`` on a rig (docs/architecture.md §3).
"""

from a2w.host.component import Component, NodeHandle
from a2w.host.host import Host
from a2w.host.params import ParamGroup, Params, param
from a2w.host.qos import QoS

__all__ = ["Component", "Host", "NodeHandle", "ParamGroup", "Params", "QoS", "param"]
