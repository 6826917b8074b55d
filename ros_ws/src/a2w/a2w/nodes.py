"""Registry of runnable nodes: executable name -> component class.

The names are the console-script names ament_python installs for the ROS host
(``ros_ws/src/a2w/setup.py`` reads this table), and the ``exec`` names launch files use, so one
launch file runs with ``ros2 launch`` on a rig and with ``a2w launch`` here.
"""

from __future__ import annotations

import importlib

from a2w.host.component import Component

PACKAGE = "a2w"

# exec name -> "module:Class". Keep sorted.
NODES: dict[str, str] = {
    "arm_node": "a2w.arms.component:ArmNode",
    "camera_node": "a2w.cameras.component:CameraComponent",
    "expert_node": "a2w.sim.expert_node:ExpertNode",
    "monitor_node": "a2w.monitor.component:MonitorNode",
    "policy_node": "a2w.policy.component:PolicyNode",
    "record_node": "a2w.record.component:RecordNode",
    "robot_state_node": "a2w.description.component:RobotStateNode",
    "shadow_node": "a2w.shadow.component:ShadowNode",
    "sim_node": "a2w.sim.component:SimNode",
    "task_judge_node": "a2w.sim.judge_node:TaskJudge",
    "teleop_node": "a2w.teleop.component:TeleopNode",
}


def load(exec_name: str) -> type[Component]:
    """The component class behind ``exec_name``; ``LookupError`` listing the known names."""
    try:
        target = NODES[exec_name]
    except KeyError:
        raise LookupError(
            f"unknown executable {exec_name!r} in package {PACKAGE!r}; known: {sorted(NODES)}"
        ) from None
    module, _, cls = target.partition(":")
    obj = getattr(importlib.import_module(module), cls)
    if not (isinstance(obj, type) and issubclass(obj, Component)):
        raise TypeError(f"{target} is not a Component")
    return obj
