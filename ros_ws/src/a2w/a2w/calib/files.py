"""A rig's calibration folder: the YAML schema, its loader and its writers.

``calibration/<rig>/`` holds one file per concern (docs/calibration.md), each with the header
``{schema: a2w-calibration/1, kind: <kind>, rig: <name>, created: <ISO-8601 UTC>, method: <str>,
residuals: {...} (optional)}``:

==============  ============  ==================================================================
file            kind          body
==============  ============  ==================================================================
cameras.yaml    intrinsics    per view (front, left_wrist, right_wrist): serial, width, height,
                              fx, fy, cx, cy, distortion_model, distortion, source
handeye.yaml    handeye       per arm: ``<arm>_tcp -> cam_<arm>_wrist_color_optical_frame``
front.yaml      front         ``front``: ``world -> cam_front_color_optical_frame``
bases.yaml      bases         per arm: ``world -> <arm>_base``
vr.yaml         vr            ``yaw_deg``: the operator frame's yaw about world z (deg)
==============  ============  ==================================================================

A transform is ``{translation: [x, y, z] (m), rotation_xyzw: [x, y, z, w]}`` (ROS order, unit
to 1e-6) or ``{translation, rpy_deg: [roll, pitch, yaw]}`` (URDF fixed-axis angles, degrees);
optional ``parent``/``child`` keys, when present, must name the frames the file defines, so a
file cannot silently be read as the inverse transform. Every error is a ``CalibrationError``
whose message starts with the file and the field: ``calibration/sim/handeye.yaml:
left.translation: expected 3 numbers, got 2``. Writers replace a file atomically (temp + rename).
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import yaml
from scipy.spatial.transform import Rotation

from a2w import frames
from a2w.msgs.cameras import FRONT, LEFT_WRIST, RIGHT_WRIST

SCHEMA = "a2w-calibration/1"
ARMS: tuple[str, str] = ("left", "right")
VIEWS: tuple[str, str, str] = (FRONT, LEFT_WRIST, RIGHT_WRIST)
WRIST_VIEW: dict[str, str] = {"left": LEFT_WRIST, "right": RIGHT_WRIST}
SOURCES: tuple[str, ...] = ("factory", "measured", "sim")
DISTORTION_MODELS: dict[str, tuple[int, ...]] = {
    # realsense-ros's names; the allowed coefficient counts.
    "plumb_bob": (5,),
    "brown_conrady": (5,),
    "inverse_brown_conrady": (5,),
    "rational_polynomial": (8,),
    "opencv": (4, 5, 8, 12, 14),
}
FILES: dict[str, str] = {  # file name -> kind
    "cameras.yaml": "intrinsics",
    "handeye.yaml": "handeye",
    "front.yaml": "front",
    "bases.yaml": "bases",
    "vr.yaml": "vr",
}
_HEADER = ("schema", "kind", "rig", "created", "method", "residuals")
_UNIT_TOL = 1e-6


class CalibrationError(ValueError):
    """A calibration file is missing or malformed; the message names the file and the field."""

    def __init__(self, path: Path | str, field: str | None, message: str) -> None:
        self.path = str(path)
        self.field = field
        super().__init__(f"{self.path}: {field}: {message}" if field else f"{self.path}: {message}")


@dataclass(frozen=True, eq=False)
class Transform:
    """A rigid transform ``parent -> child``: the child frame's origin and axes in the parent."""

    translation: np.ndarray  # (3,) metres
    rotation_xyzw: np.ndarray  # (4,) unit quaternion, ROS order

    def __post_init__(self) -> None:
        t = np.asarray(self.translation, dtype=np.float64).reshape(3).copy()
        q = np.asarray(self.rotation_xyzw, dtype=np.float64).reshape(4).copy()
        q /= np.linalg.norm(q)
        if q[3] < 0:  # canonical sign: q and -q are the same rotation
            q = -q
        t.flags.writeable = False
        q.flags.writeable = False
        object.__setattr__(self, "translation", t)
        object.__setattr__(self, "rotation_xyzw", q)

    @classmethod
    def identity(cls) -> "Transform":
        return cls(np.zeros(3), np.array([0.0, 0.0, 0.0, 1.0]))

    @classmethod
    def from_matrix(cls, m: np.ndarray) -> "Transform":
        m = np.asarray(m, dtype=np.float64)
        if m.shape != (4, 4):
            raise ValueError(f"matrix: shape must be (4, 4), got {m.shape}")
        return cls(m[:3, 3], Rotation.from_matrix(m[:3, :3]).as_quat())

    @classmethod
    def from_xyz_rpy(cls, xyz_rpy: "list[float] | tuple[float, ...] | np.ndarray") -> "Transform":
        v = np.asarray(xyz_rpy, dtype=np.float64).reshape(6)
        return cls(v[:3], Rotation.from_euler("xyz", v[3:]).as_quat())

    def rotation(self) -> np.ndarray:
        return Rotation.from_quat(self.rotation_xyzw).as_matrix()

    def matrix(self) -> np.ndarray:
        """4x4 homogeneous matrix (maps child coordinates to parent coordinates)."""
        m = np.eye(4)
        m[:3, :3] = self.rotation()
        m[:3, 3] = self.translation
        return m

    def inverse(self) -> "Transform":
        return Transform.from_matrix(np.linalg.inv(self.matrix()))

    def __matmul__(self, other: "Transform") -> "Transform":
        return Transform.from_matrix(self.matrix() @ other.matrix())

    def to_xyz_rpy(self) -> list[float]:
        """``[x, y, z, roll, pitch, yaw]`` (m, rad; URDF fixed-axis angles): the form the arm
        node's and robot_state_node's ``*_base_pose`` parameters take."""
        rpy = Rotation.from_quat(self.rotation_xyzw).as_euler("xyz")
        return [*map(float, self.translation), *map(float, rpy)]

    def error_to(self, other: "Transform") -> tuple[float, float]:
        """(translation error in mm, rotation error in deg) between this and ``other``."""
        dt = float(np.linalg.norm(self.translation - other.translation)) * 1000.0
        dr = (Rotation.from_quat(self.rotation_xyzw).inv() * Rotation.from_quat(other.rotation_xyzw)).magnitude()
        return dt, math.degrees(float(dr))

    def to_yaml(self, parent: str | None = None, child: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if parent is not None:
            out["parent"] = parent
        if child is not None:
            out["child"] = child
        out["translation"] = [float(x) for x in self.translation]
        out["rotation_xyzw"] = [float(x) for x in self.rotation_xyzw]
        return out

    def __repr__(self) -> str:
        return f"Transform(translation={list(map(float, self.translation))}, " \
               f"rotation_xyzw={list(map(float, self.rotation_xyzw))})"


@dataclass(frozen=True)
class CameraIntrinsics:
    """A colour stream's pinhole model at ``width`` x ``height`` (pixel centres at integers)."""

    serial: str
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    distortion_model: str = "plumb_bob"
    distortion: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0)
    source: str = "factory"

    def camera_matrix(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def dist_coeffs(self) -> np.ndarray:
        """OpenCV distortion coefficients (k1, k2, p1, p2, k3, ...)."""
        return np.asarray(self.distortion, dtype=np.float64)

    def to_yaml(self) -> dict[str, Any]:
        return {"serial": self.serial, "width": int(self.width), "height": int(self.height),
                "fx": float(self.fx), "fy": float(self.fy), "cx": float(self.cx), "cy": float(self.cy),
                "distortion_model": self.distortion_model,
                "distortion": [float(x) for x in self.distortion], "source": self.source}


@dataclass(frozen=True)
class RigCalibration:
    """Everything in one rig's calibration folder, validated."""

    rig: str
    folder: Path
    cameras: dict[str, CameraIntrinsics]
    handeye: dict[str, Transform]  # arm -> <arm>_tcp -> cam_<arm>_wrist_color_optical_frame
    front: Transform  # world -> cam_front_color_optical_frame
    bases: dict[str, Transform]  # arm -> world -> <arm>_base
    vr_yaw_deg: float
    created: dict[str, datetime]  # file name -> its header's time (UTC)


# -- reading ------------------------------------------------------------------------------
class _Reader:
    """Field access into one file's parsed YAML, every error naming the file and the field."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, field: str | None, message: str) -> CalibrationError:
        return CalibrationError(self.path, field, message)

    def mapping(self, node: Any, field: str) -> Mapping[str, Any]:
        if not isinstance(node, Mapping):
            raise self.fail(field or None, f"expected a mapping, got {type(node).__name__}")
        return node

    def get(self, node: Mapping[str, Any], key: str, prefix: str) -> Any:
        field = f"{prefix}.{key}" if prefix else key
        if key not in node:
            raise self.fail(field, "missing")
        return node[key]

    def number(self, value: Any, field: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(field, f"expected a number, got {value!r}")
        x = float(value)
        if not math.isfinite(x):
            raise self.fail(field, f"must be finite, got {value!r}")
        return x

    def numbers(self, value: Any, field: str, counts: tuple[int, ...]) -> np.ndarray:
        want = " or ".join(map(str, counts))
        if not isinstance(value, (list, tuple)):
            raise self.fail(field, f"expected {want} numbers, got {value!r}")
        if len(value) not in counts:
            raise self.fail(field, f"expected {want} numbers, got {len(value)}")
        return np.array([self.number(v, f"{field}[{i}]") for i, v in enumerate(value)])

    def string(self, value: Any, field: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(field, f"expected a non-empty string, got {value!r}")
        return value

    def integer(self, value: Any, field: str, low: int = 1) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise self.fail(field, f"expected an integer >= {low}, got {value!r}")
        return int(value)

    def unknown(self, node: Mapping[str, Any], allowed: tuple[str, ...], prefix: str) -> None:
        extra = sorted(str(k) for k in node if k not in allowed)
        if extra:
            name = f"{prefix}.{extra[0]}" if prefix else extra[0]
            raise self.fail(name, f"unknown field (known: {', '.join(allowed)})")

    def transform(self, node: Any, field: str, parent: str, child: str) -> Transform:
        node = self.mapping(node, field)
        self.unknown(node, ("parent", "child", "translation", "rotation_xyzw", "rpy_deg"), field)
        for key, want in (("parent", parent), ("child", child)):
            if key in node and node[key] != want:
                raise self.fail(f"{field}.{key}", f"expected {want!r}, got {node[key]!r}")
        t = self.numbers(self.get(node, "translation", field), f"{field}.translation", (3,))
        has_q, has_rpy = "rotation_xyzw" in node, "rpy_deg" in node
        if has_q == has_rpy:
            raise self.fail(f"{field}.rotation_xyzw", "exactly one of rotation_xyzw or rpy_deg is required"
                            + (", got both" if has_q else ", got neither"))
        if has_rpy:
            rpy = self.numbers(node["rpy_deg"], f"{field}.rpy_deg", (3,))
            q = Rotation.from_euler("xyz", np.radians(rpy)).as_quat()
        else:
            q = self.numbers(node["rotation_xyzw"], f"{field}.rotation_xyzw", (4,))
            norm = float(np.linalg.norm(q))
            if abs(norm - 1.0) > _UNIT_TOL:
                raise self.fail(f"{field}.rotation_xyzw", f"not a unit quaternion (norm {norm:.9g}; tolerance 1e-6)")
        return Transform(t, q)


def _parse_time(r: _Reader, value: Any) -> datetime:
    if isinstance(value, datetime):
        t = value
    elif isinstance(value, str):
        try:
            t = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise r.fail("created", f"not an ISO-8601 time: {value!r}") from None
    else:
        raise r.fail("created", f"expected an ISO-8601 UTC time, got {value!r}")
    if t.tzinfo is None:
        raise r.fail("created", f"needs a time zone (UTC, e.g. 2026-12-02T00:00:00Z), got {value!r}")
    return t.astimezone(timezone.utc)


def _read(path: Path, kind: str) -> tuple[_Reader, Mapping[str, Any], dict[str, Any]]:
    """Parse ``path``, check its header; the reader, the body (non-header keys) and the header."""
    r = _Reader(path)
    if not path.is_file():
        raise r.fail(None, f"missing file (a calibration folder needs {', '.join(FILES)})")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise r.fail(None, f"not valid YAML: {exc}") from None
    doc = r.mapping(doc, "")
    schema = r.get(doc, "schema", "")
    if schema != SCHEMA:
        raise r.fail("schema", f"expected {SCHEMA!r}, got {schema!r}")
    got = r.get(doc, "kind", "")
    if got != kind:
        raise r.fail("kind", f"expected {kind!r} for {path.name}, got {got!r}")
    header = {"rig": r.string(r.get(doc, "rig", ""), "rig"),
              "created": _parse_time(r, r.get(doc, "created", "")),
              "method": r.string(r.get(doc, "method", ""), "method")}
    residuals = doc.get("residuals", {})
    if residuals is None:
        residuals = {}
    header["residuals"] = dict(r.mapping(residuals, "residuals"))
    body = {k: v for k, v in doc.items() if k not in _HEADER}
    return r, body, header


def read_cameras(path: Path | str) -> tuple[dict[str, CameraIntrinsics], dict[str, Any]]:
    """``cameras.yaml``: intrinsics per view, and the header."""
    r, body, header = _read(Path(path), "intrinsics")
    r.unknown(body, VIEWS, "")
    out: dict[str, CameraIntrinsics] = {}
    for view in VIEWS:
        node = r.mapping(r.get(body, view, ""), view)
        keys = ("serial", "width", "height", "fx", "fy", "cx", "cy", "distortion_model", "distortion", "source")
        r.unknown(node, keys, view)
        serial = r.get(node, "serial", view)
        if isinstance(serial, int) and not isinstance(serial, bool):
            serial = str(serial)  # an unquoted serial number reads as an integer
        serial = r.string(serial, f"{view}.serial")
        width = r.integer(r.get(node, "width", view), f"{view}.width")
        height = r.integer(r.get(node, "height", view), f"{view}.height")
        vals = {k: r.number(r.get(node, k, view), f"{view}.{k}") for k in ("fx", "fy", "cx", "cy")}
        for k in ("fx", "fy"):
            if vals[k] <= 0:
                raise r.fail(f"{view}.{k}", f"must be positive, got {vals[k]}")
        model = r.string(r.get(node, "distortion_model", view), f"{view}.distortion_model")
        if model not in DISTORTION_MODELS:
            raise r.fail(f"{view}.distortion_model", f"unknown model {model!r}; known: {', '.join(DISTORTION_MODELS)}")
        dist = r.numbers(r.get(node, "distortion", view), f"{view}.distortion", DISTORTION_MODELS[model])
        source = r.string(r.get(node, "source", view), f"{view}.source")
        if source not in SOURCES:
            raise r.fail(f"{view}.source", f"expected one of {', '.join(SOURCES)}, got {source!r}")
        out[view] = CameraIntrinsics(serial, width, height, vals["fx"], vals["fy"], vals["cx"], vals["cy"],
                                     model, tuple(float(x) for x in dist), source)
    return out, header


def read_handeye(path: Path | str) -> tuple[dict[str, Transform], dict[str, Any]]:
    """``handeye.yaml``: per arm, the wrist camera's optical frame in the arm's TCP frame."""
    r, body, header = _read(Path(path), "handeye")
    r.unknown(body, ARMS, "")
    return {arm: r.transform(r.get(body, arm, ""), arm, frames.tcp_frame(arm),
                             frames.optical_frame(WRIST_VIEW[arm])) for arm in ARMS}, header


def read_front(path: Path | str) -> tuple[Transform, dict[str, Any]]:
    """``front.yaml``: the front camera's optical frame in the world."""
    r, body, header = _read(Path(path), "front")
    r.unknown(body, (FRONT,), "")
    return r.transform(r.get(body, FRONT, ""), FRONT, frames.WORLD, frames.optical_frame(FRONT)), header


def read_bases(path: Path | str) -> tuple[dict[str, Transform], dict[str, Any]]:
    """``bases.yaml``: per arm, its base frame in the world."""
    r, body, header = _read(Path(path), "bases")
    r.unknown(body, ARMS, "")
    return {arm: r.transform(r.get(body, arm, ""), arm, frames.WORLD, frames.base_frame(arm))
            for arm in ARMS}, header


def read_vr(path: Path | str) -> tuple[float, dict[str, Any]]:
    """``vr.yaml``: the operator frame's yaw about world z (deg)."""
    r, body, header = _read(Path(path), "vr")
    r.unknown(body, ("yaw_deg",), "")
    return r.number(r.get(body, "yaw_deg", ""), "yaw_deg"), header


def load_calibration(folder: Path | str) -> RigCalibration:
    """Read and validate every file of a rig's calibration folder; ``CalibrationError`` names the
    file and the field of the first problem (a missing file included)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CalibrationError(folder, None, "not a calibration folder (no such directory)")
    cameras, h_cam = read_cameras(folder / "cameras.yaml")
    handeye, h_he = read_handeye(folder / "handeye.yaml")
    front, h_front = read_front(folder / "front.yaml")
    bases, h_bases = read_bases(folder / "bases.yaml")
    vr_yaw, h_vr = read_vr(folder / "vr.yaml")
    headers = {"cameras.yaml": h_cam, "handeye.yaml": h_he, "front.yaml": h_front, "bases.yaml": h_bases,
               "vr.yaml": h_vr}
    rig = h_cam["rig"]
    for name, h in headers.items():
        if h["rig"] != rig:
            raise CalibrationError(folder / name, "rig", f"expected {rig!r} (as cameras.yaml), got {h['rig']!r}")
    return RigCalibration(rig=rig, folder=folder, cameras=cameras, handeye=handeye, front=front, bases=bases,
                          vr_yaw_deg=vr_yaw, created={n: h["created"] for n, h in headers.items()})


# -- writing ------------------------------------------------------------------------------
def utc_now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class _Dumper(yaml.SafeDumper):
    pass


def _flow_lists(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    # Number lists on one line: a transform reads as [x, y, z].
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)


_Dumper.add_representer(list, _flow_lists)


def _write(folder: Path | str, name: str, rig: str, method: str, body: Mapping[str, Any],
           residuals: Mapping[str, Any] | None, created: str | None) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {"schema": SCHEMA, "kind": FILES[name], "rig": rig, "created": created or utc_now(),
                           "method": method}
    if residuals:
        doc["residuals"] = {str(k): (float(v) if isinstance(v, (float, np.floating)) else v)
                            for k, v in residuals.items()}
    doc.update(body)
    text = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1000)
    path = folder / name
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=folder)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_cameras(folder: Path | str, rig: str, cameras: Mapping[str, CameraIntrinsics], method: str,
                  residuals: Mapping[str, Any] | None = None, created: str | None = None) -> Path:
    body = {view: cameras[view].to_yaml() for view in VIEWS}
    return _write(folder, "cameras.yaml", rig, method, body, residuals, created)


def write_handeye(folder: Path | str, rig: str, handeye: Mapping[str, Transform], method: str,
                  residuals: Mapping[str, Any] | None = None, created: str | None = None) -> Path:
    body = {arm: handeye[arm].to_yaml(frames.tcp_frame(arm), frames.optical_frame(WRIST_VIEW[arm]))
            for arm in ARMS}
    return _write(folder, "handeye.yaml", rig, method, body, residuals, created)


def write_front(folder: Path | str, rig: str, front: Transform, method: str,
                residuals: Mapping[str, Any] | None = None, created: str | None = None) -> Path:
    body = {FRONT: front.to_yaml(frames.WORLD, frames.optical_frame(FRONT))}
    return _write(folder, "front.yaml", rig, method, body, residuals, created)


def write_bases(folder: Path | str, rig: str, bases: Mapping[str, Transform], method: str,
                residuals: Mapping[str, Any] | None = None, created: str | None = None) -> Path:
    body = {arm: bases[arm].to_yaml(frames.WORLD, frames.base_frame(arm)) for arm in ARMS}
    return _write(folder, "bases.yaml", rig, method, body, residuals, created)


def write_vr(folder: Path | str, rig: str, yaw_deg: float, method: str,
             residuals: Mapping[str, Any] | None = None, created: str | None = None) -> Path:
    return _write(folder, "vr.yaml", rig, method, {"yaw_deg": float(yaw_deg)}, residuals, created)
