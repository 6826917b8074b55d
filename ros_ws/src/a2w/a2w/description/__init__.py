"""The rig's robot model: its URDF (``urdf``, generated from the sim's kinematic tables), the
URDF's kinematic tree and forward kinematics (``tree``), and the node that publishes
``/robot_description``, ``/tf_static`` and ``/tf`` (``component``; docs/architecture.md §5)."""
