"""Parameters of the Flexiv driver, ``flexiv.<name>`` on the arm node (backend ``flexiv``).

The open questions of flexiv_facts.md §9 are explicit here: the robots' software version, how the
gripper is wired. They are checked when the driver is built (``check``, ``gripper_problem``), not
when the node's parameters are read: a node on another backend leaves them unset.
"""

from __future__ import annotations

from dataclasses import dataclass

from a2w.arms.flexiv.gripper import INTERFACES
from a2w.host.params import ParamGroup, param
from a2w.msgs.arms import ARM_NAMES

RATE_RANGE = (30.0, 100.0)  # Hz, NRT streaming (Flexiv's examples: 1-100 Hz, flexiv_facts.md §2.10)


@dataclass
class FlexivParams(ParamGroup):
    """Both arms' bring-up, streaming and gripper settings."""

    left_serial: str = param("", "left arm serial, e.g. Rizon4s-062000")
    right_serial: str = param("", "right arm serial")
    left_nics: list[str] = param([], "IPv4 of the local NIC wired to the left arm ([] = all)")
    right_nics: list[str] = param([], "IPv4 of the local NIC wired to the right arm ([] = all)")
    software_version: str = param("", "robot FSP version read in Elements, e.g. 3.11.2 (open question 1)")
    accept_unverified_pairing: bool = param(False, "run an RDK whose FSP pairing is not verified")
    rate: float = param(100.0, "NRT Cartesian streaming rate (Hz)", low=RATE_RANGE[0], high=RATE_RANGE[1])
    tool_name: str = param("", "Elements Tool entry of the 2F-85 to switch to ('' = keep)")
    gripper_interface: str = param(
        "unset", "how the 2F-85 is wired (open question 2): rdk_device | modbus_rtu | none", choices=INTERFACES)
    gripper_device: str = param("", "Elements Device name of the gripper (rdk_device)")
    gripper_velocity: float = param(0.1, "gripper finger speed (m/s)", low=1e-3, high=1.0)
    gripper_force: float = param(20.0, "gripper force limit (N)", low=0.1, high=300.0)
    cartesian_stiffness: list[float] = param([], "K_x (6) re-applied on mode entry ([] = nominal)")
    max_contact_wrench: list[float] = param([], "max contact wrench (6) ([] = robot default)")
    worker_python: str = param("", "interpreter of the RDK worker processes ('' = this one)")
    worker_pythonpath: list[str] = param([], "extra PYTHONPATH entries of the RDK worker processes")
    rdk_module: str = param("flexivrdk", "module providing the RDK API")
    hello_timeout: float = param(30.0, "wait for an RDK worker process to start (s)", low=1.0)
    enable_timeout: float = param(30.0, "wait for operational after Enable (s)", low=1.0)
    connect_timeout: float = param(60.0, "whole bring-up timeout per arm (s)", low=5.0)

    @property
    def serials(self) -> tuple[str, str]:
        return self.left_serial, self.right_serial

    @property
    def nics(self) -> tuple[list[str], list[str]]:
        return self.left_nics, self.right_nics

    def check(self) -> None:
        """``ValueError`` naming the parameter if these settings cannot drive two arms."""
        if not RATE_RANGE[0] <= self.rate <= RATE_RANGE[1]:
            raise ValueError(f"flexiv.rate: must be within {RATE_RANGE[0]:g}-{RATE_RANGE[1]:g} Hz, got {self.rate}")
        for name, sn in zip(ARM_NAMES, self.serials):
            if not sn:
                raise ValueError(f"flexiv.{name}_serial: the arm's serial number is required")
        if self.left_serial == self.right_serial:
            raise ValueError("flexiv.right_serial: both arms have the same serial number")
        for n in ("cartesian_stiffness", "max_contact_wrench"):
            v = getattr(self, n)
            if v and len(v) != 6:
                raise ValueError(f"flexiv.{n}: need 6 values or none, got {len(v)}")

    def gripper_problem(self) -> str:
        """Why these settings cannot drive the gripper ("" if they can, or if there is none)."""
        if self.gripper_interface not in INTERFACES:
            return f"flexiv.gripper_interface: {self.gripper_interface!r} is not one of {INTERFACES}"
        if self.gripper_interface == "unset":
            return ("flexiv.gripper_interface is unset: say how the rig's 2F-85 is wired "
                    "(flexiv_facts.md §9.2): 'rdk_device' (an Elements Device, give "
                    "flexiv.gripper_device), 'modbus_rtu' (host RS-485) or 'none'")
        if self.gripper_interface == "modbus_rtu":
            return ("flexiv.gripper_interface 'modbus_rtu' (direct Robotiq Modbus-RTU driver) is not "
                    "implemented yet; use 'rdk_device' or 'none'")
        if self.gripper_interface == "rdk_device" and not self.gripper_device:
            return "flexiv.gripper_device: the Elements Device name is required for 'rdk_device'"
        if not self.gripper_velocity > 0 or not self.gripper_force > 0:
            return "flexiv.gripper_velocity and flexiv.gripper_force must be positive"
        return ""
