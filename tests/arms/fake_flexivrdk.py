"""A stand-in robot behind the RDK's Python API, for testing the worker/backend plumbing here.

Not a mock of ``flexivrdk`` (which cannot reach a robot on this machine anyway): it is a tiny
kinematic robot exposing the same names and argument lists as the symbols the backend uses, and
the conformance tier (tests/arms/test_flexiv_conformance.py) checks those against the real wheel,
so this double cannot drift from the library either. Behaviour follows flexiv_facts.md §1.2
(serial checks, "Failed to connect"), §2.2-§2.5 and §3.1.

Test hooks (environment of the worker process): ``FAKE_RDK_CONTROL`` names a JSON file polled for
``{"fault": "<text>"}`` / ``{"estop": true}``; ``FAKE_RDK_LOG`` names a file that receives one line
per RDK call, in order.
"""

from __future__ import annotations

import enum
import json
import math
import os
import re
import time

__version__ = "1.9.3"

_SN = re.compile(r"^([A-Za-z0-9]+)-(\d+)$")
_MODELS = ("Rizon4", "Rizon4s", "Rizon10", "Rizon10s", "Rizon4R", "Moonlight")


def _log(name: str) -> None:
    path = os.environ.get("FAKE_RDK_LOG")
    if path:
        with open(path, "a") as f:
            f.write(name + "\n")


def _control() -> dict:
    path = os.environ.get("FAKE_RDK_CONTROL")
    if not path or not os.path.exists(path):
        return {}
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


class Mode(enum.Enum):
    UNKNOWN = 0
    IDLE = 1
    NRT_JOINT_IMPEDANCE = 4
    NRT_JOINT_POSITION = 6
    NRT_PLAN_EXECUTION = 7
    NRT_PRIMITIVE_EXECUTION = 8
    NRT_CARTESIAN_MOTION_FORCE = 10
    NRT_SUPER_PRIMITIVE = 11


class OperationalStatus(enum.Enum):
    UNKNOWN = 0
    READY = 1
    BOOTING = 2
    ESTOP_NOT_RELEASED = 3
    NOT_ENABLED = 4
    RELEASING_BRAKE = 5
    MINOR_FAULT = 6
    CRITICAL_FAULT = 7
    IN_REDUCED_STATE = 8
    IN_RECOVERY_STATE = 9
    IN_MANUAL_MODE = 10
    IN_AUTO_MODE = 11


class RobotInfo:
    def __init__(self) -> None:
        self.serial_num = ""
        self.software_ver = "v3.11.2"
        self.model_name = "Rizon4s"
        self.DoF = 7
        self.has_FT_sensor = False
        self.K_x_nom = [10000.0] * 3 + [1000.0] * 3


class RobotStates:
    def __init__(self) -> None:
        self.tcp_pose = [0.6, -0.1, 0.3, 0.0, 0.0, 1.0, 0.0]  # tool pointing down, [qw, qx, qy, qz]
        self.q = [0.0, -0.7, 0.0, 1.57, 0.0, 0.7, 0.0]
        self.dtheta = [0.0] * 7
        self.ext_wrench_in_world = [0.0] * 6
        self.tcp_vel = [0.0] * 6
        self.timestamp = (0, 0)


class RobotEvent:
    class Level(enum.Enum):
        UNKNOWN = 0
        INFO = 1
        WARNING = 2
        ERROR = 3
        CRITICAL = 4

    def __init__(self) -> None:
        self.level = RobotEvent.Level.ERROR
        self.description = ""
        self.recommended_actions = ""


