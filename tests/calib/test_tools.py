"""The calibration tools recover the sim rig's known transforms from rendered images, within
2 mm / 0.2° (intrinsics: the MuJoCo pinhole's focal length within 1 %), through the same solver
path a recorded capture folder takes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from a2w.calib import solvers, truth
from a2w.calib.board import DEFAULT_BOARD_FILE, load_board
from a2w.calib.capture import Capture, load_capture, save_capture
from a2w.calib.files import CalibrationError, load_calibration
from a2w.calib.sim_capture import SimRig
from a2w.cli import main

MM, DEG = 2.0, 0.2
VIEWS = 8
SIM = Path(__file__).resolve().parents[2] / "calibration" / "sim"


@pytest.fixture(scope="module")
def rig():
    r = SimRig.open(load_board(DEFAULT_BOARD_FILE))
    yield r
    r.close()


@pytest.fixture(scope="module")
def wrist(rig) -> dict[str, Capture]:
    return {}


def _wrist(rig: SimRig, wrist: dict, arm: str) -> Capture:
    if arm not in wrist:
        wrist[arm] = rig.wrist_capture(arm, VIEWS, seed=3)
    return wrist[arm]


@pytest.mark.parametrize("arm", ["left", "right"])
def test_handeye_and_base_recover_the_sim_truth(rig, wrist, arm: str) -> None:
    cap = _wrist(rig, wrist, arm)
    res = solvers.solve_handeye(cap, rig.spec, truth.sim_cameras()[f"{arm}_wrist"])
    dt, dr = res.tcp_cam.error_to(truth.sim_handeye()[arm])
    assert dt <= MM and dr <= DEG, (dt, dr)
    assert res.rms_px < 0.5 and res.n_views == VIEWS
    base = solvers.solve_base(res, cap.board_in_world)
    dt, dr = base.error_to(truth.sim_bases()[arm])
    assert dt <= MM and dr <= DEG, (dt, dr)


def test_front_recovers_the_sim_truth(rig) -> None:
    res = solvers.solve_front(rig.front_capture(), rig.spec, truth.sim_cameras()["front"])
    dt, dr = res.world_cam.error_to(truth.sim_front())
    assert dt <= MM and dr <= DEG, (dt, dr)


def test_intrinsics_recover_the_mujoco_pinhole(rig, wrist) -> None:
    cams = truth.sim_cameras()
    front = solvers.solve_intrinsics(rig.board_views("front", VIEWS, seed=1), rig.spec, estimate_distortion=False)
    # Wrist: the hand-eye capture (the arm moves, the board stays), distortion estimated.
    left = solvers.solve_intrinsics(_wrist(rig, wrist, "left"), rig.spec)
    for res, want in ((front, cams["front"]), (left, cams["left_wrist"])):
        c = res.camera
        assert abs(c.fx - want.fx) / want.fx < 0.01 and abs(c.fy - want.fy) / want.fy < 0.01, c
        assert abs(c.cx - want.cx) < 3.0 and abs(c.cy - want.cy) < 3.0, c
        assert res.rms_px < 0.5


def test_recorded_capture_folder_takes_the_same_path(rig, wrist, tmp_path: Path, capsys) -> None:
    cap = _wrist(rig, wrist, "left")
    save_capture(cap, tmp_path / "left")
    again = load_capture(tmp_path / "left")
    assert again.view == "left_wrist" and again.arm == "left" and len(again.frames) == VIEWS
    assert max(again.board_in_world.error_to(cap.board_in_world)) < 1e-9
    cam = truth.sim_cameras()["left_wrist"]
    a = solvers.solve_handeye(cap, rig.spec, cam)
    b = solvers.solve_handeye(again, rig.spec, cam)
    assert max(a.tcp_cam.error_to(b.tcp_cam)) < 1e-6  # PNG is lossless: the same corners
    # The CLI's real-rig path: capture folder in, calibration folder updated (the other arm kept).
    out = tmp_path / "rig"
    shutil.copytree(SIM, out)
    assert main(["calib", "handeye", "--left", str(tmp_path / "left"), "--calibration", str(SIM),
                 "--out", str(out), "--rig", "sim"]) == 0
    cal = load_calibration(out)
    assert max(cal.handeye["left"].error_to(b.tcp_cam)) < 1e-9
    assert max(cal.handeye["right"].error_to(truth.sim_handeye()["right"])) < 1e-9
    assert "handeye left" in capsys.readouterr().out


def test_cli_sim_front_reports_the_error(tmp_path: Path, capsys) -> None:
    shutil.copytree(SIM, tmp_path / "rig")
    assert main(["calib", "front", "--sim", "--out", str(tmp_path / "rig"), "--rig", "sim"]) == 0
    out = capsys.readouterr().out
    assert "sim error front:" in out and "within" in out
    cal = load_calibration(tmp_path / "rig")
    assert max(cal.front.error_to(truth.sim_front())) < 1.0  # mm-level; written, then read back


def _edit_capture(folder: Path, fn) -> None:
    doc = yaml.safe_load((folder / "capture.yaml").read_text())
    fn(doc)
    (folder / "capture.yaml").write_text(yaml.safe_dump(doc))


@pytest.mark.parametrize("edit,field", [
    (lambda d: d["frames"][1].pop("tcp_in_base"), "frames[1].tcp_in_base"),
    (lambda d: d.pop("arm"), "arm"),
    (lambda d: d["frames"][0]["tcp_in_base"].update(translation=[0.0, 0.0]), "frames[0].tcp_in_base.translation"),
    (lambda d: d["frames"][2].update(image="nope.png"), "frames[2].image"),
    (lambda d: d.update(view="top"), "view"),
    (lambda d: d.update(frames=[]), "frames"),
])
def test_bad_capture_names_file_and_field(rig, wrist, tmp_path: Path, edit, field) -> None:
    folder = tmp_path / "cap"
    save_capture(Capture(view="left_wrist", arm="left", board_in_world=rig.world_board,
                         frames=_wrist(rig, wrist, "left").frames[:3]), folder)
    _edit_capture(folder, edit)
    with pytest.raises(CalibrationError) as exc:
        solvers.solve_handeye(load_capture(folder), rig.spec, truth.sim_cameras()["left_wrist"],
                              source=str(folder / "capture.yaml"), min_views=3)
    assert str(exc.value).startswith(f"{folder / 'capture.yaml'}: {field}: "), str(exc.value)


def test_too_few_views_is_a_solve_error(rig, wrist) -> None:
    cap = _wrist(rig, wrist, "left")
    few = Capture(cap.view, cap.arm, cap.board_in_world, cap.frames[:2])
    with pytest.raises(solvers.SolveError, match="need 5"):
        solvers.solve_handeye(few, rig.spec, truth.sim_cameras()["left_wrist"])
    blank = Capture("front", None, cap.board_in_world, [type(cap.frames[0])(np.zeros((480, 640, 3), np.uint8), None)])
    with pytest.raises(solvers.SolveError, match="not found"):
        solvers.solve_front(blank, rig.spec, truth.sim_cameras()["front"])
    with pytest.raises(CalibrationError, match="board_in_world: missing"):
        solvers.solve_front(Capture("front", None, None, blank.frames), rig.spec, truth.sim_cameras()["front"],
                            source="cap/capture.yaml")
