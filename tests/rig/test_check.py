"""`a2w rig check` (a2w.rig.check): on this machine it reports the missing hardware and exits 1;
each check's pass and fail paths with real inputs: librealsense software devices for the cameras,
a stand-in RDK module imported by a real interpreter, addresses bound (nothing sent), calibration
folders written by a2w.calib (valid, stale, malformed, other cameras'), torch in this process, a
temporary directory's file system."""

from __future__ import annotations

import copy
import os
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from a2w import cli
from a2w.calib.files import load_calibration, write_bases, write_cameras, write_front, write_handeye, write_vr
from a2w.rig import check
from a2w.rig.config import load_rig

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "configs" / "rig" / "example.yaml"
SERIALS = ["000000000000", "000000000001", "000000000002"]
NOW = datetime(2026, 12, 2, tzinfo=timezone.utc)


def rig(tmp_path: Path, **changes: Any) -> Any:
    """The example rig configuration with ``node__param`` (``.`` for a group) changes, loaded."""
    doc = yaml.safe_load(EXAMPLE.read_text())
    for node in ("arm_node", "robot_state_node"):
        doc[node]["ros__parameters"]["calibration"] = str(ROOT / "calibration" / "example")
    doc = copy.deepcopy(doc)
    for key, value in changes.items():
        node, _, name = key.partition("__")
        params = doc[node]["ros__parameters"]
        head, _, rest = name.partition(".")
        if rest:
            params[head][rest] = value
        else:
            params[name] = value
    path = tmp_path / f"rig{len(list(tmp_path.glob('rig*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load_rig(path)


def test_on_this_machine_the_missing_hardware_is_reported_and_the_exit_is_1(capsys: pytest.CaptureFixture) -> None:
    cwd = os.getcwd()
    os.chdir(ROOT)  # the example's calibration path is relative to the repository root
    try:
        assert cli.main(["rig", "check", str(EXAMPLE)]) == 1
    finally:
        os.chdir(cwd)
    out = capsys.readouterr().out
    lines = {line.split()[1]: line for line in out.splitlines() if line[:4] in ("PASS", "FAIL")}
    assert set(lines) == {"config", "cameras", "flexivrdk", "arm", "calibration", "gpu", "disk"}, out
    assert lines["config"].startswith("PASS"), out
    assert lines["cameras"].startswith("FAIL") and "not found: front 000000000000" in lines["cameras"], out
    assert lines["flexivrdk"].startswith("FAIL") and "No module named 'flexivrdk'" in lines["flexivrdk"], out
    assert lines["arm"].startswith("FAIL") and "192.168.2.100: not assigned" in lines["arm"], out
    assert out.count("fix: ") == sum(line.startswith("FAIL") for line in lines.values())
    assert "failed" in out.splitlines()[-1]


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["rig", "check", str(EXAMPLE), "--max-age-days", "0"]) == 2
    assert cli.main(["rig"]) == 2


def test_a_rig_file_that_does_not_load_fails_the_config_line_only(tmp_path: Path) -> None:
    bad = tmp_path / "rig.yaml"
    bad.write_text(EXAMPLE.read_text().replace("software_version:", "sofware_version:"))
    results = check.run_checks(bad)
    assert [(r.name, r.ok) for r in results] == [("config", False)] and "sofware_version" in results[0].detail


# -- cameras --------------------------------------------------------------------------------
def hub(serials: list[str], usb: str = "3.2") -> Any:
    from a2w.cameras.realsense.softcam import SoftwareCamera, SoftwareDeviceHub

    return SoftwareDeviceHub([SoftwareCamera(s, "d405", usb=usb if i == 1 else "3.2") for i, s in enumerate(serials)])


def test_cameras_pass_when_every_serial_is_connected_on_usb3(tmp_path: Path) -> None:
    r = check.check_cameras(rig(tmp_path), hub(SERIALS + ["999"]))
    assert r.ok and "left_wrist 000000000001 (USB 3.2)" in r.detail, r


def test_cameras_fail_naming_a_missing_serial_and_what_is_connected(tmp_path: Path) -> None:
    r = check.check_cameras(rig(tmp_path), hub([SERIALS[0], SERIALS[2], "999"]))
    assert not r.ok and "not found: left_wrist 000000000001" in r.detail and "999" in r.detail, r
    assert "unconfigured: 999" in r.fix


