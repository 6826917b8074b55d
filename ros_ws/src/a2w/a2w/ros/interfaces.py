"""The project's own interface definitions (``a2w_interfaces``) as rosbags types, and their hashes.

The ``.msg``/``.srv`` files are the single source: rosidl builds them on a rig, and here they are
loaded into a rosbags Jazzy typestore so CDR round trips and RIHS01 hashes can be checked without
ROS (ros2_facts.md §3, "One message contract, two toolchains").

rosbags has no service support, so a ``.srv`` is split into ``Name_Request`` / ``Name_Response``
messages, and the ``Name_Event`` and ``Name`` wrapper types that rosidl generates for the service
type description are synthesised the same way, which makes ``hash_rihs01`` give the service hash.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

PACKAGE = "a2w_interfaces"
_ENV = "A2W_INTERFACES_DIR"


def interfaces_dir() -> Path:
    """Directory holding ``msg/`` and ``srv/`` of ``a2w_interfaces``.

    Order: ``$A2W_INTERFACES_DIR``; the source tree next to this package (development checkout);
    ``share/a2w_interfaces`` under ``$AMENT_PREFIX_PATH`` (installed by colcon on a rig).
    """
    candidates: list[Path] = []
    if os.environ.get(_ENV):
        candidates.append(Path(os.environ[_ENV]))
    # a2w/ros/interfaces.py -> ros_ws/src/a2w/a2w/ros -> ros_ws/src
    candidates.append(Path(__file__).resolve().parents[3] / PACKAGE)
    for prefix in filter(None, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)):
        candidates.append(Path(prefix) / "share" / PACKAGE)
    for c in candidates:
        if (c / "msg").is_dir():
            return c
    raise FileNotFoundError(
        f"{PACKAGE} interface files not found; looked in {[str(c) for c in candidates]} "
        f"(set {_ENV} to the package directory)"
    )


def _split_srv(text: str, path: Path) -> tuple[str, str]:
    lines = text.split("\n")
    seps = [i for i, line in enumerate(lines) if line.strip() == "---"]
    if len(seps) != 1:
        raise ValueError(f"{path}: a .srv needs exactly one '---' separator, found {len(seps)}")
    return "\n".join(lines[: seps[0]]), "\n".join(lines[seps[0] + 1:])


def _renamed(value: Any, old: str, new: str) -> Any:
    """``value`` (a rosbags type definition) with every type name ``old...`` renamed ``new...``."""
    if isinstance(value, str):
        return new + value[len(old):] if value.startswith(old) else value
    if isinstance(value, tuple):
        return tuple(_renamed(v, old, new) for v in value)
    if isinstance(value, list):
        return [_renamed(v, old, new) for v in value]
    return value


def _service_types(name: str, text: str, path: Path) -> dict[str, Any]:
    req, resp = _split_srv(text, path)
    base = f"{PACKAGE}/srv/{name}"
    types: dict[str, Any] = {}
    types.update(get_types_from_msg(req, f"{base}_Request"))
    types.update(get_types_from_msg(resp, f"{base}_Response"))
    # The wrappers rosidl generates for every service (REP 2016 type description of a service).
    types.update(get_types_from_msg(
        f"service_msgs/ServiceEventInfo info\n{base}_Request[<=1] request\n"
        f"{base}_Response[<=1] response\n",
        f"{base}_Event",
    ))
    types.update(get_types_from_msg(
        f"{base}_Request request_message\n{base}_Response response_message\n"
        f"{base}_Event event_message\n",
        base,
    ))
    # rosbags files every name under ``pkg/msg/``; rosidl names service parts ``pkg/srv/Name_*``.
    wrong = f"{PACKAGE}/srv/msg/"
    return {_renamed(k, wrong, f"{PACKAGE}/srv/"): _renamed(v, wrong, f"{PACKAGE}/srv/")
            for k, v in types.items()}


def interface_types(root: Path | None = None) -> dict[str, Any]:
    """All message and service types of ``a2w_interfaces`` in rosbags' registration format."""
    root = root or interfaces_dir()
    types: dict[str, Any] = {}
    for path in sorted((root / "msg").glob("*.msg")):
        types.update(get_types_from_msg(path.read_text(), f"{PACKAGE}/msg/{path.stem}"))
    for path in sorted((root / "srv").glob("*.srv")):
        types.update(_service_types(path.stem, path.read_text(), path))
    if not types:
        raise ValueError(f"{root}: no .msg or .srv files")
    return types


def interface_names(root: Path | None = None) -> list[str]:
    """``pkg/msg/Name`` and ``pkg/srv/Name`` of every interface file (what rosidl generates)."""
    root = root or interfaces_dir()
    return [f"{PACKAGE}/msg/{p.stem}" for p in sorted((root / "msg").glob("*.msg"))] + [
        f"{PACKAGE}/srv/{p.stem}" for p in sorted((root / "srv").glob("*.srv"))
    ]


def _char_as_uint8(desc: Any) -> Any:
    if isinstance(desc, tuple) and len(desc) == 2 and desc[0] == "char":
        return ("uint8", desc[1])
    if isinstance(desc, tuple):
        return tuple(_char_as_uint8(d) for d in desc)
    return desc


@functools.lru_cache(maxsize=4)
def _typestore_for(root: str) -> Typestore:
    store = get_typestore(Stores.ROS2_JAZZY)
    store.register(interface_types(Path(root)))
    # rosidl turns a .msg ``char`` into uint8 before hashing; rosbags keeps a char type id, which
    # gave wrong hashes for every service Event (service_msgs/ServiceEventInfo has char[16]).
    # Found by the rclpy tier (tests/ros/test_rclpy.py); CDR layout is the same 1 byte.
    for name, (consts, fields) in list(store.fielddefs.items()):
        store.fielddefs[name] = (consts, [(f, _char_as_uint8(d)) for f, d in fields])
    return store


def jazzy_typestore(root: Path | None = None) -> Typestore:
    """The rosbags Jazzy typestore with ``a2w_interfaces`` registered (cached per directory)."""
    return _typestore_for(str((root or interfaces_dir()).resolve()))


def type_hashes(root: Path | None = None) -> dict[str, str]:
    """RIHS01 hash of every interface, including the request/response halves of each service."""
    store = jazzy_typestore(root)
    out: dict[str, str] = {}
    for name in interface_names(root):
        out[name] = store.hash_rihs01(name)
        if "/srv/" in name:
            for part in ("_Request", "_Response", "_Event"):
                out[name + part] = store.hash_rihs01(name + part)
    return out
