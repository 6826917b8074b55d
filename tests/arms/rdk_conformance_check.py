"""Runs inside the RDK venv (Python 3.12 + pinned flexivrdk): checks every RDK_SYMBOLS entry
against the installed package, and the stand-in robot (fake_flexivrdk) against the same entries.
Prints a JSON report on stdout. Imports only flexivrdk and stdlib-only a2w modules; constructs
no Robot (nothing here touches the network)."""

from __future__ import annotations

import importlib
import inspect
import json
import sys
from typing import Any

from a2w.arms.flexiv.rdk_api import RDK_SYMBOLS


def _split_top(s: str) -> list[str]:
    out, depth, cur = [], 0, ""
    for ch in s:
        if ch in "[(<{":
            depth += 1
        elif ch in "])>}":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur)
    return out


def doc_params(fn: Any, name: str) -> list[str] | None:
    """Argument names after ``self`` from a pybind11 docstring signature (or inspect for Python)."""
    try:
        sig = inspect.signature(fn)
        names = [p for p in sig.parameters if p not in ("self", "args", "kwargs")]
        if "args" not in sig.parameters:
            return names
    except (TypeError, ValueError):
        pass
    doc = (getattr(fn, "__doc__", "") or "").strip()
    for line in doc.splitlines():
        line = line.strip()
        if line[:3].rstrip(".").isdigit():  # an overload: "1. name(...)"
            line = line.split(" ", 1)[1]
        if line.startswith(name + "(") and "*args" not in line:
            inner = line[len(name) + 1: line.rindex(")")] if ")" in line else ""
            inner = inner.rsplit(") ->", 1)[0]
            parts = [p.split(":")[0].split("=")[0].strip() for p in _split_top(inner)]
            return [p for p in parts if p and p not in ("self", "/")]
    return None


def check(module: Any) -> list[str]:
    problems = []
    for key, sym in RDK_SYMBOLS.items():
        if sym.kind == "attr":
            if not hasattr(module, key):
                problems.append(f"{key}: missing module attribute")
            continue
        cls_name, _, member = key.partition(".")
        cls = getattr(module, cls_name, None)
        if cls is None:
            problems.append(f"{key}: class {cls_name} missing")
            continue
        if sym.kind == "class":
            if not isinstance(cls, type):
                problems.append(f"{key}: not a class")
            continue
        if sym.kind == "field":
            try:
                obj = cls()
            except Exception as exc:  # noqa: BLE001
                problems.append(f"{key}: cannot default-construct {cls_name} ({exc})")
                continue
            if not hasattr(obj, member):
                problems.append(f"{key}: field missing")
            continue
        attr = getattr(cls, member, None)
        if attr is None:
            problems.append(f"{key}: missing")
            continue
        if sym.kind == "enum":
            if not hasattr(attr, "name") or getattr(attr, "name") != member:
                problems.append(f"{key}: not an enum member")
            continue
        got = doc_params(attr, member)
        if got is None:
            problems.append(f"{key}: cannot read the signature")
        elif tuple(got) != sym.params:
            problems.append(f"{key}: arguments {tuple(got)} != expected {sym.params}")
    return problems


def main() -> int:
    report: dict[str, Any] = {"python": sys.version.split()[0]}
    real = importlib.import_module("flexivrdk")
    from importlib.metadata import version

    report["version"] = version("flexivrdk")
    report["module_version"] = getattr(real, "__version__", "")
    report["real_problems"] = check(real)
    try:
        fake = importlib.import_module("fake_flexivrdk")
        report["fake_problems"] = check(fake)
    except ImportError as exc:
        report["fake_problems"] = [f"cannot import the stand-in: {exc}"]
    sys.stdout.write(json.dumps(report) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
