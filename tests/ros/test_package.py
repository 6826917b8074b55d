"""Package checks without ROS: package.xml files validate with catkin_pkg, the ament_python
setup.py installs one console script per registered node, and every pkg/exec a launch file
names exists."""

from __future__ import annotations

import ast
import re
import runpy
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from catkin_pkg.package import InvalidPackage, parse_package

from a2w import nodes
from tests.tiers import unavailable

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "ros_ws" / "src"
SETUP = runpy.run_path(str(SRC / "a2w" / "setup.py"), run_name="a2w_setup_under_test")


@pytest.mark.parametrize("pkg", sorted(p.parent.name for p in SRC.glob("*/package.xml")))
def test_package_xml_validates(pkg: str) -> None:
    package = parse_package(str(SRC / pkg))
    package.validate()
    assert package.name == pkg
    build_type = package.get_build_type()
    assert build_type == ("ament_cmake" if pkg.endswith("_interfaces") else "ament_python")
    if build_type == "ament_cmake":
        assert "rosidl_interface_packages" in [g.name for g in package.member_of_groups]


def test_catkin_pkg_rejects_a_broken_manifest(tmp_path: Path) -> None:
    text = (SRC / "a2w" / "package.xml").read_text()
    (tmp_path / "package.xml").write_text(text.replace("<license>Apache-2.0</license>", ""))
    with pytest.raises(InvalidPackage, match="license"):
        parse_package(str(tmp_path)).validate()


def test_console_scripts_are_derived_from_the_node_registry() -> None:
    scripts = dict(s.split(" = ") for s in SETUP["console_scripts"]())
    node_scripts = {k: v for k, v in scripts.items() if v.startswith("a2w.ros.entry:")}
    assert sorted(node_scripts) == sorted(nodes.NODES)
    assert all(v == f"a2w.ros.entry:{k}" for k, v in node_scripts.items())


def test_node_table_parser_follows_edits(tmp_path: Path) -> None:
    text = (SRC / "a2w" / "a2w" / "nodes.py").read_text()
    edited = tmp_path / "nodes.py"
    edited.write_text(text.replace("NODES: dict[str, str] = {",
                                   'NODES: dict[str, str] = {\n    "zz_new_node": "m:C",', 1))
    assert SETUP["node_executables"](edited) == sorted([*nodes.NODES, "zz_new_node"])
    edited.write_text("X = 1\n")
    with pytest.raises(ValueError, match="NODES"):
        SETUP["node_executables"](edited)


def test_entry_module_resolves_every_node_and_only_those() -> None:
    from a2w.ros import entry

    for name in nodes.NODES:
        assert callable(getattr(entry, name))
    with pytest.raises(AttributeError):
        entry.not_a_node  # noqa: B018


def _launch_nodes() -> list[tuple[str, str, str]]:
    out = []
    for f in sorted((ROOT / "launch").glob("*.launch.xml")):
        for el in ET.parse(f).iter():
            if el.tag in ("node", "node_container", "composable_node") and el.get("pkg"):
                out.append((f.name, el.get("pkg", ""), el.get("exec") or el.get("plugin") or ""))
    return out


@pytest.mark.parametrize("where", _launch_nodes() or [pytest.param(None, marks=pytest.mark.skip(
    reason="no launch/*.launch.xml with <node> yet"))])
def test_launch_files_name_existing_executables(where: tuple[str, str, str]) -> None:
    fname, pkg, exe = where
    assert pkg == "a2w", f"{fname}: package {pkg!r} is not built from this workspace"
    scripts = {s.split(" = ")[0] for s in SETUP["console_scripts"]()}
    assert exe in scripts, f"{fname}: exec {exe!r} has no console script in a2w; known: {sorted(scripts)}"


