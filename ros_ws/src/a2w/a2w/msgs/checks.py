"""Field checks the message constructors share.

Each raises ``ValueError`` naming the field, so a malformed message is rejected where it enters
the system. Arrays come back as read-only copies so a consumer cannot mutate what another
consumer of the same message sees.
"""

from __future__ import annotations

import enum
import math
from typing import Any

import numpy as np

QUAT_UNIT_TOL = 1e-3


def frozen_array(
    name: str,
    value: Any,
    *,
    shape: tuple[int | None, ...] | None = None,
    dtype: type | np.dtype | None = None,
    finite: bool = True,
) -> np.ndarray:
    """Return ``value`` as a read-only array, checking shape (None = any), dtype and finiteness."""
    if dtype is not None and isinstance(value, np.ndarray) and value.dtype != np.dtype(dtype):
        if not (np.issubdtype(np.dtype(dtype), np.floating) and np.issubdtype(value.dtype, np.number)):
            raise ValueError(f"{name}: dtype must be {np.dtype(dtype)}, got {value.dtype}")
    try:
        arr = np.array(value, dtype=dtype, copy=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: cannot convert to an array ({exc})") from exc
    if shape is not None:
        ok = arr.ndim == len(shape) and all(s is None or s == d for s, d in zip(shape, arr.shape))
        if not ok:
            want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
            raise ValueError(f"{name}: shape must be {want}, got {arr.shape}")
    if finite and np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains non-finite values (NaN or inf)")
    arr.flags.writeable = False
    return arr


def finite_scalar(name: str, value: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: must be a number, got {value!r}") from exc
    if not math.isfinite(v):
        raise ValueError(f"{name}: must be finite, got {v}")
    return v


def unit_quaternion(name: str, value: Any) -> np.ndarray:
    q = frozen_array(name, value, shape=(4,), dtype=np.float64)
    norm = float(np.linalg.norm(q))
    if abs(norm - 1.0) > QUAT_UNIT_TOL:
        raise ValueError(f"{name}: quaternion must have unit norm, got norm {norm:.6f}")
    return q


def enum_member(name: str, cls: type[enum.Enum], value: Any) -> Any:
    try:
        return cls(value)
    except ValueError:
        raise ValueError(f"{name}: unknown value {value!r}; expected one of {[m.value for m in cls]}") from None
