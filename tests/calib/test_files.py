"""The calibration folder schema: the shipped folders load, the sim folder equals the scene's
truth (and the MuJoCo model's own cameras and bodies), and every class of malformed input fails
with a CalibrationError naming the file and the field."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from a2w.calib import files, truth
from a2w.calib.files import CalibrationError, Transform, load_calibration

ROOT = Path(__file__).resolve().parents[2] / "calibration"


def test_shipped_folders_load() -> None:
    for rig in ("sim", "example"):
        cal = load_calibration(ROOT / rig)
        assert cal.rig == rig
        assert set(cal.cameras) == {"front", "left_wrist", "right_wrist"}
        assert set(cal.handeye) == set(cal.bases) == {"left", "right"}
        assert set(cal.created) == set(files.FILES)


def test_sim_folder_is_the_generated_truth(tmp_path: Path) -> None:
    truth.write_sim_truth(tmp_path)
    for name in files.FILES:
        assert (tmp_path / name).read_text() == (ROOT / "sim" / name).read_text(), \
            f"calibration/sim/{name} is stale: regenerate with `a2w calib sim-truth`"


def test_sim_truth_matches_the_mujoco_model() -> None:
    from a2w.sim.world import SimWorld

    world = SimWorld()
    try:
        cal = load_calibration(ROOT / "sim")
        for view, cam in (("front", "front"), ("left_wrist", "left/wrist_cam"), ("right_wrist", "right/wrist_cam")):
            k = world.camera_intrinsics(cam, 640, 480)
            c = cal.cameras[view]
            assert (c.fx, c.fy, c.cx, c.cy) == pytest.approx((k.fx, k.fy, k.cx, k.cy), abs=1e-3)  # fovy in 8 decimals
        pos, rot = world.camera_pose("front")
        m = np.eye(4)
        m[:3, :3], m[:3, 3] = rot, pos
        assert max(cal.front.error_to(Transform.from_matrix(m))) < 1e-6
        for arm in ("left", "right"):
            idx = world.arms[arm]
            assert max(cal.bases[arm].error_to(Transform.from_matrix(idx.base_T))) < 1e-6
            site = np.eye(4)
            site[:3, :3] = world.data.site_xmat[idx.tcp_site].reshape(3, 3)
            site[:3, 3] = world.data.site_xpos[idx.tcp_site]
            pos, rot = world.camera_pose(f"{arm}/wrist_cam")
            cam = np.eye(4)
            cam[:3, :3], cam[:3, 3] = rot, pos
            he = Transform.from_matrix(np.linalg.inv(site) @ cam)
            assert max(cal.handeye[arm].error_to(he)) < 1e-6
    finally:
        world.close()


def test_transform_round_trips() -> None:
    t = Transform.from_xyz_rpy([0.1, -0.2, 0.3, 0.4, -0.5, 2.9])
    assert t.to_xyz_rpy() == pytest.approx([0.1, -0.2, 0.3, 0.4, -0.5, 2.9])
    assert max(Transform.from_matrix(t.matrix()).error_to(t)) < 1e-9
    assert max((t @ t.inverse()).error_to(Transform.identity())) < 1e-9


# -- malformed files ------------------------------------------------------------------------
def _edit(folder: Path, name: str, fn) -> None:
    path = folder / name
    doc = yaml.safe_load(path.read_text())
    fn(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def _copy(tmp_path: Path) -> Path:
    dst = tmp_path / "rig"
    shutil.copytree(ROOT / "sim", dst)
    return dst


def _set(path: str, value):
    keys = path.split(".")

    def fn(doc):
        node = doc
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
    return fn


def _delete(path: str):
    keys = path.split(".")

    def fn(doc):
        node = doc
        for k in keys[:-1]:
            node = node[k]
        del node[keys[-1]]
    return fn


BAD = [
    # (file, edit, field named in the message, words in the message)
    ("handeye.yaml", _delete("left.translation"), "left.translation", "missing"),
    ("bases.yaml", _delete("right"), "right", "missing"),
    ("cameras.yaml", _delete("front.fx"), "front.fx", "missing"),
    ("front.yaml", _delete("front.rotation_xyzw"), "front.rotation_xyzw", "neither"),
    ("vr.yaml", _delete("yaw_deg"), "yaw_deg", "missing"),
    ("handeye.yaml", _delete("created"), "created", "missing"),
    ("handeye.yaml", _set("left.translation", [0.1, 0.2]), "left.translation", "expected 3 numbers, got 2"),
    ("bases.yaml", _set("left.rotation_xyzw", [0, 0, 1]), "left.rotation_xyzw", "expected 4 numbers, got 3"),
    ("front.yaml", lambda d: (_delete("front.rotation_xyzw")(d), _set("front.rpy_deg", [0, 0, 0, 0])(d)),
     "front.rpy_deg", "expected 3 numbers"),
    ("front.yaml", _set("front.rpy_deg", [0, 0, 0]), "front.rotation_xyzw", "got both"),
    ("cameras.yaml", _set("left_wrist.distortion", [0.0, 0.0]), "left_wrist.distortion", "expected 5 numbers"),
    ("handeye.yaml", _set("right.translation", [0.1, float("nan"), 0.0]), "right.translation[1]", "finite"),
    ("bases.yaml", _set("left.translation", [float("inf"), 0.0, 0.0]), "left.translation[0]", "finite"),
    ("cameras.yaml", _set("front.fx", float("nan")), "front.fx", "finite"),
    ("vr.yaml", _set("yaw_deg", float("-inf")), "yaw_deg", "finite"),
    ("handeye.yaml", _set("left.rotation_xyzw", [0.0, 0.0, 0.0, 2.0]), "left.rotation_xyzw", "unit quaternion"),
    ("front.yaml", _set("front.rotation_xyzw", [0.0, 0.0, 0.0, 0.0]), "front.rotation_xyzw", "unit quaternion"),
    ("bases.yaml", _set("right.rotation_xyzw", [0.0, 0.0, 0.0, 1.00001]), "right.rotation_xyzw",
     "unit quaternion"),
    ("handeye.yaml", _set("kind", "bases"), "kind", "expected 'handeye'"),
    ("cameras.yaml", _set("kind", "handeye"), "kind", "expected 'intrinsics'"),
    ("front.yaml", _set("schema", "a2w-calibration/0"), "schema", "expected 'a2w-calibration/1'"),
    ("vr.yaml", _delete("schema"), "schema", "missing"),
    ("handeye.yaml", _set("left.translation", "0 0 0"), "left.translation", "expected 3 numbers"),
    ("cameras.yaml", _set("front.width", 0), "front.width", "integer"),
    ("cameras.yaml", _set("front.source", "guess"), "front.source", "expected one of"),
    ("handeye.yaml", _set("left.parent", "left_flange"), "left.parent", "expected 'left_tcp'"),
    ("bases.yaml", _set("left.transl", [0, 0, 0]), "left.transl", "unknown field"),
    ("vr.yaml", _set("rig", "other"), "rig", "expected 'sim'"),
    ("handeye.yaml", _set("created", "2026-12-02T00:00:00"), "created", "time zone"),
]


@pytest.mark.parametrize("name,edit,field,words", BAD, ids=[f"{b[0]}:{b[2]}:{b[3][:20]}" for b in BAD])
def test_malformed_file_names_file_and_field(tmp_path: Path, name, edit, field, words) -> None:
    folder = _copy(tmp_path)
    _edit(folder, name, edit)
    with pytest.raises(CalibrationError) as exc:
        load_calibration(folder)
    msg = str(exc.value)
    assert msg.startswith(f"{folder / name}: {field}: "), msg
    assert words in msg, msg


@pytest.mark.parametrize("name", list(files.FILES))
def test_missing_file_is_named(tmp_path: Path, name: str) -> None:
    folder = _copy(tmp_path)
    (folder / name).unlink()
    with pytest.raises(CalibrationError, match=f"^{folder / name}: missing file"):
        load_calibration(folder)


def test_not_yaml_and_not_a_mapping(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    (folder / "front.yaml").write_text("front: [unclosed\n")
    with pytest.raises(CalibrationError, match="front.yaml: not valid YAML"):
        load_calibration(folder)
    (folder / "front.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(CalibrationError, match="front.yaml: expected a mapping"):
        load_calibration(folder)
    with pytest.raises(CalibrationError, match="no such directory"):
        load_calibration(tmp_path / "nowhere")


def test_rpy_form_and_writers_round_trip(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    _edit(folder, "front.yaml", lambda d: d["front"].pop("rotation_xyzw") and None)
    _edit(folder, "front.yaml", _set("front.rpy_deg", [10.0, -20.0, 30.0]))
    cal = load_calibration(folder)
    assert np.degrees(cal.front.to_xyz_rpy()[3:]) == pytest.approx([10.0, -20.0, 30.0])
    files.write_front(folder, "sim", cal.front, "test", residuals={"rms_px": 0.1})
    again, header = files.read_front(folder / "front.yaml")
    assert max(again.error_to(cal.front)) < 1e-9
    assert header["residuals"] == {"rms_px": 0.1}
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temp files left
    assert math.isfinite(cal.vr_yaw_deg)
