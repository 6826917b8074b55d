"""a2w: the ROS-free runtime core of the A2World rig stack.

Nothing in this package imports rclpy except ``a2w.ros``; see docs/architecture.md §3.
"""

__version__ = "0.1.0"
