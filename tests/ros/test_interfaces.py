"""a2w_interfaces: the .msg/.srv files load, CMakeLists builds all of them, and their RIHS01 type
hashes match the golden file (an accidental interface change must fail here, not on the rig)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from a2w.ros.interfaces import interface_names, interfaces_dir, jazzy_typestore, type_hashes

GOLDEN = Path(__file__).parent / "golden" / "a2w_interfaces_type_hashes.json"


def test_type_hashes_match_golden_file() -> None:
    golden = json.loads(GOLDEN.read_text())
    now = type_hashes()
    changed = {k: (golden.get(k), v) for k, v in now.items() if golden.get(k) != v}
    gone = sorted(set(golden) - set(now))
    assert not changed and not gone, (
        f"interface hashes changed: {changed}, removed: {gone}. If intended, regenerate with "
        f"`a2w ros hashes --write {GOLDEN}` and bump a2w_interfaces' version: every node on the "
        "rig must be rebuilt."
    )


def test_hashing_reproduces_ros_for_a_standard_message() -> None:
    # Reference value from rclpy (ros2_facts.md §2); guards the hashing itself, not our files.
    assert jazzy_typestore().hash_rihs01("sensor_msgs/msg/Image") == (
        "RIHS01_d31d41a9a4c4bc8eae9be757b0beed306564f7526c88ea6a4588fb9582527d47"
    )


def test_char_fields_hash_as_rosidl_does() -> None:
    # rosidl hashes msg ``char`` as uint8 (value from the colcon build's rosidl output).
    assert jazzy_typestore().hash_rihs01("service_msgs/msg/ServiceEventInfo") == (
        "RIHS01_41bcbbe07a75c9b52bc96bfd5c24d7f0fc0a08c0cb7921b3373c5732345a6f45"
    )


def test_a_changed_field_changes_the_hash(tmp_path: Path) -> None:
    root = interfaces_dir()
    copy = tmp_path / "a2w_interfaces"
    for sub in ("msg", "srv"):
        (copy / sub).mkdir(parents=True)
        for f in (root / sub).iterdir():
            (copy / sub / f.name).write_text(f.read_text())
    p = copy / "msg" / "ArmTarget.msg"
    p.write_text(p.read_text().replace("float64 gripper_open", "float32 gripper_open"))
    before, after = type_hashes(root), type_hashes(copy)
    assert before["a2w_interfaces/msg/ArmTarget"] != after["a2w_interfaces/msg/ArmTarget"]
    # RigTarget embeds ArmTarget, so its hash changes too; unrelated types keep theirs.
    assert before["a2w_interfaces/msg/RigTarget"] != after["a2w_interfaces/msg/RigTarget"]
    assert before["a2w_interfaces/msg/EpisodeEvent"] == after["a2w_interfaces/msg/EpisodeEvent"]


def test_cmakelists_generates_every_interface_file() -> None:
    root = interfaces_dir()
    listed = set(re.findall(r'"((?:msg|srv)/\w+\.(?:msg|srv))"', (root / "CMakeLists.txt").read_text()))
    on_disk = {f"{p.parent.name}/{p.name}" for p in root.glob("*/*") if p.suffix in (".msg", ".srv")}
    assert listed == on_disk
    assert len(interface_names()) == len(on_disk)
