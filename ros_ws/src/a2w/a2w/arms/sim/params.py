"""Parameters of the simulated arms, ``sim.<name>`` on the arm node (backend ``sim``)."""

from __future__ import annotations

from dataclasses import dataclass

from a2w.host.params import ParamGroup, param


@dataclass
class SimRigParams(ParamGroup):
    """Tunables of the simulated arms (SI units), and the world the arm node attaches to."""

    world_name: str = param("sim", "world_name of the sim node whose arms these are (same process)")
    command_rate: float = param(100.0, "rate at which the arm node streams targets (Hz)", low=10.0, high=1000.0)
    control_decimation: int = param(4, "IK and fault checks every N physics steps (4: 150 Hz)", low=1)
    max_linear_speed: float = param(0.5, "TCP speed cap of the reference (m/s; RDK NRT default)", low=1e-3)
    max_angular_speed: float = param(1.5, "TCP angular speed cap of the reference (rad/s)", low=1e-3)
    velocity_scale: float = param(1.0, "fraction of Flexiv's joint velocity limits", low=1e-3, high=1.0)
    force_limit: float = param(150.0, "force at the TCP (N) before an excessive_force fault", low=1.0)
    grip_force: float = param(60.0, "squeeze force per finger (N; the 2F-85's range)", low=20.0, high=235.0)
    gripper_speed: float = param(0.15, "opening change (m/s; 2F-85: 0.02-0.15)", low=1e-3)

    def __post_init__(self) -> None:
        # Built directly (tests, the sim node's own rig) these values skip the parameter checks.
        for name in ("command_rate", "max_linear_speed", "max_angular_speed", "velocity_scale",
                     "force_limit", "grip_force", "gripper_speed"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: must be positive, got {getattr(self, name)!r}")
        if self.control_decimation < 1:
            raise ValueError(f"control_decimation: must be >= 1, got {self.control_decimation}")
        if not 20.0 <= self.grip_force <= 235.0:
            raise ValueError(f"grip_force: must be in [20, 235] N (2F-85), got {self.grip_force}")
