"""The arm node's drivers: ``backend`` picks one, and its parameters are the group of its name
(``flexiv.left_serial``, ``sim.world_name``), read from nested parameter YAML and dotted launch
names, checked by the driver when it is built, with one set of defaults."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from a2w.arms.backend import RigBackend
from a2w.arms.component import DRIVERS, ArmNode, ArmNodeParams
from a2w.arms.flexiv.backend import FlexivRigBackend
from a2w.arms.flexiv.params import FlexivParams
from a2w.arms.sim.params import SimRigParams
from a2w.arms.supervisor import Motion
from a2w.geometry import xyz_rpy_to_matrix
from a2w.host import Host
from a2w.host.host import NodeSpec
from a2w.host.params import build_params, load_param_file, specs
from tests.arms.support import wait_for

GROUPS = {"flexiv": FlexivParams, "sim": SimRigParams}


def test_each_driver_declares_its_parameters_under_its_name() -> None:
    assert set(DRIVERS) == set(GROUPS)
    names = [s.name for s in specs(ArmNodeParams)]
    for driver, group in GROUPS.items():
        assert [n for n in names if n.startswith(driver + ".")] == [
            f"{driver}.{f.name}" for f in dataclasses.fields(group)]
    # Nothing driver-specific is left at the top level.
    assert not [n for n in names if n.startswith(("flexiv_", "sim_"))]
    defaults = ArmNodeParams()
    assert defaults.flexiv == FlexivParams() and defaults.sim == SimRigParams()


def test_old_flat_names_and_unknown_backends_are_refused_naming_them() -> None:
    for old in ("flexiv_left_serial", "flexiv_rate", "sim_world", "sim_command_rate", "flexiv.serials"):
        with pytest.raises(ValueError, match=f"unknown parameter.*{old}"):
            build_params(ArmNodeParams, {old: 1}, "/arm_node")
    for bad in ("package.module:factory", "ur5", ""):
        with pytest.raises(ValueError, match="'backend'"):
            build_params(ArmNodeParams, {"backend": bad}, "/arm_node")
    for name, value in (("flexiv.rate", 200.0), ("flexiv.gripper_interface", "usb"), ("sim.command_rate", 1.0),
                        ("sim.grip_force", 500.0), ("flexiv.left_serial", 5)):
        with pytest.raises(ValueError, match=f"node '/arm_node', parameter '{name}'"):
            build_params(ArmNodeParams, {name: value}, "/arm_node")


def test_nested_yaml_fills_the_chosen_drivers_group(tmp_path: Path) -> None:
    f = tmp_path / "arms.yaml"
    f.write_text("arm_node:\n  ros__parameters:\n    backend: flexiv\n    flexiv:\n"
                 "      left_serial: Rizon4s-062001\n      right_serial: Rizon4s-062002\n"
                 "      left_nics: [10.0.0.2]\n      rate: 50\n    sim:\n      world_name: other\n")
    p = build_params(ArmNodeParams, load_param_file(f, "/arm_node"), "/arm_node")
    assert p.flexiv.serials == ("Rizon4s-062001", "Rizon4s-062002")
    assert p.flexiv.nics == (["10.0.0.2"], []) and p.flexiv.rate == 50.0
    assert p.sim.world_name == "other" and p.sim.command_rate == SimRigParams().command_rate
    p.flexiv.check()


@pytest.mark.parametrize("params,name", [
    ({}, "flexiv.left_serial"),
    ({"flexiv.left_serial": "Rizon4s-1"}, "flexiv.right_serial"),
    ({"flexiv.left_serial": "Rizon4s-1", "flexiv.right_serial": "Rizon4s-1"}, "flexiv.right_serial"),
    ({"flexiv.left_serial": "A", "flexiv.right_serial": "B", "flexiv.cartesian_stiffness": [1.0] * 3},
     "flexiv.cartesian_stiffness"),
])
def test_the_chosen_driver_checks_its_group_when_the_node_is_built(params: dict, name: str) -> None:
    host = Host(diagnostics_period=0)
    try:
        with pytest.raises(ValueError, match=f"arm node: {name}"):
            host.add(NodeSpec(ArmNode, "arm_node", params={"backend": "flexiv", **params}))
    finally:
        host.shutdown()



def test_base_poses_come_from_a_backend_that_knows_them_and_from_the_parameters_otherwise() -> None:
    assert "base_pose" not in RigBackend.__abstractmethods__ and "hold" not in dir(RigBackend)
    flexiv = FlexivRigBackend(FlexivParams(left_serial="Rizon4s-1", right_serial="Rizon4s-2"))
    assert flexiv.base_pose(0) is None and flexiv.base_pose(1) is None
    # Real arms: the configured (calibrated) base poses. The gripper wiring is left unset, so the
    # node's connect worker is refused before any RDK call (no Robot outside a network namespace).
    left, right = [0.1, 0.6, 0.0, 0.0, 0.0, -0.5], [0.1, -0.6, 0.0, 0.0, 0.0, 0.5]
    host = Host(diagnostics_period=0)
    try:
        arm = host.add(NodeSpec(ArmNode, "arm_node", params={
            "backend": "flexiv", "flexiv.left_serial": "Rizon4s-1", "flexiv.right_serial": "Rizon4s-2",
            "left_base_pose": left, "right_base_pose": right}))
        for T, v in zip(arm.base_T, (left, right)):
            assert np.allclose(T, xyz_rpy_to_matrix(v[:3], v[3:]))
    finally:
        host.shutdown()


def test_a_backend_that_does_not_come_up_leaves_the_node_disconnected_saying_why() -> None:
    host = Host(diagnostics_period=0)
    try:
        # The gripper's wiring is left unset: the backend refuses to connect (before any RDK call).
        arm = host.add(NodeSpec(ArmNode, "arm_node", params={
            "backend": "flexiv", "flexiv.left_serial": "Rizon4s-1", "flexiv.right_serial": "Rizon4s-2"}))
        host.start()
        wait_for(lambda: arm.motion == Motion.DISCONNECTED, 10.0, "the failed connect")
        assert arm.message.startswith("connect failed: flexiv.gripper_interface is unset"), arm.message
    finally:
        host.shutdown()
