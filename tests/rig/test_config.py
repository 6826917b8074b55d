"""The rig configuration file (configs/rig/example.yaml) and its validator a2w.rig.config: the
example validates; each class of mistake is refused with a message naming the node and parameter,
and every problem of a file is listed at once."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from a2w.rig.config import RigConfigError, load_rig, validate_rig

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "configs" / "rig" / "example.yaml"


def example() -> dict[str, Any]:
    doc = yaml.safe_load(EXAMPLE.read_text())
    for node in ("arm_node", "robot_state_node", "teleop_node"):  # absolute: the tests do not depend on the cwd
        doc[node]["ros__parameters"]["calibration"] = str(ROOT / "calibration" / "example")
    return doc


def write(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "rig.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def p(doc: dict[str, Any], node: str) -> dict[str, Any]:
    return doc[node]["ros__parameters"]


def test_the_example_validates(tmp_path: Path) -> None:
    cfg = validate_rig(write(tmp_path, example()))
    assert cfg.camera_serials == {"front": "000000000000", "left_wrist": "000000000001",
                                  "right_wrist": "000000000002"}
    assert cfg.flexiv.software_version == "3.11.2" and cfg.flexiv.left_nics == ["192.168.2.100"]
    assert cfg.policy_device == "cuda" and cfg.dataset_root == Path("recordings/rig")
    assert cfg.calibration == ROOT / "calibration" / "example"
    # the repository's file as it is, read from the repository root (its relative calibration path)
    assert validate_rig(EXAMPLE).path == EXAMPLE


def _set(node: str, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def f(doc: dict[str, Any]) -> None:
        params = p(doc, node)
        head, _, rest = key.partition(".")
        if rest:
            params[head][rest] = value
        else:
            params[key] = value
    return f


def _drop(node: str) -> Callable[[dict[str, Any]], None]:
    return lambda doc: doc.pop(node)


MISTAKES: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "unknown section": (lambda d: d.update(camera_nod={"ros__parameters": {}}), "unknown node section"),
    "missing section": (_drop("camera_node"), r"missing section\(s\) \['camera_node'\]"),
    "misspelt parameter": (_set("arm_node", "flexiv.sofware_version", "3.11.2"), "sofware_version"),
    "wrong type": (_set("camera_node", "width", "wide"), "width"),
    "out of range": (_set("arm_node", "flexiv.rate", 1000.0), "rate"),
    "sim cameras": (_set("camera_node", "driver", "sim"), "camera_node.driver"),
    "views": (_set("camera_node", "views", ["front", "left_wrist"]), "camera_node.views"),
    "serial count": (_set("camera_node", "realsense.serials", ["_1", "_2"]), "one serial per view"),
    "serial twice": (_set("camera_node", "realsense.serials", ["_1", "1", "_3"]), "same camera twice"),
    "bad serial": (_set("camera_node", "realsense.serials", ["_1", "a b", ""]), "are not serial numbers"),
    "sim arms": (_set("arm_node", "backend", "sim"), "arm_node.backend"),
    "no arm serial": (_set("arm_node", "flexiv.left_serial", ""), "flexiv.left_serial"),
    "same arm serial": (_set("arm_node", "flexiv.right_serial", "Rizon4s-000001"), "same serial number"),
    "no FSP": (_set("arm_node", "flexiv.software_version", ""), "software_version"),
    "gripper unset": (_set("arm_node", "flexiv.gripper_interface", "unset"), "gripper_interface is unset"),
    "no NIC": (_set("arm_node", "flexiv.right_nics", []), "right_nics: name the IPv4"),
    "NIC not an address": (_set("arm_node", "flexiv.left_nics", ["eth0"]), "'eth0' is not an IPv4"),
    "no calibration": (_set("arm_node", "calibration", ""), "arm_node.calibration: the rig's calibration"),
    "missing calibration": (lambda d: [_set(n, "calibration", "/nonexistent/cal")(d) for n in
                                       ("arm_node", "robot_state_node", "teleop_node")], "not a calibration folder"),
    "two calibrations": (_set("robot_state_node", "calibration", "calibration/sim"),
                         "robot_state_node.calibration: must be the arm node's"),
    "base pose against calibration": (_set("arm_node", "left_base_pose", [0.0, 0.5, 0.0, 0.0, 0.0, 0.0]),
                                      "arm_node.left_base_pose .* conflicts with"),
    "front against calibration": (_set("robot_state_node", "front_camera_pose", [1.0, 0.0, 1.0, 0.0, 0.0, 0.0]),
                                  "robot_state_node.front_camera_pose .* conflicts with"),
    "teleop bases": (_set("teleop_node", "right_base_pose", [-0.495, -0.495, -0.15, 0.0, 0.0, 0.0]),
                     r"teleop_node.right_base_pose .* conflicts with"),
    "teleop yaw": (_set("teleop_node", "yaw", 20.0), r"teleop_node.yaw: 20.0 conflicts with .*vr.yaml"),
    "teleop calibration": (_set("teleop_node", "calibration", "calibration/sim"),
                           "teleop_node.calibration: must be the arm node's"),
    "recorder size": (_set("record_node", "width", 320), "record_node.width/height"),
}


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_each_mistake_is_refused_naming_it(tmp_path: Path, mistake: str) -> None:
    doc = copy.deepcopy(example())
    change, message = MISTAKES[mistake]
    change(doc)
    with pytest.raises(RigConfigError, match=message):
        validate_rig(write(tmp_path, doc))


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    doc = example()
    _set("camera_node", "driver", "sim")(doc)
    _set("arm_node", "flexiv.left_nics", ["eth0"])(doc)
    _set("record_node", "width", 320)(doc)
    with pytest.raises(RigConfigError) as err:
        validate_rig(write(tmp_path, doc))
    assert len(err.value.problems) == 3, err.value.problems


@pytest.mark.parametrize("text,message", [("[1, 2", "cannot read"), ("- a\n- b\n", "top level"),
                                          ("arm_node: 3\n", "ros__parameters")])
def test_a_file_that_is_not_a_rig_configuration_is_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "rig.yaml"
    path.write_text(text)
    with pytest.raises(RigConfigError, match=message):
        load_rig(path)
    with pytest.raises(RigConfigError, match="cannot read"):
        load_rig(tmp_path / "missing.yaml")
