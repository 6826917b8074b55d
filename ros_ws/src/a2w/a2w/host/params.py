"""Typed component parameters, loaded from ROS 2 parameter YAML and launch files.

A component declares its parameters as a dataclass deriving from ``Params``; each field may carry
a description and a range through ``param(...)``. The same declarations become ROS parameter
descriptors on a rig. Values from files are type-checked against the field types: an unknown
name, a wrong type or a non-finite float (nan, inf) is an error naming the node and the parameter,
not a silent default.

A field typed with a ``ParamGroup`` declares that group's fields under its own name, as ROS's dotted
parameter names (``realsense.serials``: a nested map in parameter YAML, nested ``<param>`` tags or a
dotted name in a launch file): how a driver declares its own parameters next to the node's.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from a2w.host.files import read_input_file


@dataclass
class ParamGroup:
    """Base of a group of parameters that a ``Params`` field declares under the field's name."""


def param(
    default: Any,
    description: str = "",
    *,
    low: float | None = None,
    high: float | None = None,
    choices: tuple[Any, ...] | None = None,
) -> Any:
    """A parameter field with a description and an optional range or set of choices."""
    meta = {"description": description, "low": low, "high": high, "choices": choices}
    if isinstance(default, (list, dict, ParamGroup)):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclass
class Params:
    """Base of every component's parameters. ``use_sim_time`` exists on every ROS node too."""

    use_sim_time: bool = param(False, "stamp and time everything with the simulator's clock")


@dataclass(frozen=True)
class ParamSpec:
    name: str
    type: Any
    default: Any
    description: str
    low: float | None
    high: float | None
    choices: tuple[Any, ...] | None


def _is_group(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, ParamGroup)


