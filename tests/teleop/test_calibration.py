"""teleop_node takes the rig's base poses and VR alignment yaw from the calibration folder, like the arm
node and robot_state_node (one source of extrinsics); a parameter that disagrees with it is refused."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from a2w.calib.files import CalibrationError, Transform, load_calibration, write_bases, write_vr
from a2w.calib.truth import write_sim_truth
from a2w.geometry import xyz_rpy_to_matrix
from a2w.host import Host
from a2w.host.host import NodeSpec
from a2w.rig.extrinsics import matrix_pose6
from a2w.teleop.component import TeleopNode


def _teleop(**params: object) -> TeleopNode:
    host = Host(diagnostics_period=0)
    try:
        return host.add(NodeSpec(TeleopNode, "teleop_node", params={"port": 0, "qr": False, **params}))
    finally:
        host.shutdown()


@pytest.fixture
def rig(tmp_path: Path) -> Path:
    """The sim truth with the bases moved and the operator facing 30 deg."""
    folder = tmp_path / "rig"
    write_sim_truth(folder)
    cal = load_calibration(folder)
    shift = xyz_rpy_to_matrix((0.02, -0.01, 0.0), (0.0, 0.0, 0.05))
    write_bases(folder, "sim", {a: Transform.from_matrix(shift @ cal.bases[a].matrix()) for a in ("left", "right")},
                "test: moved")
    write_vr(folder, "sim", 30.0, "test: turned")
    return folder


def test_bases_and_yaw_come_from_the_calibration(rig: Path) -> None:
    cal = load_calibration(rig)
    node = _teleop(calibration=str(rig))
    for arm, channel in zip(("left", "right"), node.session.arms):
        assert np.allclose(channel.base, cal.bases[arm].matrix(), atol=1e-9)
    assert node.session.alignment.yaw == pytest.approx(math.radians(30.0))
    # a parameter equal to the calibration is accepted as given
    same = _teleop(calibration=str(rig), yaw=30.0, left_base_pose=matrix_pose6(cal.bases["left"].matrix()))
    assert np.allclose(same.session.arms[0].base, cal.bases["left"].matrix(), atol=1e-6)


@pytest.mark.parametrize("params, words", [
    ({"yaw": 10.0}, "yaw 10.0 conflicts with"),
    ({"left_base_pose": [0.0, 0.5, 0.0, 0.0, 0.0, 0.0]}, "left_base_pose"),
])
def test_a_parameter_that_disagrees_with_the_calibration_is_refused(rig: Path, params: dict, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        _teleop(calibration=str(rig), **params)


def test_a_missing_or_malformed_calibration_is_an_error_naming_it(rig: Path, tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match="vr.yaml"):
        (rig / "vr.yaml").write_text("schema: a2w-calibration/1\nkind: vr\n")
        _teleop(calibration=str(rig))
    with pytest.raises(CalibrationError):
        _teleop(calibration=str(tmp_path / "nowhere"))
