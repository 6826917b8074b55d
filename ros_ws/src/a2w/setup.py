"""ament_python package ``a2w``: the runtime core and one console script per node.

The node executables are derived from ``a2w/nodes.py``'s ``NODES`` table by parsing it (the
package is not imported at build time), so launch files, the in-process runner and
``ros2 run a2w <exec>`` always agree. Each script runs its component with the rclpy host
(``a2w.ros.entry``). Scripts land in ``lib/a2w`` (setup.cfg), where ``ros2 run`` looks
(ros2_facts.md §4).
"""

from __future__ import annotations

import ast
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "a2w"
HERE = Path(__file__).resolve().parent


def node_executables(nodes_py: Path = HERE / PACKAGE / "nodes.py") -> list[str]:
    """Keys of the ``NODES`` literal in nodes.py, read with ``ast`` (no import)."""
    tree = ast.parse(nodes_py.read_text(), str(nodes_py))
    for stmt in tree.body:
        target = stmt.target if isinstance(stmt, ast.AnnAssign) else (
            stmt.targets[0] if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 else None)
        if isinstance(target, ast.Name) and target.id == "NODES" and stmt.value is not None:
            table = ast.literal_eval(stmt.value)
            if not isinstance(table, dict):
                raise ValueError(f"{nodes_py}: NODES must be a dict literal")
            return sorted(table)
    raise ValueError(f"{nodes_py}: no NODES table found")


def console_scripts() -> list[str]:
    scripts = [f"{name} = a2w.ros.entry:{name}" for name in node_executables()]
    return scripts + ["a2w = a2w.cli:main", "component_container = a2w.ros.container:main"]


# Folders installed under share/a2w as they are (recursively, every file): the launch files and
# their parameter YAML (the repository's launch/ links to launch/ here), the Fast DDS profile and
# other runtime configuration, the robot model. $(find-pkg-share a2w)/<folder>/... then resolves
# on a rig, also when ros_ws is built alone.
SHARE_FOLDERS = ("launch", "config", "urdf")
# Never installed: editor and Python leftovers that may sit in those folders.
SKIP = ("__pycache__", ".pyc", "~", ".swp", ".orig")


def data_files(root: Path = HERE) -> list[tuple[str, list[str]]]:
    files = [
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ]
    by_dir: dict[str, list[str]] = {}
    for folder in SHARE_FOLDERS:
        for path in sorted((root / folder).rglob("*")):
            rel = path.relative_to(root)
            if path.is_file() and not any(part.endswith(SKIP) or part.startswith(".") for part in rel.parts):
                by_dir.setdefault(rel.parent.as_posix(), []).append(rel.as_posix())
    files += [(f"share/{PACKAGE}/{d}", names) for d, names in sorted(by_dir.items())]
    return files


if __name__ == "__main__":
    setup(
        name=PACKAGE,
        version="0.1.0",
        packages=find_packages(exclude=["test", "tests"]),
        data_files=data_files(),
        install_requires=["setuptools"],
        zip_safe=True,
        maintainer="A2W maintainers",
        maintainer_email="maintainers@a2w.invalid",
        description="A2World rig stack: ROS-free runtime core and the nodes that run it.",
        license="Apache-2.0",
        entry_points={"console_scripts": console_scripts(),
                      "launch.frontend.launch_extension": ["a2w = a2w.launch.ros_extension"]},
    )
