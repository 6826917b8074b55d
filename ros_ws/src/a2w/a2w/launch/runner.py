"""Interpret the subset of ROS 2 XML launch we use, giving the nodes to run.

The subset (ros2_facts.md §5): ``launch``, ``arg``, ``let``, ``include`` (with ``arg``),
``group`` (``scoped``), ``push-ros-namespace`` / ``push_ros_namespace``, and ``node`` with
``param`` (``name``/``value`` or ``from``) and ``remap``; ``if``/``unless`` on every action;
substitutions from ``a2w.launch.substitutions``. Anything else is a ``LaunchError`` naming the
file, line and tag, so a file that passes here is a file ``ros2 launch`` accepts on a rig.
``node pkg=... exec=...`` resolves through ``a2w.nodes``, the table ament_python installs.
"""

from __future__ import annotations

import os
import xml.parsers.expat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from a2w.host.host import NodeSpec
from a2w.host.names import join_namespace
from a2w.host.params import load_param_file
from a2w.launch.substitutions import Context, SubstitutionError, parse_bool, substitute
from a2w import nodes as node_registry

REPO_ROOT = Path(__file__).resolve().parents[5]

# Attributes allowed per tag (if/unless are added to every action).
_ALLOWED: dict[str, set[str]] = {
    "launch": {"version"},
    "arg": {"name", "default", "description", "value"},
    "let": {"name", "value"},
    "include": {"file"},
    "group": {"scoped"},
    "push-ros-namespace": {"namespace"},
    "push_ros_namespace": {"namespace"},
    "node": {"pkg", "exec", "name", "namespace", "output"},
    "param": {"name", "value", "from"},
    "remap": {"from", "to"},
}
_ACTIONS = {"arg", "let", "include", "group", "push-ros-namespace", "push_ros_namespace", "node"}
_CHILDREN = {"launch": _ACTIONS, "group": _ACTIONS, "include": {"arg"}, "node": {"param", "remap"},
             "param": {"param"}}


class LaunchError(ValueError):
    """An error in a launch file, with its location."""

    def __init__(self, file: Path, line: int, tag: str, message: str) -> None:
        super().__init__(f"{file}:{line}: <{tag}>: {message}")
        self.file, self.line, self.tag = file, line, tag


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    line: int
    children: list["Element"] = field(default_factory=list)


def parse_xml(path: Path) -> Element:
    """Parse with expat so every element keeps its line number."""
    stack: list[Element] = []
    root: list[Element] = []
    parser = xml.parsers.expat.ParserCreate()

    def start(tag: str, attrs: dict[str, str]) -> None:
        el = Element(tag, dict(attrs), parser.CurrentLineNumber)
        (stack[-1].children if stack else root).append(el)
        stack.append(el)

    def end(_tag: str) -> None:
        stack.pop()

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise LaunchError(path, 0, "launch", "file not found") from None
    try:
        parser.Parse(data, True)
    except xml.parsers.expat.ExpatError as exc:
        raise LaunchError(path, exc.lineno, "launch", f"malformed XML: {exc}") from None
    if not root or root[0].tag != "launch":
        raise LaunchError(path, root[0].line if root else 1, root[0].tag if root else "?",
                          "the root element must be <launch>")
    return root[0]


@dataclass
class LaunchResult:
    nodes: list[NodeSpec]
    arguments: dict[str, str]  # declared args of the top-level file with their final values


@dataclass
class _Scope:
    variables: dict[str, str]
    namespace: str


