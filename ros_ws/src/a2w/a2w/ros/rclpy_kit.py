"""``MessageKit`` for rclpy's generated message classes (imported from their packages on demand)."""

from __future__ import annotations

import array
import functools
import importlib
from typing import Any

import numpy as np

from a2w.ros.codec import MessageKit

# array.array type codes of rclpy's primitive sequences (rosidl_generator_py).
_TYPECODES = {
    np.dtype(np.uint8): "B", np.dtype(np.int8): "b", np.dtype(np.uint16): "H",
    np.dtype(np.int16): "h", np.dtype(np.uint32): "I", np.dtype(np.int32): "i",
    np.dtype(np.uint64): "Q", np.dtype(np.int64): "q", np.dtype(np.float32): "f",
    np.dtype(np.float64): "d",
}


@functools.lru_cache(maxsize=None)
def message_class(type_name: str) -> type:
    """The rclpy class of ``pkg/msg/Name``, ``pkg/srv/Name`` or ``pkg/srv/Name_Request|_Response``."""
    try:
        pkg, kind, name = type_name.split("/")
    except ValueError:
        raise ValueError(f"type name must look like pkg/msg/Name, got {type_name!r}") from None
    try:
        module = importlib.import_module(f"{pkg}.{kind}")
    except ImportError as exc:
        raise LookupError(
            f"{type_name}: Python package {pkg} is not importable ({exc}); for a2w_interfaces, "
            "build it with colcon and source its install/setup.bash"
        ) from exc
    for suffix in ("_Request", "_Response", "_Event"):
        if kind == "srv" and name.endswith(suffix):
            return getattr(getattr(module, name[: -len(suffix)]), suffix[1:])
    return getattr(module, name)


class RclpyKit(MessageKit):
    """Builds rclpy messages with one copy of each primitive sequence (the ``frombytes`` in
    ``seq``). What rosidl_generator_py's generated classes do with a sequence field:

    * the constructor always copies it (``array.array('B', kwargs.get('data', []))``);
    * the setter stores an ``array.array`` of the field's type code as is, but only while the
      message's ``_check_fields`` is on (``ROS_PYTHON_CHECK_FIELDS=1``; off by default); with it
      off, it copies it, and with checks on, any other sequence is checked element by element
      (75-150 ms for a 640x480 image).

    So ``new`` builds the message without its ``array.array`` fields and stores them through the
    setter with checks on for that one assignment: a 640x480 rgb8 Image then costs one copy
    instead of two, 0.19 ms instead of 0.47 ms here (the serialisation's copy comes on top)."""

    def new(self, type_name: str, **fields: Any) -> Any:
        cls = message_class(type_name)
        arrays = {k: v for k, v in fields.items() if isinstance(v, array.array)}
        msg = cls(**{k: v for k, v in fields.items() if k not in arrays})
        if not arrays:
            return msg
        # Generators before Jazzy have no switch: their setters always store an array.array as is.
        checks = getattr(msg, "_check_fields", None)
        if checks is not None:
            msg._check_fields = True  # noqa: SLF001 - the generated setter's own switch
        try:
            for k, v in arrays.items():
                setattr(msg, k, v)  # typecode checked, stored without a copy
        finally:
            if checks is not None:
                msg._check_fields = checks  # noqa: SLF001
        return msg

    def seq(self, values: np.ndarray, dtype: type) -> Any:
        arr = np.ascontiguousarray(values, dtype=dtype)
        out = array.array(_TYPECODES[arr.dtype])
        out.frombytes(memoryview(arr.reshape(-1)).cast("B"))
        return out

    def fixed(self, values: np.ndarray, dtype: type) -> Any:
        return np.ascontiguousarray(values, dtype=dtype).reshape(-1)

    def byte(self, value: int) -> Any:
        return bytes([value])