class Robot:
    # The RDK's own signature, mutable default included.
    def __init__(self, robot_sn: str, network_interface_whitelist: list = [],  # noqa: B006
                 verbose: bool = True, lite: bool = False) -> None:
        _log("Robot.__init__")
        m = _SN.match(robot_sn.replace(" ", ""))
        if m is None:
            raise ValueError(f"[flexiv::rdk::Robot] Format of the provided robot serial number [{robot_sn}] is invalid")
        if m.group(1) not in _MODELS:
            raise RuntimeError(f"[flexiv::rdk::Robot] Robot model [{m.group(1)}] is not supported")
        if m.group(2).startswith("999"):
            time.sleep(0.2)
            raise RuntimeError(f"[flexiv::rdk::Robot] Failed to connect to [{robot_sn}]. Please check that: "
                               "a) Remote mode (Ethernet) is enabled on the target robot; ...")
        self._info = RobotInfo()
        self._info.serial_num = robot_sn
        self._st = RobotStates()
        self._target = list(self._st.tcp_pose)
        self._vmax = 0.5
        self._enabled = False
        self._mode = Mode.IDLE
        self._fault_text = ""
        self._t = time.monotonic()

    # status
    def _poll(self) -> None:
        c = _control()
        if c.get("fault") and not self._fault_text and c.get("fault_seq", 0) != getattr(self, "_cleared_seq", -1):
            self._fault_text = c["fault"]
            self._fault_seq = c.get("fault_seq", 0)
            self._mode = Mode.IDLE
        self._estop = bool(c.get("estop"))

    def connected(self) -> bool:
        return True

    def info(self) -> RobotInfo:
        _log("Robot.info")
        return self._info

    def operational_status(self) -> OperationalStatus:
        self._poll()
        if self._estop:
            return OperationalStatus.ESTOP_NOT_RELEASED
        if self._fault_text:
            return OperationalStatus.MINOR_FAULT
        return OperationalStatus.READY if self._enabled else OperationalStatus.NOT_ENABLED

    def operational(self) -> bool:
        return self.operational_status() == OperationalStatus.READY

    def fault(self) -> bool:
        self._poll()
        return bool(self._fault_text)

    def estop_released(self) -> bool:
        self._poll()
        return not self._estop

    def mode(self) -> Mode:
        return self._mode

    def event_log(self) -> list:
        if not self._fault_text:
            return []
        ev = RobotEvent()
        ev.description = self._fault_text
        ev.recommended_actions = "Clear the fault"
        return [ev]

    def states(self) -> RobotStates:
        now = time.monotonic()
        dt, self._t = now - self._t, now
        if self._mode == Mode.NRT_CARTESIAN_MOTION_FORCE and not self._fault_text:
            p, t = self._st.tcp_pose, self._target
            d = [t[i] - p[i] for i in range(3)]
            n = math.sqrt(sum(x * x for x in d))
            step = min(n, self._vmax * dt)
            pos = [p[i] + d[i] / n * step for i in range(3)] if n > 0 else list(p[:3])
            self._st.tcp_pose = pos + list(t[3:7])
        return self._st

    # commands
    def ClearFault(self, timeout_sec: int = 30) -> bool:
        _log("Robot.ClearFault")
        self._cleared_seq = getattr(self, "_fault_seq", 0)
        self._fault_text = ""
        return True

    def Enable(self) -> None:
        _log("Robot.Enable")
        if self._estop:
            raise RuntimeError("[flexiv::rdk::Robot::Enable] E-stop is not released")
        self._enabled = True

    def Stop(self) -> None:
        _log("Robot.Stop")
        self._mode = Mode.IDLE

    def SwitchMode(self, mode: Mode) -> None:
        _log(f"Robot.SwitchMode {mode.name}")
        if not self.operational():
            raise RuntimeError("[flexiv::rdk::Robot::SwitchMode] Robot is not operational")
        self._mode = mode
        self._target = list(self._st.tcp_pose)

    def SendCartesianMotionForce(self, pose: list, wrench: list = [0.0] * 6, velocity: list = [0.0] * 6,  # noqa: B006
                                 max_linear_vel: float = 0.5, max_angular_vel: float = 1.0,
                                 max_linear_acc: float = 2.0, max_angular_acc: float = 5.0) -> None:
        if self._mode != Mode.NRT_CARTESIAN_MOTION_FORCE:
            raise RuntimeError("[flexiv::rdk::Robot::SendCartesianMotionForce] Robot is not in an applicable "
                               "control mode")
        if len(pose) != 7:
            raise TypeError("incompatible function arguments")
        if min(max_linear_vel, max_angular_vel, max_linear_acc, max_angular_acc) <= 0:
            raise ValueError("limits must be > 0")
        with open(os.environ["FAKE_RDK_LOG"], "a") if os.environ.get("FAKE_RDK_LOG") else _Null() as f:
            f.write(f"Robot.SendCartesianMotionForce {pose[3]:.4f} {pose[4]:.4f} {pose[5]:.4f} {pose[6]:.4f}\n")
        self._target = list(pose)
        self._vmax = max_linear_vel

    def SetCartesianImpedance(self, K_x: list, Z_x: list = [0.7] * 6) -> None:  # noqa: B006
        _log("Robot.SetCartesianImpedance")

    def SetMaxContactWrench(self, max_wrench: list) -> None:
        _log("Robot.SetMaxContactWrench")


class _Null:
    def __enter__(self) -> "_Null":
        return self

    def __exit__(self, *a: object) -> None:
        pass

    def write(self, _: str) -> None:
        pass


class Tool:
    def __init__(self, robot: Robot) -> None:
        _log("Tool.__init__")

    def exist(self, name: str) -> bool:
        return name == "Robotiq-2F-85"

    def Switch(self, name: str) -> None:
        _log(f"Tool.Switch {name}")


class GripperParams:
    def __init__(self) -> None:
        self.name = "Robotiq-2F-85"
        self.min_width, self.max_width = 0.0, 0.085
        self.min_vel, self.max_vel = 0.02, 0.15
        self.min_force, self.max_force = 20.0, 235.0


class GripperStates:
    def __init__(self) -> None:
        self.width = 0.085
        self.force = 0.0
        self.is_moving = False


class Gripper:
    def __init__(self, robot: Robot) -> None:
        _log("Gripper.__init__")
        self._s = GripperStates()
        self._target = 0.085

    def Enable(self, name: str) -> None:
        _log(f"Gripper.Enable {name}")

    def Disable(self) -> None:
        _log("Gripper.Disable")

    def Init(self) -> None:
        _log("Gripper.Init")

    def Move(self, width: float, velocity: float, force_limit: float) -> None:
        p = GripperParams()
        if not (p.min_width <= width <= p.max_width and p.min_vel <= velocity <= p.max_vel):
            raise ValueError("[flexiv::rdk::Gripper::Move] input out of range")
        _log(f"Gripper.Move {width:.4f}")
        self._target = width
        self._s.width = width  # instant fingers: enough for plumbing tests

    def Stop(self) -> None:
        _log("Gripper.Stop")

    def params(self) -> GripperParams:
        return GripperParams()

    def states(self) -> GripperStates:
        return self._s
