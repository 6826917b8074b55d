"""Evaluation reports as strict JSON: a number that is not finite (a time to success of a failed
episode, a PSNR of identical frames) is written as null. Python's default writes NaN and Infinity,
which JSON does not have, and which other readers (jq, JavaScript, pandas' strict mode) refuse."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


def finite_or_null(value: Any) -> Any:
    """``value`` with every non-finite float inside it (dicts, lists, tuples) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(v) for v in value]
    return value


def write_report(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(finite_or_null(payload), indent=2, allow_nan=False) + "\n")