def test_cameras_fail_on_usb2_unless_allowed(tmp_path: Path) -> None:
    r = check.check_cameras(rig(tmp_path), hub(SERIALS, usb="2.1"))
    assert not r.ok and "USB 2: left_wrist 000000000001 on USB 2.1" in r.detail and "USB 3 port" in r.fix, r
    assert check.check_cameras(rig(tmp_path, **{"camera_node__realsense.allow_usb2": True}), hub(SERIALS, "2.1")).ok


# -- Flexiv RDK -----------------------------------------------------------------------------
def fake_rdk(tmp_path: Path, version: str) -> dict[str, Any]:
    (tmp_path / f"rdk_{version.replace('.', '_')}.py").write_text(f"__version__ = {version!r}\n")
    return {"arm_node__flexiv.rdk_module": f"rdk_{version.replace('.', '_')}",
            "arm_node__flexiv.worker_pythonpath": [str(tmp_path)]}


def test_the_rdk_passes_when_it_is_the_release_for_the_configured_fsp(tmp_path: Path) -> None:
    # The repository's RDK stand-in (tests/arms/fake_flexivrdk.py), imported by another interpreter.
    r = check.check_flexivrdk(rig(tmp_path, **{"arm_node__flexiv.rdk_module": "tests.arms.fake_flexivrdk",
                                               "arm_node__flexiv.worker_pythonpath": [str(ROOT)],
                                               "arm_node__flexiv.worker_python": sys.executable}))
    assert r.ok and "1.9.3 for FSP 3.11.2" in r.detail and "fake_flexivrdk.py" in r.detail, r


@pytest.mark.parametrize("version,fsp,message", [
    ("1.8.1", "3.11.2", "is for FSP 3.10, the robots run FSP 3.11.2"),
    ("2.1.0", "3.11.2", "is the 2.x line"),
    ("1.5.0", "3.11.2", "predates"),
    ("1.9.4", "3.11.2", "no verified FSP pairing"),
])
def test_the_rdk_fails_for_another_fsp_or_line(tmp_path: Path, version: str, fsp: str, message: str) -> None:
    r = check.check_flexivrdk(rig(tmp_path, **fake_rdk(tmp_path, version),
                                  **{"arm_node__flexiv.software_version": fsp}))
    assert not r.ok and message in r.detail and "flexivrdk" in r.fix, r


def test_an_unverified_pairing_passes_only_when_accepted(tmp_path: Path) -> None:
    r = check.check_flexivrdk(rig(tmp_path, **fake_rdk(tmp_path, "1.9.4"),
                                  **{"arm_node__flexiv.accept_unverified_pairing": True}))
    assert r.ok and "accepted" in r.detail


@pytest.mark.parametrize("changes,message", [
    ({"arm_node__flexiv.rdk_module": "no_such_rdk"}, "No module named 'no_such_rdk'"),
    ({"arm_node__flexiv.worker_python": "/nonexistent/python"}, "cannot run /nonexistent/python"),
])
def test_the_rdk_fails_when_it_does_not_import(tmp_path: Path, changes: dict[str, Any], message: str) -> None:
    r = check.check_flexivrdk(rig(tmp_path, **changes))
    assert not r.ok and message in r.detail and "setup_flexiv_venv.sh" in r.fix, r


# -- NICs ----------------------------------------------------------------------------------
def test_nics_pass_when_the_addresses_are_this_hosts_and_fail_otherwise(tmp_path: Path) -> None:
    ok = check.check_nics(rig(tmp_path, **{"arm_node__flexiv.left_nics": ["127.0.0.1"],
                                           "arm_node__flexiv.right_nics": ["127.0.0.1"]}))
    assert ok.ok and "left 127.0.0.1" in ok.detail, ok
    # 192.0.2.0/24 is TEST-NET-1: never assigned; binding to it sends nothing.
    bad = check.check_nics(rig(tmp_path, **{"arm_node__flexiv.left_nics": ["127.0.0.1"],
                                            "arm_node__flexiv.right_nics": ["192.0.2.1"]}))
    assert not bad.ok and bad.detail == "right 192.0.2.1: not assigned to any interface of this host", bad
    none = check.check_nics(rig(tmp_path, **{"arm_node__flexiv.left_nics": []}))
    assert not none.ok and "left: none configured" in none.detail


