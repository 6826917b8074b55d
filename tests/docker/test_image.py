"""The rig image's files, checked without Docker (no engine or base image here): hadolint over the
Dockerfile, the Dockerfile against the repository (every ROS dependency of the ament packages
installed, the pinned requirements it installs consistent with requirements/, every COPY source
present and let through the build context's ignore file), the compose file's host network, USB
and GPU access, and the host's udev rule against the image's user."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml
from packaging.requirements import Requirement

from tests.docker.support import COMPOSE, DOCKER, DOCKERFILE, ENTRYPOINT, ROOT, linter

IMAGE_PYTHON = "3.12"  # ros:jazzy-* is Ubuntu 24.04
ROS_PREFIX = "ros-jazzy-"
# rosdep keys of package.xml that the image satisfies from the pinned requirements instead of apt.
PIP_FOR_KEY = {"python3-numpy": "numpy", "python3-scipy": "scipy", "python3-yaml": "pyyaml",
               "python3-websockets": "websockets", "python3-opencv": "opencv-python-headless"}
DEPEND_TAGS = ("depend", "exec_depend", "build_depend", "buildtool_depend", "build_export_depend")


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile: continuations joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        pending += " " + stripped[:-1] if stripped.endswith("\\") else " " + stripped
        if not stripped.endswith("\\"):
            word, _, rest = pending.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
            pending = ""
    return out


def dockerfile() -> list[tuple[str, str]]:
    return instructions(DOCKERFILE.read_text())


def copies() -> list[tuple[list[str], list[str], str]]:
    """(flags, sources, destination) of each COPY."""
    out = []
    for word, rest in dockerfile():
        if word == "COPY":
            parts = shlex.split(rest)
            flags = [p for p in parts if p.startswith("--")]
            paths = [p for p in parts if not p.startswith("--")]
            out.append((flags, paths[:-1], paths[-1]))
    return out


def apt_packages() -> set[str]:
    pkgs: set[str] = set()
    for word, rest in dockerfile():
        if word == "RUN" and "apt-get install" in rest:
            for cmd in rest.split("&&"):
                words = shlex.split(cmd)
                if words[:2] == ["apt-get", "install"]:
                    pkgs |= {w for w in words[2:] if not w.startswith("-")}
    return pkgs


def read_requirements(path: Path, lines: list[str] | None = None) -> list[Requirement]:
    """Requirements of a pip file, following -r relative to it, markers evaluated for the image."""
    reqs: list[Requirement] = []
    for line in (lines if lines is not None else path.read_text().splitlines()):
        line = line.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-r"):
            reqs += read_requirements((path.parent / line[2:].strip()).resolve())
            continue
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate({"python_version": IMAGE_PYTHON}):
            reqs.append(req)
    return reqs


def pinned(reqs: list[Requirement]) -> dict[str, str]:
    out: dict[str, str] = {}
    for r in reqs:
        specs = list(r.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"{r}: not pinned with =="
        name = r.name.lower()
        assert name not in out, f"{name} is required twice"
        out[name] = specs[0].version
    return out


def image_requirements() -> dict[str, str]:
    """What the Dockerfile's pip install gets: base.txt through the Dockerfile's own grep -v filter,
    then docker/requirements-rig.txt."""
    run = next(rest for word, rest in dockerfile() if word == "RUN" and "requirements-rig.txt" in rest)
    found = re.search(r"grep -v '([^']+)' \S*requirements/base\.txt", run)
    assert found, "the Dockerfile no longer filters requirements/base.txt with grep -v"
    drop = re.compile(found.group(1))
    base = [ln for ln in (ROOT / "requirements/base.txt").read_text().splitlines() if not drop.search(ln)]
    return pinned(read_requirements(ROOT / "requirements/base.txt", base)
                  + read_requirements(DOCKER / "requirements-rig.txt"))


def test_hadolint_finds_nothing() -> None:
    proc = subprocess.run([linter("hadolint"), "--no-color", str(DOCKERFILE)], cwd=ROOT, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_base_image_tag_is_pinned() -> None:
    froms = [rest.split()[0] for word, rest in dockerfile() if word == "FROM"]
    assert froms
    for image in froms:
        name, _, tag = image.partition(":")
        assert tag and tag != "latest" and "@" not in name, f"FROM {image}: name a fixed tag"
        assert name == "ros" and tag.startswith("jazzy-"), f"FROM {image}: the rig runs ROS 2 Jazzy"


def test_apt_runs_clean_up_and_skip_recommends() -> None:
    for word, rest in dockerfile():
        if word == "RUN" and "apt-get install" in rest:
            assert "--no-install-recommends" in rest, rest
            assert "rm -rf /var/lib/apt/lists/*" in rest, f"apt lists left in the layer: {rest[:80]}"


def test_every_ros_dependency_of_the_packages_is_installed() -> None:
    ours = {ET.parse(p).getroot().findtext("name") for p in ROOT.glob("ros_ws/src/*/package.xml")}
    assert ours >= {"a2w", "a2w_interfaces"}
    apt = apt_packages()
    reqs = image_requirements()
    for xml in ROOT.glob("ros_ws/src/*/package.xml"):
        for tag in DEPEND_TAGS:
            for el in ET.parse(xml).getroot().iter(tag):
                key = el.text.strip()
                if key in ours:
                    continue
                if key.startswith("python3-"):
                    assert key in PIP_FOR_KEY, f"{xml}: {key}: say which pinned requirement provides it"
                    assert PIP_FOR_KEY[key] in reqs, f"{xml}: {key}: {PIP_FOR_KEY[key]} not installed by the image"
                else:
                    assert ROS_PREFIX + key.replace("_", "-") in apt, f"{xml}: {tag} {key} not installed by the image"


def test_the_image_installs_the_projects_pins_with_onnxruntime_gpu_for_onnxruntime() -> None:
    reqs = image_requirements()
    base = pinned(read_requirements(ROOT / "requirements/base.txt"))
    assert "onnxruntime" not in reqs, "onnxruntime and onnxruntime-gpu would overwrite each other's files"
    assert reqs["onnxruntime-gpu"] == base["onnxruntime"]
    assert {k: v for k, v in reqs.items() if k in base} == {k: v for k, v in base.items() if k != "onnxruntime"}
    for also in ("dev.txt", "flexiv.txt"):
        other = pinned([r for r in read_requirements(ROOT / "requirements" / also) if r.name.lower() not in base])
        for name, version in reqs.items():
            if name in other:
                assert version == other[name], f"{name}: image {version}, requirements/{also} {other[name]}"
    for needed in ("torch", "onnxruntime-gpu", "pyrealsense2", "flexivrdk"):
        assert needed in reqs


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or a folder above it decides."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    verdict = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern.lstrip("!").strip("/")
        regex = re.escape(pat).replace(r"\*\*/", "(?:.*/)?").replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        if any(re.fullmatch(regex, p) for p in prefixes):
            verdict = not negate
    return verdict


def test_every_copy_source_exists_and_reaches_the_build() -> None:
    ignore = DOCKERFILE.with_name("Dockerfile.dockerignore").read_text().splitlines()
    patterns = [ln.strip() for ln in ignore if ln.strip() and not ln.startswith("#")]
    for _, sources, _ in copies():
        for src in sources:
            assert (ROOT / src).exists(), f"COPY {src}: not in the repository"
            assert not ignored(src, patterns), f"COPY {src}: excluded by Dockerfile.dockerignore"
    for heavy in (".venv", "recordings", "build", ".git", "ros_ws/src/a2w/a2w/__pycache__", "models/a2world/x.pyc"):
        assert ignored(heavy, patterns), f"{heavy} would be sent to the Docker daemon"


def test_entrypoint_user_and_healthcheck() -> None:
    entry = json.loads(next(rest for word, rest in dockerfile() if word == "ENTRYPOINT"))
    flags, sources, dest = next(c for c in copies() if c[2] == entry[0])
    assert sources == [str(ENTRYPOINT.relative_to(ROOT))]
    assert any(re.fullmatch(r"--chmod=0?7[0-7]5", f) for f in flags), f"{dest} not executable"
    users = [rest for word, rest in dockerfile() if word == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image runs as root"
    assert any(word == "HEALTHCHECK" for word, _ in dockerfile()), "HEALTHCHECK (or HEALTHCHECK NONE and why)"
    # The entrypoint's default workspace setup is the one the Dockerfile builds and sources.
    default = re.search(r'A2W_WS_SETUP:-([^}"]+)', ENTRYPOINT.read_text()).group(1)
    assert f". {default}" in DOCKERFILE.read_text()


def test_compose_names_host_network_usb_and_gpu() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    rig = compose["services"]["rig"]
    assert (COMPOSE.parent / rig["build"]["context"]).resolve() == ROOT
    assert (ROOT / rig["build"]["dockerfile"]).resolve() == DOCKERFILE
    args = set(rig["build"].get("args", {}))
    declared = {rest.split("=")[0] for word, rest in dockerfile() if word == "ARG"}
    assert args <= declared, f"build args the Dockerfile does not declare: {args - declared}"
    assert rig["network_mode"] == "host" and rig["ipc"] == "host" and rig["init"] is True
    assert not rig.get("privileged"), "USB access is granted by cgroup rule, not privileged mode"
    mounts = {}
    for volume in rig["volumes"]:  # SOURCE:TARGET[:MODE]; SOURCE may be ${VAR:-default}
        source, target = re.sub(r":(ro|rw)$", "", volume).rsplit(":", 1)
        mounts[target] = source
    assert mounts["/dev/bus/usb"] == "/dev/bus/usb"
    assert "c 189:* rmw" in rig["device_cgroup_rules"], "USB character devices (major 189)"
    gpus = rig["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in gpus)
    assert {"/config", "/data"} <= set(mounts)


def test_the_udev_rule_grants_the_images_user() -> None:
    rules = [ln for ln in (DOCKER / "99-a2w-realsense.rules").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    products, groups = set(), set()
    for rule in rules:
        fields = dict(re.findall(r'([A-Za-z]+(?:\{\w+\})?)\s*[:=!+]?=\s*"([^"]*)"', rule))
        assert fields["SUBSYSTEMS"] == "usb" and fields["ATTRS{idVendor}"] == "8086", rule
        assert fnmatch.fnmatch(fields["MODE"], "06[6-7]0"), f"{rule}: group read/write, not world"
        products.add(fields["ATTRS{idProduct}"])
        groups.add(fields["GROUP"])
    assert {"0b3a", "0b5b"} <= products, "the rig's D435i (0b3a) and D405 (0b5b)"
    useradd = next(rest for word, rest in dockerfile() if word == "RUN" and "useradd" in rest)
    user_groups = set(re.search(r"--groups (\S+)", useradd).group(1).split(","))
    assert groups <= user_groups
