"""Flexiv backend plumbing (worker processes, slot, versions, faults, quaternion order) against a
stand-in robot (fake_flexivrdk, whose API the conformance tier checks against the real wheel)."""

from __future__ import annotations

import ast
import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

import a2w.arms.flexiv.worker as worker_mod
from a2w.arms.backend import ArmConnectionError, ArmFaultError, FaultKind, RecoveryRefused
from a2w.arms.flexiv.backend import FlexivRigBackend
from a2w.arms.flexiv.gripper import MoveTracker, open_to_width, width_to_open
from a2w.arms.flexiv.link import TargetSlot
from a2w.arms.flexiv.params import FlexivParams
from a2w.arms.flexiv.rdk_api import RDK_SYMBOLS, RdkBinding, check_rdk_line, fsp_for_rdk, versions_match
from a2w.msgs.arms import ArmTarget
from a2w.msgs.common import Pose

HERE = Path(__file__).parent


def _cfg(**kw) -> FlexivParams:
    base = dict(left_serial="Rizon4s-062001", right_serial="Rizon4s-062002", software_version="3.11.2",
                rdk_module="fake_flexivrdk", worker_pythonpath=[str(HERE)], tool_name="Robotiq-2F-85",
                gripper_interface="rdk_device", gripper_device="Robotiq-2F-85",
                cartesian_stiffness=[5000.0] * 3 + [500.0] * 3, hello_timeout=20.0)
    base.update(kw)
    return FlexivParams(**base)


@pytest.fixture
def fake_env(tmp_path, monkeypatch):
    log, ctl = tmp_path / "calls.log", tmp_path / "control.json"
    monkeypatch.setenv("FAKE_RDK_LOG", str(log))
    monkeypatch.setenv("FAKE_RDK_CONTROL", str(ctl))
    return log, ctl


@pytest.fixture
def backend(fake_env):
    b = FlexivRigBackend(_cfg())
    b.connect()
    yield b
    b.close()


def _wait(cond, timeout=15.0):  # generous: worker processes start slowly on a loaded 2-core CI box
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return False


def test_bringup_follows_the_documented_order(backend, fake_env) -> None:
    calls = [c for c in fake_env[0].read_text().splitlines() if not c.startswith("Robot.SendCartesian")]
    order = ["Robot.__init__", "Robot.info", "Robot.Enable", "Tool.__init__", "Tool.Switch Robotiq-2F-85",
             "Gripper.__init__", "Gripper.Enable Robotiq-2F-85",
             "Robot.SwitchMode NRT_CARTESIAN_MOTION_FORCE", "Robot.SetCartesianImpedance"]
    # Each arm runs the sequence in its own process; the two interleave, each stays ordered.
    idx = [calls.index(c) for c in order]
    assert idx == sorted(idx)
    assert calls.count("Robot.__init__") == 2
    sends = [c for c in fake_env[0].read_text().splitlines() if c.startswith("Robot.SendCartesian")]
    first_send = fake_env[0].read_text().splitlines().index(sends[0])
    assert first_send > fake_env[0].read_text().splitlines().index("Robot.SetCartesianImpedance")


def test_quaternion_order_is_converted_at_the_boundary(backend, fake_env) -> None:
    left, right = backend.read()
    # The stand-in reports [qw, qx, qy, qz] = [0, 0, 1, 0]: a 180 deg turn about y.
    assert np.allclose(np.abs(left.tcp_pose.quaternion), [0, 1, 0, 0])
    q = Rotation.from_euler("xyz", [0.3, -0.2, 0.5]).as_quat()  # x, y, z, w
    tgt = ArmTarget(Pose(left.tcp_pose.position, q), 0.5)
    backend.command((tgt, ArmTarget(right.tcp_pose, 1.0)))
    want = f"Robot.SendCartesianMotionForce {q[3]:.4f} {q[0]:.4f} {q[1]:.4f} {q[2]:.4f}"
    assert _wait(lambda: want in fake_env[0].read_text())
    assert _wait(lambda: np.allclose(backend.read()[0].tcp_pose.quaternion, q, atol=1e-4))
    # The gripper follows as a width within the device's range.
    assert _wait(lambda: abs(backend.read()[0].gripper_open - 0.5) < 0.02)
    assert "Gripper.Move 0.0425" in fake_env[0].read_text()


