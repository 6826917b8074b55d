"""``$(...)`` substitutions of ROS 2 XML launch files (the subset we use; ros2_facts.md §5).

Supported: ``$(var NAME)``, ``$(env NAME [DEFAULT])``, ``$(find-pkg-share PKG)``, ``$(dirname)``,
``$(eval EXPR)`` (a bounded subset of Python, ``a2w.launch.safe_eval``). Substitutions nest
(``$(var $(env WHICH))``). Anything else is an error.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from a2w.launch.safe_eval import EvalError, evaluate

# A value ``<let name="v" value="$(var v)$(var v)"/>`` doubles per line; cap what one value may be.
MAX_VALUE_CHARS = 64 * 1024
MAX_NESTING = 16  # $(...) inside $(...)


class SubstitutionError(ValueError):
    """Raised with a message naming the substitution; the runner adds file and line."""


@dataclass
class Context:
    """What substitutions can see while one launch file is evaluated."""

    variables: Mapping[str, str]
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


def _eval(raw: str) -> str:
    # The expression is the raw text after "eval", not the shell-split arguments; one pair of
    # quotes around it is launch syntax ($(eval "'a' == 'b'")), not part of the expression.
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        raw = raw[1:-1]
    try:
        value = evaluate(raw)
    except EvalError as exc:
        shown = raw if len(raw) <= 80 else f"{raw[:40]}...{raw[-20:]} ({len(raw)} characters)"
        raise SubstitutionError(f"eval {shown!r}: {exc}") from None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_HANDLERS: dict[str, Callable[[Context, list[str]], str]] = {
    "var": _var,
    "env": _env,
    "find-pkg-share": _find_pkg_share,
    "dirname": lambda ctx, args: str(ctx.launch_file.parent),
}


def substitute(text: str, ctx: Context, _depth: int = 0) -> str:
    """Expand every ``$(...)`` in ``text`` (innermost first)."""
    if _depth > MAX_NESTING:
        raise SubstitutionError(f"substitutions nested deeper than {MAX_NESTING} levels")
    out: list[str] = []
    size = 0
    i = 0
    while i < len(text):
        start = text.find("$(", i)
        if start < 0:
            pieces = [text[i:]]
            i = len(text)
        else:
            end = _matching_paren(text, start + 1)
            pieces = [text[i:start], _apply(substitute(text[start + 2:end], ctx, _depth + 1), ctx)]
            i = end + 1
        size += sum(map(len, pieces))
        if size > MAX_VALUE_CHARS:
            raise SubstitutionError(f"substituted value too long (over {MAX_VALUE_CHARS} characters)")
        out.extend(pieces)
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
    raise SubstitutionError(f"unbalanced parentheses in {text[:200]!r}")


def _apply(inner: str, ctx: Context) -> str:
    name, _, rest = inner.strip().partition(" ")
    if name == "eval":
        return _eval(rest.strip())
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
