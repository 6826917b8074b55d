"""Contract checks every camera source and rig backend must pass.

Drivers' test files call these with a factory for their own implementation (sim, RealSense
software device, playback, Flexiv...). Each check asserts behaviour the rest of the stack relies
on; see a2w.cameras.source and a2w.arms.backend for the contracts in words.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pytest

from a2w.arms.backend import ArmError, RigBackend
from a2w.cameras.source import CameraSource, CameraStateError, CameraTimeout, Capture
from a2w.geometry import rotation_angle
from a2w.msgs.arms import ArmState, ArmTarget
from a2w.msgs.cameras import CameraFrame
from a2w.msgs.common import Pose


def check_camera_source(make: Callable[[], CameraSource], frames: int = 5, timeout: float = 5.0) -> None:
    """``make()`` returns an unopened source that delivers frames once started."""
    src = make()
    cfg = src.config
    # What the camera node reports per camera is on every source, with defaults (no probing).
    assert isinstance(src.serial, str) and src.restarts == 0 and src.fault == ""
    with pytest.raises(CameraStateError):
        src.latest()
    src.open()
    intr = src.intrinsics
    assert (intr.width, intr.height) == (cfg.width, cfg.height)
    assert src.latest() is None or isinstance(src.latest(), CameraFrame)
    src.start()
    try:
        got: list[CameraFrame] = [src.wait_frame(timeout) for _ in range(frames)]
        for f in got:
            assert f.view == cfg.view
            assert f.image.dtype == np.uint8 and f.image.shape == (cfg.height, cfg.width, 3)
            assert f.intrinsics == intr
        stamps = [f.stamp for f in got]
        numbers = [f.frame_number for f in got]
        assert all(b > a for a, b in zip(stamps, stamps[1:])), f"stamps not increasing: {stamps}"
        assert all(b > a for a, b in zip(numbers, numbers[1:])), f"frame numbers not increasing: {numbers}"
        latest = src.latest()
        assert latest is not None and latest.stamp >= got[-1].stamp
        # wait_capture: a newer frame, with the device's metadata where the driver has it.
        cap = src.wait_capture(timeout)
        assert isinstance(cap, Capture) and cap.frame.stamp > got[-1].stamp and cap.frame.view == cfg.view
        assert cap.meta is None or (cap.meta.frame_number, cap.meta.stamp) == (cap.frame.frame_number, cap.frame.stamp)
        assert src.fault == "" and src.restarts == 0 and isinstance(src.serial, str)
    finally:
        src.close()
    src.close()  # idempotent
    with pytest.raises((CameraStateError, CameraTimeout)):
        src.wait_frame(0.2)


def _shifted(state: ArmState, dx: float) -> ArmTarget:
    pos = np.array(state.tcp_pose.position) + np.array([dx, 0.0, 0.0])
    return ArmTarget(Pose(pos, state.tcp_pose.quaternion), state.gripper_open)


def check_rig_backend(
    make: Callable[[], RigBackend],
    advance: Callable[[RigBackend, float], None],
    *,
    move: float = 0.01,
    tolerance: float = 0.003,
    settle: float = 1.0,
) -> None:
    """``make()`` returns an unconnected backend; ``advance(backend, dt)`` lets ``dt`` seconds of
    backend time pass (step a simulator, or sleep for a real-time backend)."""
    backend = make()
    with pytest.raises(ArmError):
        backend.read()
    backend.connect()
    try:
        assert backend.command_rate > 0
        left, right = backend.read()
        for st in (left, right):
            assert isinstance(st, ArmState)
            assert abs(np.linalg.norm(st.tcp_pose.quaternion) - 1.0) < 1e-6
            assert len(st.joint_positions) == len(backend.joint_names[0])
        assert backend.fault(0) is None and backend.fault(1) is None

        # Streaming a small Cartesian step reaches it within tolerance, orientation kept.
        targets = (_shifted(left, move), _shifted(right, -move))
        dt = 1.0 / backend.command_rate
        for _ in range(int(settle / dt)):
            backend.command(targets)
            advance(backend, dt)
        new = backend.read()
        for st, tgt in zip(new, targets):
            err = np.linalg.norm(np.array(st.tcp_pose.position) - tgt.tcp_pose.position)
            assert err < tolerance, f"target not reached: error {err:.4f} m"
            assert rotation_angle(st.tcp_pose.quaternion, tgt.tcp_pose.quaternion) < 0.02

        # Streaming the measured poses keeps them (how the arm node holds the arms at rest).
        before = backend.read()
        for _ in range(int(0.5 / dt)):
            backend.command(tuple(ArmTarget(st.tcp_pose, st.gripper_open) for st in before))
            advance(backend, dt)
        after = backend.read()
        for a, b in zip(before, after):
            assert np.linalg.norm(np.array(a.tcp_pose.position) - b.tcp_pose.position) < tolerance

        backend.stop()
    finally:
        backend.close()
    backend.close()  # idempotent
