"""The local launch runner: ROS 2 XML launch files run in-process (docs/architecture.md §3)."""

from a2w.launch.runner import LaunchError, LaunchResult, LaunchRunner

__all__ = ["LaunchError", "LaunchResult", "LaunchRunner"]