# -- calibration ----------------------------------------------------------------------------
def calibration(tmp_path: Path, created: datetime, serials: list[str] = SERIALS) -> Path:
    """calibration/example rewritten into tmp_path with every file created at ``created``."""
    src = load_calibration(ROOT / "calibration" / "example")
    folder, stamp = tmp_path / "cal", created.strftime("%Y-%m-%dT%H:%M:%SZ")
    cams = {v: type(c)(**{**c.__dict__, "serial": s}) for (v, c), s in zip(src.cameras.items(), serials)}
    write_cameras(folder, "example", cams, "test", created=stamp)
    write_handeye(folder, "example", src.handeye, "test", created=stamp)
    write_front(folder, "example", src.front, "test", created=stamp)
    write_bases(folder, "example", src.bases, "test", created=stamp)
    write_vr(folder, "example", src.vr_yaw_deg, "test", created=stamp)
    return folder


def cal_rig(tmp_path: Path, folder: Path) -> Any:
    return rig(tmp_path, arm_node__calibration=str(folder), robot_state_node__calibration=str(folder))


def test_a_valid_recent_calibration_passes(tmp_path: Path) -> None:
    r = check.check_calibration(cal_rig(tmp_path, calibration(tmp_path, NOW - timedelta(days=3))), 90.0, NOW)
    assert r.ok and "3.0 days old" in r.detail, r


@pytest.mark.parametrize("age_days,message", [(120.0, "older than 90 days: bases.yaml 120 days old"),
                                              (-2.0, "created in the future")])
def test_a_stale_or_future_calibration_fails(tmp_path: Path, age_days: float, message: str) -> None:
    r = check.check_calibration(cal_rig(tmp_path, calibration(tmp_path, NOW - timedelta(days=age_days))), 90.0, NOW)
    assert not r.ok and message in r.detail and "re-calibrate" in r.fix, r


def test_a_calibration_of_other_cameras_fails(tmp_path: Path) -> None:
    folder = calibration(tmp_path, NOW, serials=["111", SERIALS[1], SERIALS[2]])
    r = check.check_calibration(cal_rig(tmp_path, folder), 90.0, NOW)
    assert not r.ok and "cameras.yaml front is for serial 111, the rig's front camera is 000000000000" in r.detail


@pytest.mark.parametrize("damage,message", [
    (lambda f: (f / "front.yaml").unlink(), "front.yaml"),
    (lambda f: (f / "bases.yaml").write_text((f / "bases.yaml").read_text().replace("translation: [",
                                                                                     "translation: [0.0, ", 1)),
     "bases.yaml: left.translation"),
    (lambda f: (f / "vr.yaml").write_text("schema: a2w-calibration/1\nkind: vr\n"), "vr.yaml"),
])
def test_a_missing_or_malformed_calibration_fails_naming_the_file(tmp_path: Path, damage: Any, message: str) -> None:
    folder = calibration(tmp_path, NOW)
    damage(folder)
    r = check.check_calibration(cal_rig(tmp_path, folder), 90.0, NOW)
    assert not r.ok and message in r.detail, r


# -- GPU ------------------------------------------------------------------------------------
def test_gpu_passes_for_a_device_torch_has_and_fails_for_one_it_lacks(tmp_path: Path) -> None:
    import torch

    assert check.check_gpu(rig(tmp_path, policy_node__device="cpu")).ok
    missing = f"cuda:{torch.cuda.device_count() if torch.cuda.is_available() else 0}"
    r = check.check_gpu(rig(tmp_path, policy_node__device=missing))
    assert not r.ok and "torch" in r.detail and "policy_node.device" in r.fix, r
    if torch.cuda.is_available():
        assert check.check_gpu(rig(tmp_path, policy_node__device="cuda")).ok


# -- disk -----------------------------------------------------------------------------------
def test_disk_passes_with_room_and_fails_without(tmp_path: Path) -> None:
    root = tmp_path / "datasets" / "not-yet"
    r = check.check_disk(rig(tmp_path, record_node__root=str(root)), 0.0)
    assert r.ok and str(root) in r.detail
    r = check.check_disk(rig(tmp_path, record_node__root=str(root)), 1e9)
    assert not r.ok and "below 1e+09 GB" in r.detail and "record_node.root" in r.fix, r


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere: no unwritable directory to test with")
def test_disk_fails_when_the_dataset_root_is_not_writable(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    r = check.check_disk(rig(tmp_path, record_node__root=str(ro / "ds")), 0.0)
    assert not r.ok and "not writable" in r.detail


def test_the_table_has_one_line_per_check_and_a_fix_under_each_failure() -> None:
    results = [check.CheckResult("a", True, "fine"), check.CheckResult("longer", False, "broken", "mend it")]
    text = check.format_table(results)
    assert text.splitlines() == ["PASS  a       fine", "FAIL  longer  broken", "              fix: mend it", "",
                                 "1 passed, 1 failed"]
