"""``$(...)`` substitutions of ROS 2 XML launch files (the subset we use; ros2_facts.md §5).

Supported: ``$(var NAME)``, ``$(env NAME [DEFAULT])``, ``$(find-pkg-share PKG)``, ``$(dirname)``,
``$(eval EXPR)``. Substitutions nest (``$(var $(env WHICH))``). Anything else is an error.
"""

from __future__ import annotations

import math
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping


class SubstitutionError(ValueError):
    """Raised with a message naming the substitution; the runner adds file and line."""


@dataclass
class Context:
    """What substitutions can see while one launch file is evaluated."""

    variables: dict[str, str]
    launch_file: Path
    package_shares: Mapping[str, Path]
    env: Mapping[str, str] = field(default_factory=lambda: os.environ)


def _find_pkg_share(ctx: Context, args: list[str]) -> str:
    if len(args) != 1:
        raise SubstitutionError("find-pkg-share takes exactly one package name")
    try:
        return str(ctx.package_shares[args[0]])
    except KeyError:
        raise SubstitutionError(
            f"find-pkg-share: unknown package {args[0]!r}; known: {sorted(ctx.package_shares)}"
        ) from None


def _var(ctx: Context, args: list[str]) -> str:
    if len(args) != 1:
        raise SubstitutionError("var takes exactly one name")
    try:
        return ctx.variables[args[0]]
    except KeyError:
        raise SubstitutionError(
            f"undefined launch argument or variable {args[0]!r}; defined: {sorted(ctx.variables)}"
        ) from None


def _env(ctx: Context, args: list[str]) -> str:
    if len(args) not in (1, 2):
        raise SubstitutionError("env takes a name and an optional default")
    if args[0] in ctx.env:
        return ctx.env[args[0]]
    if len(args) == 2:
        return args[1]
    raise SubstitutionError(f"environment variable {args[0]!r} is not set and has no default")


_EVAL_NAMES = {k: getattr(math, k) for k in ("pi", "e", "sqrt", "sin", "cos", "tan", "radians", "degrees")}
_EVAL_NAMES.update({"abs": abs, "min": min, "max": max, "round": round, "int": int, "float": float,
                    "str": str, "True": True, "False": False, "true": True, "false": False})


def _eval(ctx: Context, args: list[str], raw: str) -> str:
    # The expression is the raw text after "eval", not the shell-split arguments.
    try:
        value = eval(raw, {"__builtins__": {}}, dict(_EVAL_NAMES))  # noqa: S307 - trusted launch files
    except Exception as exc:  # noqa: BLE001
        raise SubstitutionError(f"eval {raw!r} failed: {type(exc).__name__}: {exc}") from None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_HANDLERS: dict[str, Callable[[Context, list[str]], str]] = {
    "var": _var,
    "env": _env,
    "find-pkg-share": _find_pkg_share,
    "dirname": lambda ctx, args: str(ctx.launch_file.parent),
}


def substitute(text: str, ctx: Context) -> str:
    """Expand every ``$(...)`` in ``text`` (innermost first)."""
    out = []
    i = 0
    while i < len(text):
        start = text.find("$(", i)
        if start < 0:
            out.append(text[i:])
            break
        out.append(text[i:start])
        end = _matching_paren(text, start + 1)
        inner = substitute(text[start + 2:end], ctx)
        out.append(_apply(inner, ctx))
        i = end + 1
    return "".join(out)


def _matching_paren(text: str, open_idx: int) -> int:
    depth = 0
    for j in range(open_idx, len(text)):
        if text[j] == "(":
            depth += 1
        elif text[j] == ")":
            depth -= 1
            if depth == 0:
                return j
    raise SubstitutionError(f"unbalanced parentheses in {text!r}")


def _apply(inner: str, ctx: Context) -> str:
    name, _, rest = inner.strip().partition(" ")
    if name == "eval":
        return _eval(ctx, [], rest.strip().strip("'\""))
    handler = _HANDLERS.get(name)
    if handler is None:
        raise SubstitutionError(
            f"unsupported substitution $({name} ...); supported: {sorted([*_HANDLERS, 'eval'])}"
        )
    try:
        args = shlex.split(rest)
    except ValueError as exc:
        raise SubstitutionError(f"cannot parse arguments of $({inner}): {exc}") from None
    return handler(ctx, args)


def parse_bool(value: str, what: str) -> bool:
    """Launch-file truth values: true/false/1/0 (case-insensitive)."""
    v = value.strip().lower()
    if v in ("true", "1"):
        return True
    if v in ("false", "0"):
        return False
    raise SubstitutionError(f"{what}: expected true/false, got {value!r}")
