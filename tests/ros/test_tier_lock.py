"""The ROS tier's lock (requirements/ros-test.txt): it pins, with a hash, every top-level
requirement of scripts/setup_ros_tier.sh at the version asked, and its regeneration
(scripts/ros_tier_lock.py) keeps existing pins, adds new names, and rewrites only on --upgrade.
No network, no ROS."""

from __future__ import annotations

import hashlib
import re
import runpy
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "setup_ros_tier.sh"
LOCK = ROOT / "requirements" / "ros-test.txt"
LOCKGEN = runpy.run_path(str(ROOT / "scripts" / "ros_tier_lock.py"), run_name="ros_tier_lock_under_test")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def top_requirements(script: str) -> dict[str, str]:
    """name -> version of each ``name==version`` in the script's ``TOP=( ... )`` array."""
    body = re.search(r"^TOP=\((.*?)^\)", script, re.S | re.M)
    if body is None:
        raise ValueError("no TOP=( ... ) array")
    words = shlex.split("\n".join(line.split("#")[0] for line in body[1].splitlines()))
    out = {}
    for w in words:
        name, sep, version = w.partition("==")
        if not sep:
            raise ValueError(f"TOP entry {w!r} is not pinned with ==")
        out[_norm(name.split("[")[0])] = version
    return out


def lock_pins(text: str) -> dict[str, tuple[str, str]]:
    """name -> (version, hash) of each entry; every entry must carry a sha256 hash."""
    joined = re.sub(r"\\\n\s*", " ", text)
    out = {}
    for line in joined.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        m = re.fullmatch(r"(\S+)==(\S+)\s+--hash=sha256:([0-9a-f]{64})", line.strip())
        if m is None:
            raise ValueError(f"lock line without an exact version and one sha256 hash: {line!r}")
        out[_norm(m[1])] = (m[2], m[3])
    return out


def test_every_top_level_requirement_is_locked_at_its_version() -> None:
    top = top_requirements(SCRIPT.read_text())
    pins = lock_pins(LOCK.read_text())
    assert {"osrf-pycommon", "psutil", "ros-jazzy-rclpy", "colcon-common-extensions"} <= set(top)
    wrong = {n: (v, pins.get(n, ("missing",))[0]) for n, v in top.items() if pins.get(n, ("",))[0] != v}
    assert wrong == {}, "TOP vs lock (run bash scripts/setup_ros_tier.sh --lock)"


def test_the_checks_see_an_unlocked_or_unhashed_requirement() -> None:
    script = SCRIPT.read_text().replace("psutil==7.2.2", "psutil==7.2.2 lark==1.3.1")
    assert top_requirements(script)["lark"] == "1.3.1" and "lark" not in lock_pins(LOCK.read_text())
    with pytest.raises(ValueError, match="not pinned"):
        top_requirements(SCRIPT.read_text().replace("psutil==7.2.2", "psutil"))
    with pytest.raises(ValueError, match="sha256"):
        lock_pins("psutil==7.2.2\n")


def _wheel(d: Path, name: str, version: str, content: bytes) -> str:
    (d / f"{name}-{version}-py3-none-any.whl").write_bytes(content)
    return hashlib.sha256(content).hexdigest()


def test_regeneration_keeps_pins_adds_new_names_and_rewrites_on_upgrade(tmp_path: Path) -> None:
    wheels, lock = tmp_path / "wheels", tmp_path / "lock.txt"
    wheels.mkdir()
    lock.write_text("# old header\nkept-pkg==1.0 \\\n    --hash=sha256:" + "a" * 64 + "\n")
    _wheel(wheels, "kept_pkg", "2.0", b"newer")  # resolved differently this time: ignored
    new_hash = _wheel(wheels, "New.Pkg", "0.3", b"new")
    LOCKGEN["main"](str(wheels), str(lock))
    pins = lock_pins(lock.read_text())
    assert pins == {"kept-pkg": ("1.0", "a" * 64), "new-pkg": ("0.3", new_hash)}
    assert lock.read_text().startswith(LOCKGEN["HEADER"])
    LOCKGEN["main"](str(wheels), str(lock), "--upgrade")
    assert lock_pins(lock.read_text())["kept-pkg"] == ("2.0", hashlib.sha256(b"newer").hexdigest())
