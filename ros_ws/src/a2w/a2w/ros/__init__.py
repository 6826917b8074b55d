"""The ROS 2 layer: message codec, interface definitions, and the rclpy host (docs/architecture.md §3).

Importing this package does not import rclpy: ``codec``, ``interfaces`` and ``qos_map`` are
ROS-free (they work with rosbags' typestore classes as well as rclpy's), and only ``a2w.ros.host``
and ``a2w.ros.main`` import rclpy, lazily, when a node actually runs.
"""
