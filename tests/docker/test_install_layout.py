"""The colcon install the rig image builds, built here the same way (merge install, colcon run by
the interpreter the nodes should start in) with the ROS tier's colcon, at a scratch prefix that
stands for the Dockerfile's workspace: the paths the Dockerfile and the entrypoint name exist
there, and the package finds its files in them (the teleop page, the Fast DDS profile)."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import pytest

from tests.docker.support import ENTRYPOINT, ROOT
from tests.docker.test_image import copies, dockerfile
from tests.ros.support import TIER, run_isolated_shell, tier_problem
from tests.tiers import unavailable

PROBE = """
import json, sys
import a2w
from a2w.calib.board import DEFAULT_BOARD_FILE
from a2w.ros.main import fastdds_profile
from a2w.teleop.component import WWW
print("PROBE " + json.dumps({"a2w": a2w.__file__, "www": str(WWW), "profile": str(fastdds_profile()),
                             "board": str(DEFAULT_BOARD_FILE)}))
"""


def workspace() -> str:
    """The WORKDIR the Dockerfile runs colcon in."""
    workdir = None
    for word, rest in dockerfile():
        if word == "WORKDIR":
            workdir = rest
        if word == "RUN" and "colcon build" in rest:
            assert "--merge-install" in rest and "python -m colcon" in rest, rest
            return workdir
    raise AssertionError("the Dockerfile runs no colcon build")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    problem = tier_problem()
    if problem:
        unavailable("ros", problem)
    ws = tmp_path_factory.mktemp("ws")
    shutil.copytree(ROOT / "ros_ws/src/a2w", ws / "src/a2w", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    proc = run_isolated_shell("python -m colcon build --merge-install --event-handlers console_direct-",
                              cwd=ws, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return workspace(), ws


def here(image_path: str, built: tuple[str, Path]) -> Path:
    image_ws, ws = built
    assert image_path.startswith(image_ws + "/"), f"{image_path} is outside the workspace {image_ws}"
    return ws / image_path[len(image_ws) + 1:]


def test_the_cli_link_and_the_setup_file_exist(built: tuple[str, Path]) -> None:
    link = next(re.search(r"ln -s (\S+) /usr/local/bin/a2w", rest) for word, rest in dockerfile()
                if word == "RUN" and "ln -s" in rest)
    assert link, "the Dockerfile no longer links the a2w CLI"
    cli = here(link.group(1), built)
    assert cli.is_file(), f"{link.group(1)}: colcon installed no such script"
    # The scripts start the interpreter that ran colcon: in the image, the virtualenv's.
    assert cli.read_text().splitlines()[0] == f"#!{TIER / 'bin' / 'python'}"
    default = re.search(r'A2W_WS_SETUP:-([^}"]+)', ENTRYPOINT.read_text()).group(1)
    assert here(default, built).is_file(), f"the entrypoint's {default} is not what colcon writes"


def test_the_package_finds_its_files_where_the_image_puts_them(built: tuple[str, Path]) -> None:
    _, ws = built
    copied = {}
    for folder in ("teleop", "calibration"):
        dest = next(dest for _, sources, dest in copies() if sources == [f"{folder}/"])
        copied[folder] = here(dest.rstrip("/"), built)
        shutil.copytree(ROOT / folder, copied[folder])
    page = copied["teleop"]
    proc = run_isolated_shell(f"set +u; source install/setup.bash; set -u; python -c {shlex.quote(PROBE)}", cwd=ws)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(next(ln for ln in proc.stdout.splitlines() if ln.startswith("PROBE "))[6:])
    assert Path(got["a2w"]).is_relative_to(ws / "install"), got["a2w"]
    assert Path(got["www"]) == page, f"teleop_node looks for its page in {got['www']}, the image puts it in {page}"
    assert (page / "index.html").is_file()
    assert Path(got["profile"]) == ws / "install/share/a2w/config/fastdds_shm.xml"
    assert Path(got["board"]) == copied["calibration"] / "board.yaml", "a2w calib's default board file"