def test_fault_refuses_commands_with_the_robot_text_and_recovers(backend, fake_env) -> None:
    fake_env[1].write_text(json.dumps({"fault": "Joint 3 position limit exceeded", "fault_seq": 1}))
    # The control file faults both fake arms; wait for both, or a slow worker may see it only
    # after the recovery below and fault again.
    assert _wait(lambda: backend.fault(0) is not None and backend.fault(1) is not None)
    f = backend.fault(0)
    assert f.kind == FaultKind.JOINT_LIMIT and "Joint 3 position limit exceeded" in f.text
    left, right = backend.read()
    assert "Joint 3 position limit exceeded" in left.fault and not left.enabled
    with pytest.raises(ArmFaultError, match="Joint 3"):
        backend.command((ArmTarget(left.tcp_pose, 1.0), ArmTarget(right.tcp_pose, 1.0)))
    backend.clear_fault()
    assert backend.fault(0) is None and backend.fault(1) is None
    calls = fake_env[0].read_text().splitlines()
    tail = calls[calls.index("Robot.ClearFault"):]
    # Both arms' workers log to one file, so their calls interleave: check the order, not adjacency.
    seq = [c for c in tail if c in ("Robot.Enable", "Robot.SwitchMode NRT_CARTESIAN_MOTION_FORCE")]
    assert "Robot.Enable" in seq and "Robot.SwitchMode NRT_CARTESIAN_MOTION_FORCE" in seq, seq
    assert seq.index("Robot.Enable") < seq.index("Robot.SwitchMode NRT_CARTESIAN_MOTION_FORCE"), seq
    left, right = backend.read()
    backend.command((ArmTarget(left.tcp_pose, 1.0), ArmTarget(right.tcp_pose, 1.0)))


def test_estop_is_an_operator_fault_and_recovery_is_refused(backend, fake_env) -> None:
    fake_env[1].write_text(json.dumps({"estop": True}))
    assert _wait(lambda: backend.fault(1) is not None)
    assert backend.fault(1).kind == FaultKind.ESTOP and "release the e-stop" in backend.fault(1).text
    with pytest.raises(RecoveryRefused, match="e-stop"):
        backend.clear_fault()


def test_a_dead_worker_is_a_communication_fault_and_recovery_reconnects(backend) -> None:
    backend._workers[1].proc.kill()
    assert _wait(lambda: backend.fault(1) is not None)
    assert backend.fault(1).kind == FaultKind.COMMUNICATION and "exited" in backend.fault(1).text
    assert backend.fault(0) is None  # the other arm is untouched
    backend.clear_fault()
    assert backend.fault(1) is None and backend.read()[1].enabled


def test_stop_returns_at_once_and_the_next_command_restarts_streaming(backend, fake_env) -> None:
    backend.stop()  # returns without waiting for the worker (latency is measured in bench/arms.py)
    left, right = backend.read()
    assert _wait(lambda: fake_env[0].read_text().count("Robot.Stop") >= 2)
    n_switch = fake_env[0].read_text().count("SwitchMode")
    backend.command((ArmTarget(left.tcp_pose, 1.0), ArmTarget(right.tcp_pose, 1.0)))
    assert _wait(lambda: fake_env[0].read_text().count("SwitchMode") == n_switch + 2)


def test_close_is_idempotent_and_ends_the_workers(fake_env) -> None:
    b = FlexivRigBackend(_cfg())
    b.connect()
    procs = [w.proc for w in b._workers]
    b.close()
    b.close()
    assert all(p.poll() is not None for p in procs)
    assert "Gripper.Disable" in fake_env[0].read_text()
    with pytest.raises(ArmConnectionError):
        b.read()


def test_bad_serial_and_unreachable_robot_map_to_clear_errors(fake_env) -> None:
    with pytest.raises(ArmConnectionError, match="configuration error") as e:
        FlexivRigBackend(_cfg(left_serial="bogus")).connect()
    assert "bogus" in str(e.value) and "Format of the provided robot serial number" in str(e.value)
    with pytest.raises(ArmConnectionError, match="robot not found") as e:
        FlexivRigBackend(_cfg(right_serial="Rizon4s-999999")).connect()
    assert "right arm" in str(e.value) and "Rizon4s-999999" in str(e.value) and "flexivrdk 1.9.3" in str(e.value)


