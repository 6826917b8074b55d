"""Package checks without ROS: package.xml files validate with catkin_pkg, the ament_python
setup.py installs one console script per registered node, and every pkg/exec a launch file
names exists."""

from __future__ import annotations

import runpy
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
            if el.tag in ("node", "composable_node") and el.get("pkg"):
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
    lib = tmp_path / "install" / "a2w" / "lib" / "a2w"
    installed = {p.name for p in lib.iterdir()}
    assert installed == {*nodes.NODES, "a2w"}
    assert (tmp_path / "install" / "a2w" / "share" / "a2w" / "package.xml").is_file()
    assert (tmp_path / "install" / "a2w" / "share" / "ament_index" / "resource_index" / "packages" / "a2w").is_file()
