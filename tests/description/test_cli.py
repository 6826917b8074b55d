"""`a2w describe`: the URDF it writes is the node's, options shape it, bad ones exit 2 saying why,
and `check` prints the agreement errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from a2w import frames
from a2w.cli import main
from a2w.description.tree import parse_urdf
from a2w.description.urdf import RigSpec, build_urdf


def test_urdf_to_a_file_is_the_default_description(tmp_path: Path) -> None:
    out = tmp_path / "rig.urdf"
    assert main(["describe", "urdf", "--out", str(out)]) == 0
    assert out.read_text() == build_urdf()


def test_urdf_options_shape_the_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["describe", "urdf", "--arms", "left", "--views", "left_wrist", "--no-optical-frames",
                 "--left-base", "0", "0.5", "0", "0", "0", "1.0", "--tcp-offset", "0.2"]) == 0
    text = capsys.readouterr().out
    assert text == build_urdf(RigSpec(arms=("left",), bases={"left": (0, 0.5, 0, 0, 0, 1.0)}, views=("left_wrist",),
                                      optical_frames=False, tcp_offset=0.2))
    tree = parse_urdf(text)
    assert frames.base_frame("right") not in tree.links and frames.optical_frame("left_wrist") not in tree.links


@pytest.mark.parametrize("argv, why", [
    (["--arms", "left"], "right arm"),
    (["--tcp-offset", "-1"], "tcp_offset"),
    (["--left-base", "0", "0", "nan", "0", "0", "0"], "left base pose"),
])
def test_bad_options_exit_2_saying_why(argv: list[str], why: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["describe", "urdf", *argv]) == 2
    captured = capsys.readouterr()
    assert why in captured.err and captured.out == ""


def test_check_prints_errors_below_a_nanometre(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["describe", "check", "--samples", "20"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split(":")[0] for ln in lines] == ["flange_tcp_vs_kinematics", "optical_vs_mujoco_cameras"]
    for ln in lines:
        pos = float(ln.split("position error ")[1].split(" m")[0])
        ang = float(ln.split("angle error ")[1].split(" rad")[0])
        assert pos < 1e-9 and ang < 1e-9, ln