def test_gripper_wiring_must_be_configured(fake_env) -> None:
    with pytest.raises(ArmConnectionError, match="gripper_interface is unset"):
        FlexivRigBackend(_cfg(gripper_interface="unset")).connect()
    with pytest.raises(ArmConnectionError, match=r"flexiv\.gripper_device"):
        FlexivRigBackend(_cfg(gripper_device="")).connect()


def test_version_rules() -> None:
    assert "2.x line" in check_rdk_line("2.1.0")
    assert check_rdk_line("1.9.3") is None
    assert fsp_for_rdk("1.9.3") == "3.11.2" and fsp_for_rdk("1.8.1") == "3.10"
    assert fsp_for_rdk("1.9.4") is None  # pairing unverified (flexiv_facts.md §1.1)
    assert versions_match("3.11.2", "v3.11.2-build42") and not versions_match("3.11.2", "3.11.1")
    b = FlexivRigBackend(_cfg())
    with pytest.raises(ArmConnectionError, match="2.x line"):
        b._check_versions("2.1.0")
    with pytest.raises(ArmConnectionError, match="no verified FSP pairing"):
        b._check_versions("1.9.4")
    FlexivRigBackend(_cfg(accept_unverified_pairing=True))._check_versions("1.9.4")
    with pytest.raises(ArmConnectionError, match="is for FSP 3.10"):
        b._check_versions("1.8.1")
    with pytest.raises(ArmConnectionError, match=r"flexiv\.software_version is unset"):
        FlexivRigBackend(_cfg(software_version=""))._check_versions("1.9.3")
    with pytest.raises(ValueError, match=r"flexiv\.rate"):
        FlexivRigBackend(_cfg(rate=200.0))
    with pytest.raises(ValueError, match=r"flexiv\.left_serial"):
        FlexivRigBackend(_cfg(left_serial="", right_serial="Rizon4s-1"))


def test_worker_reaches_rdk_only_through_the_symbol_table() -> None:
    """Every name the worker passes to RdkBinding is in RDK_SYMBOLS (and vice versa mostly)."""
    src = Path(worker_mod.__file__).read_text()
    used = set()
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in (
                "call", "field", "enum", "new"):
            args = [a for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            if args:
                name = args[0].value
                used.add(f"{name}.__init__" if node.func.attr == "new" else name)
    used |= {f"GripperParams.{k}" for k in ("min_width", "max_width", "min_vel", "max_vel", "min_force", "max_force")}
    unknown = sorted(u for u in used if u not in RDK_SYMBOLS)
    assert not unknown, f"worker uses RDK names missing from the table: {unknown}"
    assert "Robot.SendCartesianMotionForce" in used and "Robot.__init__" in used
    with pytest.raises(KeyError, match="not in"):
        RdkBinding(object()).call(object(), "Robot.RunAutoRecovery")


def test_target_slot_latest_wins(tmp_path) -> None:
    w = TargetSlot(str(tmp_path / "slot"), create=True)
    r = TargetSlot(str(tmp_path / "slot"))
    assert r.read() is None
    for k in range(5):
        w.write(float(k), (k, 0, 0, 1, 0, 0, 0), 0.04, (0.5, 1.0, 2.0, 5.0))
    t = r.read()
    assert t.seq == 5 and t.stamp == 4.0 and t.pose[0] == 4 and t.limits == (0.5, 1.0, 2.0, 5.0)


def test_gripper_mapping_and_completion_rule() -> None:
    assert open_to_width(1.0, 0.0, 0.085) == pytest.approx(0.085)
    assert open_to_width(2.0, 0.0, 0.085) == pytest.approx(0.085)
    assert width_to_open(0.0425, 0.0, 0.085) == pytest.approx(0.5)
    tr = MoveTracker(0.02, started=0.0)
    assert tr.update(0.05, True, 0.1) == ""
    assert tr.update(0.03, True, 0.2) == ""
    assert tr.update(0.0301, True, 0.75) == "stalled"  # steady 0.5 s short of the target: a grasp
    tr = MoveTracker(0.02, started=0.0)
    assert tr.update(0.0205, False, 0.3) == "reached"
    tr = MoveTracker(0.02, started=0.0, timeout=1.0)
    widths = iter(np.linspace(0.08, 0.05, 30))
    assert [tr.update(next(widths), True, 0.05 * k) for k in range(1, 25)][-1] == "timeout"
    assert re.search("modbus", _cfg(gripper_interface="modbus_rtu").gripper_problem())