def test_colcon_builds_the_ament_python_package(tmp_path: Path) -> None:
    tier = ROOT / ".venv" / "ros-tier"
    if not (tier / ".ready").is_file():
        unavailable("ros", f"colcon lives in the ROS tier venv, not set up ({tier}); "
                           "run bash scripts/setup_ros_tier.sh")
    import subprocess

    proc = subprocess.run(
        [str(tier / "bin" / "colcon"), "build", "--base-paths", str(SRC / "a2w"),
         "--build-base", str(tmp_path / "build"), "--install-base", str(tmp_path / "install")],
        cwd=tmp_path, capture_output=True, text=True, timeout=240,
        env={"PATH": f"{tier / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    prefix = tmp_path / "install" / "a2w"
    installed = {p.name for p in (prefix / "lib" / "a2w").iterdir()}
    assert installed == {s.split(" = ")[0] for s in SETUP["console_scripts"]()}
    assert set(nodes.NODES) <= installed
    # Every data file (package.xml, the ament index marker, launch/, config/, urdf/) is installed:
    # a plain build, as on a rig, copies them.
    for dest, files in SETUP["data_files"]():
        for f in files:
            assert (prefix / dest / Path(f).name).is_file(), f"{f} not installed in {dest}"
    assert (prefix / "share" / "a2w" / "launch" / "params" / "sim.yaml").is_file()


# -- dependencies: package.xml declares every ROS package and library the code uses -------------

A2W_SRC = SRC / "a2w"
# Python libraries the runtime core imports -> their rosdep keys.
PYTHON_KEYS = {"numpy": "python3-numpy", "scipy": "python3-scipy", "yaml": "python3-yaml",
               "websockets": "python3-websockets", "cv2": "python3-opencv"}
# Imports that are deliberately not exec_depends (package.xml says why), each with its reason.
OPTIONAL = {
    "mujoco": "sim drivers only; pip, no rosdep key",
    "pyrealsense2": "RealSense driver only; comes with librealsense",
    "av": "recording and dataset export tools",
    "pyarrow": "recording and dataset export tools",
    "tqdm": "sim video export progress bar",
    "rosbags": "`a2w ros` interface tooling (hashes, CDR checks)",
    "segno": "the teleop page's address as a QR code (the address is printed without it)",
    "torch": "policy and shadow nodes, training: PyTorch from pip (CPU or CUDA builds), no rosdep key",
    "a2world": "this repository's models package (pip install -e models), with torch",
    "rerun": "the monitor only; pip rerun-sdk",
    "rerun_cli": "the monitor's viewer process; comes with rerun-sdk",
    "PIL": "the printable calibration board only (a2w calib board); Pillow",
}
ROS_TYPE = re.compile(r"([a-z][a-z0-9_]*)/(msg|srv|action)/[A-Z][A-Za-z0-9]*")


def _imports(pkg_dir: Path) -> dict[str, str]:
    """Top-level modules imported anywhere in the package (not stdlib, not a2w) -> one importer."""
    found: dict[str, str] = {}
    for f in sorted((pkg_dir / "a2w").rglob("*.py")):
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ("a2w", "__future__"):
                    found.setdefault(top, str(f.relative_to(pkg_dir)))
    return found


def _ros_type_literals(pkg_dir: Path) -> dict[str, str]:
    """ROS packages named by ``pkg/msg|srv|action/Name`` string literals in the code -> one user."""
    found: dict[str, str] = {}
    for f in sorted((pkg_dir / "a2w").rglob("*.py")):
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                m = ROS_TYPE.fullmatch(node.value)
                if m:
                    found.setdefault(m[1], str(f.relative_to(pkg_dir)))
    return found


def required_dependencies(pkg_dir: Path = A2W_SRC) -> dict[str, str]:
    """Every exec dependency the package needs -> why (where it is used)."""
    from a2w.ros import codec

    need: dict[str, str] = {}
    for c in codec.TOPICS.values():
        for ros_type in (c.ros_type, *(comp.ros_type for comp in c.companions)):
            need.setdefault(ros_type.split("/")[0], f"codec: {c.domain.__name__} -> {ros_type}")
    for c in codec.SERVICES.values():
        need.setdefault(c.ros_type.split("/")[0], f"codec: {c.request.__name__} -> {c.ros_type}")
    for pkg, where in _ros_type_literals(pkg_dir).items():
        need.setdefault(pkg, f"a ROS type named in {where}")
    for module, where in _imports(pkg_dir).items():
        if module in OPTIONAL:
            continue
        need.setdefault(PYTHON_KEYS.get(module, module), f"imported by {where}")
    # The launch files: XML frontend, launch_ros actions, and ros2 launch itself; their pkg= names.
    for f in sorted((pkg_dir / "launch").rglob("*.launch.xml")):
        need.setdefault("launch_xml", f"{f.name} is an XML launch file")
        need.setdefault("ros2launch", f"{f.name} is run by `ros2 launch`")
        for el in ET.parse(f).iter():
            if el.tag in ("node", "node_container", "composable_node", "load_composable_node"):
                need.setdefault("launch_ros", f"{f.name}: <{el.tag}>")
            if el.get("pkg") and el.get("pkg") != "a2w":
                need.setdefault(el.get("pkg", ""), f"{f.name}: pkg={el.get('pkg')}")
    return need


def undeclared(pkg_dir: Path = A2W_SRC) -> dict[str, str]:
    package = parse_package(str(pkg_dir))
    declared = {d.name for d in package.exec_depends}
    return {k: v for k, v in required_dependencies(pkg_dir).items() if k not in declared}


def test_package_xml_is_format_3_and_declares_every_dependency() -> None:
    package = parse_package(str(A2W_SRC))
    package.validate()
    assert package.package_format == 3
    assert undeclared() == {}


def test_the_dependency_check_sees_what_the_code_uses() -> None:
    need = required_dependencies()
    # The ones the issue found missing, and the ones each kind of use brings in.
    assert {"a2w_interfaces", "std_msgs", "builtin_interfaces", "rosgraph_msgs", "rcl_interfaces",
            "sensor_msgs", "geometry_msgs", "diagnostic_msgs", "tf2_msgs", "composition_interfaces",
            "rclpy", "launch", "launch_ros", "launch_xml", "python3-numpy", "python3-yaml"} <= set(need)
    assert set(OPTIONAL).isdisjoint(need)


@pytest.mark.parametrize("dep", sorted(required_dependencies()))
def test_dropping_any_dependency_from_package_xml_is_caught(dep: str, tmp_path: Path) -> None:
    pkg = tmp_path / "a2w"
    shutil.copytree(A2W_SRC, pkg, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"), symlinks=True)
    text = (pkg / "package.xml").read_text()
    assert f"<exec_depend>{dep}</exec_depend>" in text
    (pkg / "package.xml").write_text(text.replace(f"<exec_depend>{dep}</exec_depend>", ""))
    assert set(undeclared(pkg)) == {dep}


def test_a_new_ros_import_or_type_needs_a_declaration(tmp_path: Path) -> None:
    pkg = tmp_path / "a2w"
    shutil.copytree(A2W_SRC, pkg, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"), symlinks=True)
    (pkg / "a2w" / "zz_new.py").write_text(
        'import nav_msgs.msg\nfrom visualization_msgs.msg import Marker\nT = "shape_msgs/msg/Mesh"\n')
    assert set(undeclared(pkg)) == {"nav_msgs", "visualization_msgs", "shape_msgs"}


def test_every_file_under_the_share_folders_is_installed_and_nothing_else(tmp_path: Path) -> None:
    real = {f for _, files in SETUP["data_files"]() for f in files}
    on_disk = {p.relative_to(SRC / "a2w").as_posix() for folder in SETUP["SHARE_FOLDERS"]
               for p in (SRC / "a2w" / folder).rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert on_disk <= real
    assert {"launch/sim.launch.xml", "launch/params/sim.yaml"} <= real
    # A new file anywhere below launch/, config/ or urdf/ is picked up with its folder; editor and
    # Python leftovers and files outside those folders are not.
    for rel in ("launch/a.launch.xml", "launch/params/deep/b.yaml", "config/fastdds_shm.xml", "urdf/rig.urdf",
                "urdf/meshes/base.stl", "launch/a.launch.xml~", "launch/.a.launch.xml.swp",
                "config/__pycache__/x.pyc", "notes/todo.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    got = dict(SETUP["data_files"](tmp_path))
    assert got.pop("share/ament_index/resource_index/packages") == ["resource/a2w"]
    assert got.pop("share/a2w") == ["package.xml"]
    assert got == {
        "share/a2w/config": ["config/fastdds_shm.xml"],
        "share/a2w/launch": ["launch/a.launch.xml"],
        "share/a2w/launch/params/deep": ["launch/params/deep/b.yaml"],
        "share/a2w/urdf": ["urdf/rig.urdf"],
        "share/a2w/urdf/meshes": ["urdf/meshes/base.stl"],
    }
