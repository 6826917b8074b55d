"""``$(eval EXPR)``: a whitelisted subset of Python expressions, in bounded time and memory.

ROS 2 hands the expression to Python's ``eval``. A launch file is input, though, and there
``9**9**9`` runs for hours and ``'a'*10**10`` exhausts memory. Here the expression is parsed with
``ast`` and only literals, arithmetic, comparisons, boolean logic, conditionals and calls of a few
functions are evaluated; every value that could grow is size-checked before it is computed.
"""

from __future__ import annotations

import ast
import math
import operator
from typing import Any, Callable

MAX_CHARS = 1000  # of the expression text
MAX_NODES = 300  # of its syntax tree
MAX_DEPTH = 50  # nesting of its syntax tree (also bounds this module's recursion)
MAX_INT_BITS = 256  # ROS integer parameters are 64-bit; this leaves room for intermediates
MAX_STR = 10_000  # characters of any string value
MAX_ROUND_DIGITS = 400  # round(5, -10**9) would compute 10**(10**9)

FUNCTIONS: dict[str, Callable[..., Any]] = {
    **{k: getattr(math, k) for k in ("sqrt", "sin", "cos", "tan", "radians", "degrees")},
    "abs": abs, "min": min, "max": max, "round": round, "int": int, "float": float, "str": str,
}
CONSTANTS: dict[str, Any] = {"pi": math.pi, "e": math.e, "True": True, "False": False,
                             "true": True, "false": False}

_BINARY: dict[type, tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Add: ("+", operator.add), ast.Sub: ("-", operator.sub), ast.Mult: ("*", operator.mul),
    ast.Div: ("/", operator.truediv), ast.FloorDiv: ("//", operator.floordiv),
    ast.Mod: ("%", operator.mod), ast.Pow: ("**", operator.pow),
}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.USub: operator.neg, ast.UAdd: operator.pos,
                                            ast.Not: operator.not_}
_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
}


class EvalError(ValueError):
    """The expression is refused or failed; the message says why."""


def evaluate(expr: str) -> Any:
    """Evaluate ``expr``; ``EvalError`` for anything outside the subset or over a limit."""
    if len(expr) > MAX_CHARS:
        raise EvalError(f"expression too long ({len(expr)} characters; the limit is {MAX_CHARS})")
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as exc:
        raise EvalError(f"syntax error: {exc.msg}") from None
    except (ValueError, MemoryError, RecursionError) as exc:
        raise EvalError(f"cannot parse: {type(exc).__name__}: {exc}") from None
    _check_shape(tree)
    try:
        return _ev(tree.body)
    except EvalError:
        raise
    except (ArithmeticError, TypeError, ValueError) as exc:
        raise EvalError(f"{type(exc).__name__}: {exc}") from None


def _check_shape(tree: ast.AST) -> None:
    # Iterative, so that the check itself cannot overflow the stack.
    stack = [(tree, 0)]
    count = 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if depth > MAX_DEPTH:
            raise EvalError(f"expression nested deeper than {MAX_DEPTH} levels")
        if count > MAX_NODES:
            raise EvalError(f"expression has more than {MAX_NODES} parts")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def _checked(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        if value.bit_length() > MAX_INT_BITS:
            raise EvalError(f"integer too large ({value.bit_length()} bits; the limit is {MAX_INT_BITS})")
        return value
    if isinstance(value, str):
        if len(value) > MAX_STR:
            raise EvalError(f"string too long ({len(value)} characters; the limit is {MAX_STR})")
        return value
    if isinstance(value, (list, tuple)):
        return value
    if isinstance(value, complex):
        raise EvalError("complex numbers are not supported")
    raise EvalError(f"values of type {type(value).__name__} are not supported")


def _ev(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant):
        return _checked(node.value)
    if isinstance(node, ast.Name):
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        if node.id in FUNCTIONS:
            raise EvalError(f"{node.id} is a function: call it")
        raise EvalError(f"unknown name {node.id!r}; known: {sorted([*CONSTANTS, *FUNCTIONS])}")
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _binary(node.op, _ev(node.left), _ev(node.right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _checked(_UNARY[type(node.op)](_ev(node.operand)))
    if isinstance(node, ast.BoolOp):
        value = _ev(node.values[0])
        for rest in node.values[1:]:
            if bool(value) == isinstance(node.op, ast.Or):
                break
            value = _ev(rest)
        return value
    if isinstance(node, ast.Compare):
        left = _ev(node.left)
        for op, right_node in zip(node.ops, node.comparators):
            right = _ev(right_node)
            if type(op) not in _COMPARE:
                raise EvalError(f"comparison {type(op).__name__} is not allowed")
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.IfExp):
        return _ev(node.body) if _ev(node.test) else _ev(node.orelse)
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_ev(e) for e in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.Call):
        return _call(node)
    raise EvalError(f"{type(node).__name__} is not allowed in $(eval); allowed: literals, arithmetic, "
                    f"comparisons, and/or/not, x if c else y, calls of {sorted(FUNCTIONS)}")


def _binary(op: ast.operator, a: Any, b: Any) -> Any:
    symbol, fn = _BINARY[type(op)]
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        raise EvalError(f"operator {symbol} is not allowed on lists")
    if isinstance(a, str) or isinstance(b, str):
        if symbol == "*" and isinstance(a, int) != isinstance(b, int):
            text, times = (a, b) if isinstance(a, str) else (b, a)
            if len(text) * max(times, 0) > MAX_STR:
                raise EvalError(f"string too long ({len(text)} characters * {times}; the limit is {MAX_STR})")
        elif symbol != "+":
            # '%' on a string is formatting ('%0999999999d' % 1 allocates a gigabyte).
            raise EvalError(f"operator {symbol} is not allowed on strings")
    elif (symbol == "**" and isinstance(a, int) and isinstance(b, int) and b > 0
          and (abs(a).bit_length() - 1) * b > MAX_INT_BITS):
        raise EvalError(f"integer power too large (({a}) ** {b} exceeds {MAX_INT_BITS} bits)")
    return _checked(fn(a, b))


def _call(node: ast.Call) -> Any:
    name = node.func.id if isinstance(node.func, ast.Name) else None
    if name not in FUNCTIONS:
        raise EvalError(f"calling {ast.unparse(node.func)[:80]!r} is not allowed; functions: {sorted(FUNCTIONS)}")
    if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
        raise EvalError(f"{name}(): keyword and * arguments are not allowed")
    args = [_ev(a) for a in node.args]
    if name == "round" and len(args) == 2 and isinstance(args[1], int) and abs(args[1]) > MAX_ROUND_DIGITS:
        raise EvalError(f"round(): ndigits {args[1]} is outside ±{MAX_ROUND_DIGITS}")
    return _checked(FUNCTIONS[name](*args))