def specs(cls: type[Params] | type[ParamGroup]) -> list[ParamSpec]:
    """Parameter declarations of a Params dataclass, in field order; a group's fields are named
    ``<group>.<field>`` in its place."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if _is_group(hints[f.name]):
            out.extend(dataclasses.replace(s, name=f"{f.name}.{s.name}") for s in specs(hints[f.name]))
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        else:
            default = None
        m = f.metadata
        out.append(ParamSpec(f.name, hints[f.name], default, m.get("description", ""),
                             m.get("low"), m.get("high"), m.get("choices")))
    return out


def _coerce(node: str, spec: ParamSpec, value: Any) -> Any:
    where = f"node {node!r}, parameter {spec.name!r}"
    t = spec.type
    origin = typing.get_origin(t)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(t) if a is not type(None)]
        if value is None:
            return None
        t, origin = args[0], typing.get_origin(args[0])
    if t is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{where}: expected a bool, got {value!r}")
        return value
    if t is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where}: expected an integer, got {value!r}")
        out: Any = value
    elif t is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{where}: expected a number, got {value!r}")
        out = float(value)
        _check_finite(where, out)
    elif t is str:
        if not isinstance(value, str):
            raise ValueError(f"{where}: expected a string, got {value!r}")
        out = value
    elif origin in (list, tuple) or t in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where}: expected a list, got {value!r}")
        (item_t,) = typing.get_args(t)[:1] or (Any,)
        if item_t is float:
            if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in value):
                raise ValueError(f"{where}: expected a list of numbers, got {value!r}")
            value = [float(v) for v in value]
            for i, v in enumerate(value):
                _check_finite(f"{where}, element {i} of {value}", v)
        elif item_t in (int, str, bool) and any(type(v) is not item_t for v in value):
            raise ValueError(f"{where}: expected a list of {item_t.__name__}, got {value!r}")
        out = list(value) if (origin or t) is list else tuple(value)
    else:
        out = value
    if spec.choices is not None and out not in spec.choices:
        raise ValueError(f"{where}: {out!r} is not one of {list(spec.choices)}")
    if isinstance(out, (int, float)) and not isinstance(out, bool):
        if spec.low is not None and out < spec.low:
            raise ValueError(f"{where}: {out} is below the minimum {spec.low}")
        if spec.high is not None and out > spec.high:
            raise ValueError(f"{where}: {out} is above the maximum {spec.high}")
    return out


def _check_finite(where: str, value: float) -> None:
    # Range checks are all false for NaN, and inf/-inf switch limits off (a distance nothing is
    # closer than, a timeout that never expires): neither is ever a meaningful setting.
    if not math.isfinite(value):
        raise ValueError(f"{where}: {value} is not a finite number (nan and inf are refused)")


def build_params(cls: type[Params], values: Mapping[str, Any], node: str) -> Params:
    """Instantiate ``cls`` from ``values``, checking names, types and ranges."""
    by_name = {s.name: s for s in specs(cls)}
    unknown = sorted(set(values) - set(by_name))
    if unknown:
        raise ValueError(
            f"node {node!r}: unknown parameter(s) {unknown}; declared: {sorted(by_name)}"
        )
    kwargs = {k: _coerce(node, by_name[k], v) for k, v in values.items()}
    obj = _construct(cls, kwargs)
    for s in by_name.values():  # defaults are checked too: a bad default is a bug worth seeing
        if s.name not in kwargs:
            _coerce(node, s, functools.reduce(getattr, s.name.split("."), obj))
    return obj


def _construct(cls: type, values: Mapping[str, Any]) -> Any:
    """``cls`` from checked values, dotted names going to the group they name."""
    own: dict[str, Any] = {}
    groups: dict[str, dict[str, Any]] = {}
    for name, value in values.items():
        head, dot, rest = name.partition(".")
        if dot:
            groups.setdefault(head, {})[rest] = value
        else:
            own[name] = value
    hints = typing.get_type_hints(cls)
    return cls(**own, **{g: _construct(hints[g], v) for g, v in groups.items()})


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = value


def _node_key_matches(key: str, fqn: str) -> bool:
    key = key.strip()
    if key in ("/**", "**"):
        return True
    if key.startswith("/**/"):
        return fqn.rsplit("/", 1)[-1] == key[4:]
    # Keys may be fully qualified (/ns/name) or relative (name, ns/name).
    return key.lstrip("/") == fqn.lstrip("/") or ("/" not in key and fqn.rsplit("/", 1)[-1] == key)


MAX_PARAM_FILE_BYTES = 256 * 1024  # real ones are a few kB; PyYAML parses only ~50-100 kB/s
MAX_YAML_DEPTH = 32


class RefusedYaml(yaml.MarkedYAMLError):
    """Valid YAML that parameters do not accept (aliases, deep nesting)."""


class _ParamLoader(yaml.SafeLoader):
    """``safe_load`` without aliases or deep nesting. ROS 2's parameter parser refuses aliases
    too; here a few lines of them expand to billions of values once anything walks the result.
    Nesting is bounded because the composer recurses once per level."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise RefusedYaml(None, None, f"alias *{event.anchor}: YAML aliases are not supported "
                              "in parameters", event.start_mark)
        if self._depth >= MAX_YAML_DEPTH:
            raise RefusedYaml(None, None, f"nested deeper than {MAX_YAML_DEPTH} levels", event.start_mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load_yaml(text: str) -> Any:
    """Parse parameter YAML: ``RefusedYaml`` for aliases and deep nesting, ``yaml.YAMLError`` for
    the rest."""
    loader = _ParamLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def load_param_file(path: str | Path, fqn: str) -> dict[str, Any]:
    """Parameters for node ``fqn`` from a ROS 2 parameter YAML (``node: ros__parameters: ...``).

    Nested maps become dotted names. Wildcard ``/**`` entries apply to every node; entries for the
    node itself override them. Raises ``ValueError`` naming the file for a malformed layout.
    """
    path = Path(path)
    try:
        doc = load_yaml(read_input_file(path, MAX_PARAM_FILE_BYTES).decode())
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except RefusedYaml as exc:
        raise ValueError(f"{path}: unsupported YAML ({exc})") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: invalid YAML ({exc})") from exc
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: top level must map node names to 'ros__parameters'")
    wild: dict[str, Any] = {}
    own: dict[str, Any] = {}
    for key, body in doc.items():
        if not isinstance(body, dict) or "ros__parameters" not in body:
            raise ValueError(f"{path}: entry {key!r} must contain a 'ros__parameters' map")
        params = body["ros__parameters"] or {}
        if not isinstance(params, dict):
            raise ValueError(f"{path}: {key!r}.ros__parameters must be a map")
        if _node_key_matches(str(key), fqn):
            flat: dict[str, Any] = {}
            _flatten("", params, flat)
            (wild if str(key).strip() in ("/**", "**") else own).update(flat)
    return {**wild, **own}
