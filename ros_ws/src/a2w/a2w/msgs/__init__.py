"""Every message and service type of the runtime, one module per concern.

| module | types | ROS mirror |
| --- | --- | --- |
| ``common`` | ``Pose`` | geometry_msgs/Pose |
| ``arms`` | ``ArmState``, ``RigState``, ``ArmTarget``, ``RigTarget`` | a2w_interfaces/msg/* |
| | ``ControlMode``, ``ARM_NAMES`` | fields of the above |
| | ``JointStates``, ``ArmsStatus`` | none yet (in-process host only) |
| ``cameras`` | ``CameraFrame``, ``CameraIntrinsics``, ``VIEW_NAMES`` / ``VIEW_IDS`` | sensor_msgs/Image, CameraInfo |
| | ``FrameMetadata``, ``DepthFrame`` | none yet (in-process host only) |
| | ``MultiViewObservation`` | not sent between nodes |
| ``policy`` | ``ActionChunk``, ``ACTION_DIM`` | a2w_interfaces/msg/ActionChunk |
| ``episode`` | ``EpisodeEvent``, ``EpisodeEventKind`` | a2w_interfaces/msg/EpisodeEvent |
| ``diagnostics`` | ``DiagnosticStatus``, ``DiagnosticLevel`` | diagnostic_msgs/DiagnosticArray |
| ``tf`` | ``FrameTransform``, ``FrameTransforms`` (frame ids: ``a2w.frames``) | tf2_msgs/TFMessage |
| | ``RobotDescription`` | std_msgs/String (``/robot_description``) |
| ``sim`` | ``ClockTick`` | rosgraph_msgs/Clock |
| | ``SimStatus``, ``FaultEvent``, ``TaskFacts`` | none yet (in-process host only) |
| ``services`` | ``SetControlModeRequest`` / ``Response``, ``RecoverRequest`` | a2w_interfaces/srv/* |
| | ``StartPolicyRequest``, ``StopRequest``, ``Outcome`` | a2w_interfaces/srv/* |

``a2w.ros.codec`` maps each mirrored type to its ROS message. All constructors validate their
inputs and raise ``ValueError`` naming the offending field (``a2w.msgs.checks``), so a malformed
message is rejected where it enters the system instead of moving an arm. Units are SI, stamps are
float seconds on the component's clock, quaternions are ROS/SciPy order (x, y, z, w)
(docs/architecture.md §5). Arrays are stored read-only so a consumer cannot mutate what another
consumer of the same message sees. Nothing here imports ROS or the rest of ``a2w``.
"""
