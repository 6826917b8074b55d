"""The Flexiv RDK surface this project uses, as data (one table).

The worker process reaches RDK only through ``RdkBinding``, which refuses any name not listed here,
and the SDK conformance test checks every entry against the installed ``flexivrdk`` (class exists,
method argument names and order, enum members, fields). The backend and the test read the same
table, so they cannot drift. Stdlib only: the worker imports this module in the RDK venv.

Names and signatures are those of the 1.9.x Python API (flexiv_facts.md §2, reference 1.9.4;
re-checked against the pinned wheel by tests/arms/test_flexiv_conformance.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

PINNED_VERSION = "1.9.3"  # requirements/flexiv.txt; flexiv_facts.md §1.1 (1.9.3 <-> FSP 3.11.2)

# RDK release -> Flexiv software package (FSP) it was released for (flexiv_facts.md §0.2, §1.1).
# Keys are distribution versions; the longest matching prefix wins.
RDK_FSP_PAIRS: dict[str, str] = {
    "1.7": "3.9",
    "1.8": "3.10",
    "1.9.0": "3.11",
    "1.9.1": "3.11.1",
    "1.9.3": "3.11.2",
}


@dataclass(frozen=True)
class Symbol:
    """One RDK name. ``kind``: class | method | enum | field | attr. ``params``: the method's
    argument names after ``self`` in order (checked by the conformance tier), None otherwise."""

    kind: str
    params: tuple[str, ...] | None = None


def _m(*params: str) -> Symbol:
    return Symbol("method", tuple(params))


_CLASS = Symbol("class")
_FIELD = Symbol("field")
_ENUM = Symbol("enum")

RDK_SYMBOLS: dict[str, Symbol] = {
    "__version__": Symbol("attr"),
    # -- Robot: connection, status, bring-up, streaming (flexiv_facts.md §2.1-§2.5, §8)
    "Robot": _CLASS,
    "Robot.__init__": _m("robot_sn", "network_interface_whitelist", "verbose", "lite"),
    "Robot.connected": _m(),
    "Robot.info": _m(),
    "Robot.operational": _m(),
    "Robot.operational_status": _m(),
    "Robot.fault": _m(),
    "Robot.estop_released": _m(),
    "Robot.mode": _m(),
    "Robot.states": _m(),
    "Robot.event_log": _m(),
    "Robot.ClearFault": _m("timeout_sec"),
    "Robot.Enable": _m(),
    "Robot.Stop": _m(),
    "Robot.SwitchMode": _m("mode"),
    "Robot.SendCartesianMotionForce": _m(
        "pose", "wrench", "velocity", "max_linear_vel", "max_angular_vel", "max_linear_acc",
        "max_angular_acc"),
    "Robot.SetCartesianImpedance": _m("K_x", "Z_x"),
    "Robot.SetMaxContactWrench": _m("max_wrench"),
    "Mode": _CLASS,
    "Mode.IDLE": _ENUM,
    "Mode.NRT_CARTESIAN_MOTION_FORCE": _ENUM,
    "OperationalStatus": _CLASS,
    **{f"OperationalStatus.{m}": _ENUM for m in (
        "UNKNOWN", "READY", "BOOTING", "ESTOP_NOT_RELEASED", "NOT_ENABLED", "RELEASING_BRAKE",
        "MINOR_FAULT", "CRITICAL_FAULT", "IN_REDUCED_STATE", "IN_RECOVERY_STATE",
        "IN_MANUAL_MODE", "IN_AUTO_MODE")},
    "RobotInfo": _CLASS,
    **{f"RobotInfo.{f}": _FIELD for f in (
        "serial_num", "software_ver", "model_name", "DoF", "has_FT_sensor", "K_x_nom")},
    "RobotStates": _CLASS,
    **{f"RobotStates.{f}": _FIELD for f in (
        "tcp_pose", "q", "dtheta", "ext_wrench_in_world", "tcp_vel", "timestamp")},
    "RobotEvent": _CLASS,
    **{f"RobotEvent.{f}": _FIELD for f in ("level", "description", "recommended_actions")},
    # -- Tool: select the 2F-85 entry so payload and TCP are right (§3.3)
    "Tool": _CLASS,
    "Tool.__init__": _m("robot"),
    "Tool.exist": _m("name"),
    "Tool.Switch": _m("name"),
    # -- Gripper through the robot (path A, §3.1)
    "Gripper": _CLASS,
    "Gripper.__init__": _m("robot"),
    "Gripper.Enable": _m("name"),
    "Gripper.Disable": _m(),
    "Gripper.Init": _m(),
    "Gripper.Move": _m("width", "velocity", "force_limit"),
    "Gripper.Stop": _m(),
    "Gripper.params": _m(),
    "Gripper.states": _m(),
    "GripperParams": _CLASS,
    **{f"GripperParams.{f}": _FIELD for f in (
        "min_width", "max_width", "min_vel", "max_vel", "min_force", "max_force")},
    "GripperStates": _CLASS,
    **{f"GripperStates.{f}": _FIELD for f in ("width", "force", "is_moving")},
}

# The operational states that need a person at the robot; software recovery is refused
# (flexiv_facts.md §5.2 recovery policies, §8 step 4/14).
OPERATOR_STATES = frozenset({"IN_REDUCED_STATE", "IN_RECOVERY_STATE", "IN_MANUAL_MODE", "IN_AUTO_MODE"})
ESTOP_STATES = frozenset({"ESTOP_NOT_RELEASED"})
OPERATOR_ACTIONS: dict[str, str] = {
    "ESTOP_NOT_RELEASED": "release the e-stop, then call recover",
    "IN_REDUCED_STATE": "the robot is in reduced state (safety input or safety plane); clear it at the robot",
    "IN_RECOVERY_STATE": "a joint left its range; run auto recovery in Elements and reboot the robot",
    "IN_MANUAL_MODE": "switch the robot to Auto (Remote) mode",
    "IN_AUTO_MODE": "switch the robot from plain Auto to Auto (Remote) mode",
}


class RdkBinding:
    """Access to an RDK module restricted to ``RDK_SYMBOLS``."""

    def __init__(self, module: Any) -> None:
        self.module = module

    @staticmethod
    def _check(name: str, kind: str) -> None:
        sym = RDK_SYMBOLS.get(name)
        if sym is None or sym.kind != kind:
            raise KeyError(f"RDK symbol {name!r} ({kind}) is not in a2w.arms.flexiv.rdk_api.RDK_SYMBOLS")

    def new(self, cls: str, *args: Any, **kwargs: Any) -> Any:
        self._check(f"{cls}.__init__", "method")
        return getattr(self.module, cls)(*args, **kwargs)

    def call(self, obj: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        """``name`` is ``Class.method``; keyword arguments are checked by the conformance tier."""
        self._check(name, "method")
        return getattr(obj, name.split(".", 1)[1])(*args, **kwargs)

    def field(self, obj: Any, name: str) -> Any:
        self._check(name, "field")
        return getattr(obj, name.split(".", 1)[1])

    def enum(self, name: str) -> Any:
        self._check(name, "enum")
        cls, member = name.split(".", 1)
        return getattr(getattr(self.module, cls), member)

    def enum_name(self, cls: str, value: Any) -> str:
        """Member name of an enum value of ``cls`` (pybind11 enums have ``.name``)."""
        self._check(cls, "class")
        return str(getattr(value, "name", value))


def parse_version(text: str) -> tuple[int, ...]:
    """'1.9.4.1' -> (1, 9, 4, 1); ValueError for text without a dotted number."""
    m = re.search(r"\d+(?:\.\d+)+", str(text))
    if m is None:
        raise ValueError(f"version: no dotted version number in {text!r}")
    return tuple(int(p) for p in m.group(0).split("."))


def fsp_for_rdk(rdk_version: str) -> str | None:
    """FSP version an RDK release was made for, or None when no verified pairing is known."""
    v = parse_version(rdk_version)
    best: tuple[int, str] | None = None
    for key, fsp in RDK_FSP_PAIRS.items():
        k = parse_version(key + ".0") if key.count(".") == 0 else parse_version(key)
        if v[: len(k)] == k and (best is None or len(k) > best[0]):
            best = (len(k), fsp)
    return None if best is None else best[1]


def check_rdk_line(rdk_version: str) -> str | None:
    """Reason to refuse ``rdk_version`` for a Rizon, or None if it is the 1.x line that drives
    Rizon (flexiv_facts.md §0.1, §1.1)."""
    v = parse_version(rdk_version)
    if v[0] >= 2:
        return (f"flexivrdk {rdk_version} is the 2.x line; 2.1 refuses Rizon outright and 2.0's "
                f"Rizon support is unverified. Rizon 4S needs the 1.x line: install "
                f"requirements/flexiv.txt (flexivrdk=={PINNED_VERSION})")
    if v < (1, 6):
        return f"flexivrdk {rdk_version} predates the 1.6 Python API this driver is written for"
    return None


def versions_match(fsp_expected: str, software_ver: str) -> bool:
    """True when the robot's reported software version starts with the expected FSP version
    (the robot may report extra fields, e.g. a build suffix)."""
    try:
        want = parse_version(fsp_expected if "." in fsp_expected else fsp_expected + ".0")
        got = parse_version(software_ver)
    except ValueError:
        return False
    return got[: len(want)] == want
