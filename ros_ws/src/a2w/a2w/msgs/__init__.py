"""Every message and service type of the runtime, one module per concern.

| module | types | ROS mirror |
| --- | --- | --- |
| ``common`` | ``Pose`` | geometry_msgs/Pose |
| ``arms`` | ``RigState`` (with two ``ArmState``), ``ArmTarget``, ``RigTarget`` | a2w_interfaces/msg/* |
| | ``ControlMode``, ``ARM_NAMES`` | fields of the above |
| | ``JointStates`` | sensor_msgs/JointState (``/joint_states``) |
| | ``ArmsStatus`` | a2w_interfaces/msg/ArmsStatus (``/arms/status``) |
| ``cameras`` | ``CameraFrame``, ``VIEW_NAMES`` / ``VIEW_IDS`` | sensor_msgs/Image rgb8 |
| | ``CameraIntrinsics`` (in a ``CameraFrame``) | sensor_msgs/CameraInfo, one per image |
| | ``FrameMetadata`` | a2w_interfaces/msg/FrameMetadata (``color/metadata``) |
| | ``DepthFrame`` | sensor_msgs/Image 32FC1, metres, NaN = no data |
| | ``MultiViewObservation`` | not sent between nodes |
| ``policy`` | ``ActionChunk``, ``ACTION_DIM`` | a2w_interfaces/msg/ActionChunk |
| ``episode`` | ``EpisodeEvent``, ``EpisodeEventKind`` | a2w_interfaces/msg/EpisodeEvent |
| ``diagnostics`` | ``DiagnosticStatus``, ``DiagnosticLevel`` | diagnostic_msgs/DiagnosticArray |
| ``tf`` | ``FrameTransform``, ``FrameTransforms`` (frame ids: ``a2w.frames``) | tf2_msgs/TFMessage |
| | ``RobotDescription`` | std_msgs/String (``/robot_description``) |
| ``sim`` | ``ClockTick`` | rosgraph_msgs/Clock |
| | ``SimStatus``, ``FaultEvent``, ``TaskFacts`` | a2w_interfaces/msg/* |
| ``services`` | ``SetControlModeRequest`` / ``Response``, ``RecoverRequest`` | a2w_interfaces/srv/* |
| | ``StartPolicyRequest``, ``SetInstructionRequest``, ``StopRequest``, ``Outcome`` | a2w_interfaces/srv/* |

``a2w.ros.codec`` maps each type a node sends to its ROS message (tests/ros/test_mappings.py checks
that every registered node's types have one), and every header it writes names a frame from
``a2w.frames``. All constructors validate their inputs and raise ``ValueError`` naming the
offending field (``a2w.msgs.checks``), so a malformed message is rejected where it enters the
system instead of moving an arm. Units are SI, stamps are
float seconds on the component's clock, quaternions are ROS/SciPy order (x, y, z, w)
(docs/architecture.md §5). Arrays are stored read-only so a consumer cannot mutate what another
consumer of the same message sees. Nothing here imports ROS or the rest of ``a2w``.
"""