class LaunchRunner:
    """Evaluates launch files into ``NodeSpec``s (it does not run them)."""

    def __init__(self, package_shares: Mapping[str, Path] | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        # Locally, package "a2w" shares the repository root (launch/, calibration/...); on a rig
        # setup.py installs those folders under share/a2w/.
        self.package_shares = dict(package_shares or {node_registry.PACKAGE: REPO_ROOT})
        self.env = env

    def load(self, path: str | Path, arguments: Mapping[str, str] | None = None) -> LaunchResult:
        path = Path(path).resolve()
        given = dict(arguments or {})
        nodes: list[NodeSpec] = []
        declared: dict[str, str] = {}
        scope = _Scope(dict(), "/")
        self._file(path, scope, given, nodes, declared, top=True)
        unknown = sorted(set(given) - set(declared))
        if unknown:
            raise LaunchError(path, 1, "launch",
                              f"unknown launch argument(s) {unknown}; declared: {sorted(declared)}")
        return LaunchResult(nodes, declared)

    # -- evaluation -----------------------------------------------------------------------
    def _ctx(self, path: Path, scope: _Scope) -> Context:
        return Context(scope.variables, path, self.package_shares,
                       self.env if self.env is not None else os.environ)

    def _sub(self, el: Element, path: Path, scope: _Scope, text: str) -> str:
        try:
            return substitute(text, self._ctx(path, scope))
        except SubstitutionError as exc:
            raise LaunchError(path, el.line, el.tag, str(exc)) from None

    def _check(self, el: Element, path: Path, parent: str) -> None:
        allowed_children = _CHILDREN.get(parent, set())
        if el.tag not in _ALLOWED or el.tag not in allowed_children:
            where = f"inside <{parent}>" if el.tag in _ALLOWED else "in the supported launch subset"
            raise LaunchError(path, el.line, el.tag, f"tag not supported {where}")
        extra = set(el.attrs) - _ALLOWED[el.tag] - ({"if", "unless"} if el.tag in _ACTIONS else set())
        if extra:
            raise LaunchError(path, el.line, el.tag, f"unsupported attribute(s) {sorted(extra)}")

    def _enabled(self, el: Element, path: Path, scope: _Scope) -> bool:
        try:
            if "if" in el.attrs and not parse_bool(self._sub(el, path, scope, el.attrs["if"]), "if"):
                return False
            if "unless" in el.attrs and parse_bool(self._sub(el, path, scope, el.attrs["unless"]), "unless"):
                return False
        except SubstitutionError as exc:
            raise LaunchError(path, el.line, el.tag, str(exc)) from None
        return True

    def _req(self, el: Element, path: Path, name: str) -> str:
        if name not in el.attrs:
            raise LaunchError(path, el.line, el.tag, f"missing required attribute {name!r}")
        return el.attrs[name]

    def _file(self, path: Path, scope: _Scope, given: dict[str, str], nodes: list[NodeSpec],
              declared: dict[str, str], top: bool) -> None:
        root = parse_xml(path)
        extra = set(root.attrs) - _ALLOWED["launch"]
        if extra:
            raise LaunchError(path, root.line, "launch", f"unsupported attribute(s) {sorted(extra)}")
        self._actions(root, path, scope, given, nodes, declared if top else {})

    def _actions(self, parent: Element, path: Path, scope: _Scope, given: dict[str, str],
                 nodes: list[NodeSpec], declared: dict[str, str]) -> None:
        for el in parent.children:
            self._check(el, path, parent.tag)
            if not self._enabled(el, path, scope):
                continue
            tag = el.tag
            if tag == "arg":
                name = self._req(el, path, "name")
                if name in given:
                    value = given[name]
                elif "default" in el.attrs:
                    value = self._sub(el, path, scope, el.attrs["default"])
                else:
                    raise LaunchError(path, el.line, tag,
                                      f"launch argument {name!r} has no default and was not given "
                                      f"(pass {name}:=VALUE)")
                scope.variables[name] = value
                declared[name] = value
            elif tag == "let":
                scope.variables[self._req(el, path, "name")] = self._sub(el, path, scope, self._req(el, path, "value"))
            elif tag in ("push-ros-namespace", "push_ros_namespace"):
                scope.namespace = join_namespace(scope.namespace, self._sub(el, path, scope, self._req(el, path, "namespace")))
            elif tag == "group":
                scoped = parse_bool(self._sub(el, path, scope, el.attrs.get("scoped", "true")), "scoped")
                inner = _Scope(dict(scope.variables), scope.namespace) if scoped else scope
                self._actions(el, path, inner, given, nodes, declared)
            elif tag == "include":
                self._include(el, path, scope, nodes)
            elif tag == "node":
                nodes.append(self._node(el, path, scope))

    def _include(self, el: Element, path: Path, scope: _Scope, nodes: list[NodeSpec]) -> None:
        target = Path(self._sub(el, path, scope, self._req(el, path, "file")))
        if not target.is_absolute():
            target = path.parent / target
        args: dict[str, str] = {}
        for child in el.children:
            self._check(child, path, "include")
            args[self._req(child, path, "name")] = self._sub(child, path, scope, self._req(child, path, "value"))
        # Included files see their own args (and inherit nothing else, as in ROS 2); the
        # namespace pushed so far applies to their nodes.
        inner = _Scope({}, scope.namespace)
        declared: dict[str, str] = {}
        self._file(target.resolve(), inner, args, nodes, declared, top=True)
        unknown = sorted(set(args) - set(declared))
        if unknown:
            raise LaunchError(path, el.line, "include",
                              f"{target.name} declares no argument(s) {unknown}; declared: {sorted(declared)}")

    def _node(self, el: Element, path: Path, scope: _Scope) -> NodeSpec:
        pkg = self._sub(el, path, scope, self._req(el, path, "pkg"))
        exe = self._sub(el, path, scope, self._req(el, path, "exec"))
        if pkg != node_registry.PACKAGE:
            raise LaunchError(path, el.line, "node", f"unknown package {pkg!r}; this runner knows {node_registry.PACKAGE!r}")
        try:
            component = node_registry.load(exe)
        except (LookupError, ImportError, TypeError) as exc:
            raise LaunchError(path, el.line, "node", str(exc)) from None
        name = self._sub(el, path, scope, el.attrs.get("name", exe))
        ns = join_namespace(scope.namespace, self._sub(el, path, scope, el.attrs.get("namespace", "")))
        fqn = join_namespace(ns, name)
        params: dict[str, Any] = {}
        remaps: dict[str, str] = {}
        for child in el.children:
            self._check(child, path, "node")
            if child.tag == "remap":
                remaps[self._sub(child, path, scope, self._req(child, path, "from"))] = \
                    self._sub(child, path, scope, self._req(child, path, "to"))
            else:
                self._param(child, path, scope, fqn, "", params)
        return NodeSpec(component, name, ns, params, remaps)

    def _param(self, el: Element, path: Path, scope: _Scope, fqn: str, prefix: str,
               params: dict[str, Any]) -> None:
        if "from" in el.attrs:
            if set(el.attrs) & {"name", "value"} or el.children:
                raise LaunchError(path, el.line, "param", "'from' cannot be combined with name/value")
            file = Path(self._sub(el, path, scope, el.attrs["from"]))
            if not file.is_absolute():
                file = path.parent / file
            try:
                params.update(load_param_file(file, fqn))
            except ValueError as exc:
                raise LaunchError(path, el.line, "param", str(exc)) from None
            return
        name = prefix + self._sub(el, path, scope, self._req(el, path, "name"))
        if el.children:  # nested params make group.sub.name
            if "value" in el.attrs:
                raise LaunchError(path, el.line, "param", "a param with nested params takes no value")
            for child in el.children:
                self._check(child, path, "param")
                self._param(child, path, scope, fqn, name + ".", params)
            return
        params[name] = parse_value(self._sub(el, path, scope, self._req(el, path, "value")))


def parse_value(text: str) -> Any:
    """Type a launch parameter value the way ROS does (YAML rules: 1 int, 1.5 float, true bool,
    [1, 2] list); anything YAML cannot type stays a string."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if value is None or isinstance(value, dict):
        return text
    return value
