"""The rig configuration file: one ROS 2 parameter YAML (``/**: ros__parameters:`` and one section
per node) holding everything that differs between rigs: camera serials, the arms' serials, NICs,
FSP version and gripper wiring, the calibration folder, the dataset root, the policy device
(configs/rig/example.yaml; docs/rig.md). The launch files pass it to the nodes with
``<param from="$(var rig)"/>``; ``validate_rig`` checks it before anything starts.

Checks, all collected into one ``RigConfigError`` (one line per problem, each naming the node and
parameter):

* every section builds its node's own ``Params`` (``a2w.host.params.build_params``): names, types,
  ranges and choices as the node itself would refuse them;
* the camera node runs the realsense driver with one distinct serial per view;
* the arm node runs the flexiv driver with two distinct serials, an IPv4 NIC per arm, the FSP
  version and a gripper wiring the driver accepts (``FlexivParams.check``, ``gripper_problem``);
* the arm node and robot_state_node name the same calibration folder, which loads
  (``a2w.calib.files.load_calibration``), and no pose parameter disagrees with it;
* robot_state_node and teleop_node read the arm node's calibration folder; a pose or yaw set beside it agrees;
* the recorder's image size is the camera node's.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from a2w import nodes
from a2w.host.params import Params, build_params, load_param_file, specs
from a2w.msgs.cameras import FRONT, LEFT_WRIST, RIGHT_WRIST

# The nodes a rig configuration may configure (exec name = node name in launch/rig.launch.xml).
RIG_NODES = ("camera_node", "arm_node", "robot_state_node", "policy_node", "shadow_node", "monitor_node",
             "record_node", "teleop_node")
# Sections that must be present: the hardware and the frames.
REQUIRED = ("camera_node", "arm_node", "robot_state_node")
RIG_VIEWS = (FRONT, LEFT_WRIST, RIGHT_WRIST)
_SERIAL = re.compile(r"^_?[0-9A-Za-z]+$")


class RigConfigError(ValueError):
    """The rig configuration cannot drive a rig; ``problems`` lists why, one line each."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path, self.problems = path, problems
        super().__init__(f"{path}: {len(problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass
class RigConfig:
    """A validated rig configuration: each configured node's parameters, and what the preflight
    (``a2w.rig.check``) looks at."""

    path: Path
    params: dict[str, Params]  # node name -> its parameters (defaults where the file is silent)
    sections: set[str] = field(default_factory=set)  # nodes the file has a section for

    @property
    def camera_serials(self) -> dict[str, str]:
        """view -> serial (without the YAML-string guard '_')."""
        cam = self.params["camera_node"]
        return {v: s.removeprefix("_") for v, s in zip(cam.views, cam.realsense.serials)}  # type: ignore[attr-defined]

    @property
    def flexiv(self) -> Any:
        return self.params["arm_node"].flexiv  # type: ignore[attr-defined]

    @property
    def calibration(self) -> Path:
        return Path(self.params["arm_node"].calibration)  # type: ignore[attr-defined]

    @property
    def dataset_root(self) -> Path:
        return Path(self.params["record_node"].root or ".")  # type: ignore[attr-defined]

    @property
    def policy_device(self) -> str:
        return str(self.params["policy_node"].device)  # type: ignore[attr-defined]


def _sections(path: Path) -> set[str]:
    from a2w.host.files import read_input_file
    from a2w.host.params import MAX_PARAM_FILE_BYTES, load_yaml

    doc = load_yaml(read_input_file(path, MAX_PARAM_FILE_BYTES).decode())
    return {str(k).strip().lstrip("/") for k in (doc or {})} if isinstance(doc, dict) else set()


def load_rig(path: str | Path) -> RigConfig:
    """Read ``path`` and build every rig node's parameters from it; ``RigConfigError`` for a file
    that is unreadable, malformed, or names an unknown node or parameter (the rig checks are
    ``validate_rig``'s)."""
    path = Path(path)
    problems: list[str] = []
    try:
        sections = _sections(path)
    except (OSError, ValueError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise RigConfigError(path, [f"cannot read the rig configuration: {exc}"]) from None
    unknown = sorted(sections - set(RIG_NODES) - {"**"})
    if unknown:
        problems.append(f"unknown node section(s) {unknown}; a rig configuration configures {list(RIG_NODES)}")
    missing = [n for n in REQUIRED if n not in sections]
    if missing:
        problems.append(f"missing section(s) {missing} (the rig's cameras, arms and frames)")
    params: dict[str, Params] = {}
    for name in RIG_NODES:
        try:
            values = load_param_file(path, f"/{name}")
            params[name] = build_params(nodes.load(name).Params, values, name)
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        raise RigConfigError(path, problems)
    return RigConfig(path, params, sections)


def _ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def rig_problems(cfg: RigConfig) -> list[str]:
    """What keeps ``cfg`` from driving the real rig (empty: nothing)."""
    out: list[str] = []
    p = cfg.params
    cam = p["camera_node"]
    if cam.driver != "realsense":  # type: ignore[attr-defined]
        out.append(f"camera_node.driver: the rig's cameras are RealSense ('realsense'), got {cam.driver!r}")  # type: ignore[attr-defined]
    views, serials = list(cam.views), list(cam.realsense.serials)  # type: ignore[attr-defined]
    if sorted(views) != sorted(RIG_VIEWS):
        out.append(f"camera_node.views: the rig has the views {list(RIG_VIEWS)}, got {views}")
    if len(serials) != len(views):
        out.append(f"camera_node.realsense.serials: one serial per view ({len(views)}), got {len(serials)}")
    bad = [s for s in serials if not _SERIAL.match(s)]
    if bad:
        out.append(f"camera_node.realsense.serials: {bad} are not serial numbers (rs-enumerate-devices -s; "
                   "digits only are written with a leading '_')")
    bare = [s.removeprefix("_") for s in serials]
    if len(set(bare)) != len(bare):
        out.append(f"camera_node.realsense.serials: the same camera twice in {serials}")

    arm = p["arm_node"]
    fx = arm.flexiv  # type: ignore[attr-defined]
    if arm.backend != "flexiv":  # type: ignore[attr-defined]
        out.append(f"arm_node.backend: the rig's arms are Flexiv ('flexiv'), got {arm.backend!r}")  # type: ignore[attr-defined]
    try:
        fx.check()
    except ValueError as exc:
        out.append(f"arm_node.{exc}")
    problem = fx.gripper_problem()
    if problem:
        out.append(f"arm_node.{problem}")
    if not fx.software_version:
        out.append("arm_node.flexiv.software_version: the robots' FSP version (read in Flexiv Elements) is required; "
                   "the installed flexivrdk must match it")
    for side, nics in (("left", fx.left_nics), ("right", fx.right_nics)):
        if not nics:
            out.append(f"arm_node.flexiv.{side}_nics: name the IPv4 address of this host's NIC wired to the "
                       f"{side} arm (RDK then searches only there)")
        out.extend(f"arm_node.flexiv.{side}_nics: {n!r} is not an IPv4 address" for n in nics if not _ipv4(n))

    cal = str(arm.calibration)  # type: ignore[attr-defined]
    if not cal:
        out.append("arm_node.calibration: the rig's calibration folder (calibration/<rig>) is required: the "
                   "base poses and camera extrinsics come from it")
    for name in ("robot_state_node", "teleop_node"):
        given = p[name].calibration  # type: ignore[attr-defined]
        if given != cal:
            out.append(f"{name}.calibration: must be the arm node's folder {cal!r} (one source of truth), "
                       f"got {given!r}")
    if cal:
        out.extend(_calibration_problems(cfg, cal))

    rec = p["record_node"]
    if (rec.width, rec.height) != (cam.width, cam.height):  # type: ignore[attr-defined]
        out.append(f"record_node.width/height: must be the camera node's {cam.width}x{cam.height}, "  # type: ignore[attr-defined]
                   f"got {rec.width}x{rec.height}")  # type: ignore[attr-defined]
    return out


def _calibration_problems(cfg: RigConfig, folder: str) -> list[str]:
    from a2w.calib.files import CalibrationError
    from a2w.rig.extrinsics import (
        front_link_in_world,
        load_extrinsics,
        resolve_pose,
    )

    try:
        ext = load_extrinsics(folder)
    except CalibrationError as exc:
        return [f"arm_node.calibration: {exc}"]
    out = []
    for node in ("arm_node", "robot_state_node"):
        params = cfg.params[node]
        defaults = {s.name: s.default for s in specs(type(params))}
        poses = [(f"{a}_base_pose", ext.bases[a], f"{folder}/bases.yaml {a}") for a in ("left", "right")]
        if node == "robot_state_node":
            poses.append(("front_camera_pose", front_link_in_world(ext.front_optical), f"{folder}/front.yaml"))
        for name, calibrated, source in poses:
            try:
                resolve_pose(name, getattr(params, name), defaults[name], calibrated, source)
            except ValueError as exc:
                out.append(f"{node}.{exc}")
    teleop = cfg.params["teleop_node"]
    t_defaults = {s.name: s.default for s in specs(type(teleop))}
    for a in ("left", "right"):
        try:
            resolve_pose(f"{a}_base_pose", getattr(teleop, f"{a}_base_pose"), t_defaults[f"{a}_base_pose"],
                         ext.bases[a], f"{folder}/bases.yaml {a}")
        except ValueError as exc:
            out.append(f"teleop_node.{exc}")
    vr_yaw = ext.vr_yaw_deg
    if teleop.yaw != t_defaults["yaw"] and abs(teleop.yaw - vr_yaw) > 1e-6:  # type: ignore[attr-defined]
        out.append(f"teleop_node.yaw: {teleop.yaw} conflicts with {folder}/vr.yaml ({vr_yaw} deg); leave it "  # type: ignore[attr-defined]
                   "unset")
    return out


def validate_rig(path: str | Path) -> RigConfig:
    """The rig configuration at ``path``, checked for the real rig; ``RigConfigError`` listing every
    problem found."""
    cfg = load_rig(path)
    problems = rig_problems(cfg)
    if problems:
        raise RigConfigError(cfg.path, problems)
    return cfg
