"""Interpret the subset of ROS 2 XML launch we use, giving the nodes to run.

The subset (ros2_facts.md §5): ``launch``, ``arg``, ``let``, ``include`` (with ``arg``),
``group`` (``scoped``), ``push-ros-namespace`` / ``push_ros_namespace``, ``node`` with
``param`` (``name``/``value`` or ``from``) and ``remap``, ``node_container`` holding
``composable_node``s (same children as ``node``), and ``fail_on_node_error`` (a2w's launch
extension, ``a2w.launch.ros_extension``); ``if``/``unless`` on every action; ``on_exit="shutdown"``
on nodes and containers; substitutions from ``a2w.launch.substitutions``. Anything else is a
``LaunchError`` naming the file, line and tag, so a file that passes here is a file ``ros2 launch``
accepts on a rig. ``node pkg=... exec=...`` and ``composable_node pkg=... plugin=...`` resolve
through ``a2w.nodes``, the table ament_python installs.

In one process a container is only a grouping: its composable nodes become nodes of the run, as
they share one process under ``ros2 launch`` too (``a2w.ros.container``). ``on_exit="shutdown"``
and ``fail_on_node_error`` are what this runner does anyway: the first component that stops the
run ends all of it, and its exit code is the run's (docs/architecture.md §9).

A launch file is input: include loops, deep nesting, include fan-out, entity or alias expansion
and oversized files are refused with a ``LaunchError`` too, so evaluation ends in bounded time.
"""

from __future__ import annotations

import contextlib
import os
import xml.parsers.expat
from collections import ChainMap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import yaml

from a2w import nodes as node_registry
from a2w.host.files import read_input_file
from a2w.host.host import NodeSpec
from a2w.host.names import join_namespace
from a2w.host.params import MAX_PARAM_FILE_BYTES, RefusedYaml, load_param_file, load_yaml
from a2w.launch.substitutions import Context, SubstitutionError, parse_bool, substitute
from a2w.ros.main import load_component  # ROS-free; the container loads plugins with it too

REPO_ROOT = Path(__file__).resolve().parents[5]

MAX_FILE_BYTES = 1 << 20  # one launch file (real ones are a few kB)
MAX_DEPTH = 64  # elements nested in one file; and groups + includes nested across files
# Per load, so that an include repeated in a tree (a includes b ten times, b includes c ten
# times...) cannot multiply work without bound:
MAX_ELEMENTS = 100_000  # elements evaluated
MAX_INPUT_BYTES = 8 << 20  # launch and parameter files read
MAX_TEXT = 4 << 20  # characters produced by substitutions

# Attributes allowed per tag (if/unless are added to every action).
_ALLOWED: dict[str, set[str]] = {
    "launch": {"version"},
    "arg": {"name", "default", "description", "value"},
    "let": {"name", "value"},
    "include": {"file"},
    "group": {"scoped"},
    "push-ros-namespace": {"namespace"},
    "push_ros_namespace": {"namespace"},
    "node": {"pkg", "exec", "name", "namespace", "output", "on_exit"},
    # The container's own node has no parameters; under ros2 launch it must be a2w's
    # component_container (Python has no rclcpp_components).
    "node_container": {"pkg", "exec", "name", "namespace", "output", "on_exit"},
    "composable_node": {"pkg", "plugin", "name", "namespace"},
    "fail_on_node_error": set(),
    "param": {"name", "value", "from"},
    "remap": {"from", "to"},
}
_ACTIONS = {"arg", "let", "include", "group", "push-ros-namespace", "push_ros_namespace", "node",
            "node_container", "fail_on_node_error"}
_CHILDREN = {"launch": _ACTIONS, "group": _ACTIONS, "include": {"arg"}, "node": {"param", "remap"},
             "node_container": {"composable_node", "param"}, "composable_node": {"param", "remap"},
             "param": {"param"}}
# What a node_container must run: the only container that hosts a2w components, and its own
# parameters (all booleans).
CONTAINER = (node_registry.PACKAGE, "component_container")
CONTAINER_PARAMS = {"exit_on_load_error"}


class LaunchError(ValueError):
    """An error in a launch file, with its location and the includes that led there."""

    def __init__(self, file: Path, line: int, tag: str, message: str,
                 included_from: tuple[tuple[Path, int], ...] = ()) -> None:
        chain = " <- ".join(f"{f}:{n}" for f, n in included_from)
        super().__init__(f"{file}:{line}: <{tag}>: {message}"
                         + (f" [included from {chain}]" if chain else ""))
        self.file, self.line, self.tag, self.message = file, line, tag, message
        self.included_from = included_from

    def via(self, file: Path, line: int) -> "LaunchError":
        """This error, seen through the ``<include>`` at ``file:line``."""
        return LaunchError(self.file, self.line, self.tag, self.message,
                           (*self.included_from, (file, line)))


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    line: int
    children: list["Element"] = field(default_factory=list)


def parse_xml(path: Path, data: bytes) -> Element:
    """Parse with expat so every element keeps its line number."""
    stack: list[Element] = []
    root: list[Element] = []
    parser = xml.parsers.expat.ParserCreate()

    def start(tag: str, attrs: dict[str, str]) -> None:
        if len(stack) >= MAX_DEPTH:
            raise LaunchError(path, parser.CurrentLineNumber, tag,
                              f"elements nested deeper than {MAX_DEPTH} levels")
        el = Element(tag, dict(attrs), parser.CurrentLineNumber)
        (stack[-1].children if stack else root).append(el)
        stack.append(el)

    def end(_tag: str) -> None:
        stack.pop()

    def entity(name: str, *_: Any) -> None:
        # Entities nest ("billion laughs"); launch files have no use for them.
        raise LaunchError(path, parser.CurrentLineNumber, "launch",
                          f"entity declarations (<!ENTITY {name} ...>) are not supported")

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.EntityDeclHandler = entity
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
class _Budget:
    """What one ``load`` has spent, and the files it is inside (for include loops)."""

    files: list[Path] = field(default_factory=list)
    depth: int = 0
    spent: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_LIMITS, 0))


_LIMITS = {"elements": (MAX_ELEMENTS, "elements evaluated"),
           "input": (MAX_INPUT_BYTES, "bytes of launch and parameter files read"),
           "text": (MAX_TEXT, "characters of substituted text")}


@dataclass
class _Scope:
    variables: ChainMap[str, str]  # a scoped group reads its parent's and writes its own
    namespace: str
    budget: _Budget


class LaunchRunner:
    """Evaluates launch files into ``NodeSpec``s (it does not run them)."""

    def __init__(self, package_shares: Mapping[str, Path] | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        # Locally, package "a2w" shares the repository root (launch/, calibration/...); on a rig
        # setup.py installs those folders under share/a2w/.
        self.package_shares = dict(package_shares or {node_registry.PACKAGE: REPO_ROOT})
        self.env = env

    def load(self, path: str | Path, arguments: Mapping[str, str] | None = None) -> LaunchResult:
        try:
            path = Path(path).resolve()
        except (OSError, RuntimeError, ValueError) as exc:  # RuntimeError: symlink loop (< 3.13)
            raise LaunchError(Path(path), 0, "launch", f"cannot resolve the path: {exc}") from None
        given = dict(arguments or {})
        nodes: list[NodeSpec] = []
        declared: dict[str, str] = {}
        scope = _Scope(ChainMap(), "/", _Budget())
        data = self._read(path, scope, (path, 0, "launch"))
        self._file(path, data, scope, given, nodes, declared, top=True)
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
            out = substitute(text, self._ctx(path, scope))
        except SubstitutionError as exc:
            raise LaunchError(path, el.line, el.tag, str(exc)) from None
        self._spend(scope, (path, el.line, el.tag), "text", len(out))
        return out

    def _spend(self, scope: _Scope, where: tuple[Path, int, str], what: str, amount: int) -> None:
        spent = scope.budget.spent
        spent[what] += amount
        limit, unit = _LIMITS[what]
        if spent[what] > limit:
            raise LaunchError(*where, f"launch evaluation exceeds {limit} {unit} "
                              "(is an include repeated many times?)")

    def _read(self, file: Path, scope: _Scope, where: tuple[Path, int, str]) -> bytes:
        try:
            data = read_input_file(file, MAX_FILE_BYTES)
        except ValueError as exc:
            raise LaunchError(*where, str(exc)) from None
        self._spend(scope, where, "input", len(data))
        return data

    @contextlib.contextmanager
    def _nested(self, scope: _Scope, where: tuple[Path, int, str]) -> Iterator[None]:
        # Across includes too: each level costs stack frames, and Python's stack is finite.
        if scope.budget.depth >= MAX_DEPTH:
            raise LaunchError(*where, f"groups and includes nested deeper than {MAX_DEPTH} levels")
        scope.budget.depth += 1
        try:
            yield
        finally:
            scope.budget.depth -= 1

    def _check(self, el: Element, path: Path, parent: str) -> None:
        allowed_children = _CHILDREN.get(parent, set())
        if el.tag not in _ALLOWED or el.tag not in allowed_children:
            where = f"inside <{parent}>" if el.tag in _ALLOWED else "in the supported launch subset"
            raise LaunchError(path, el.line, el.tag, f"tag not supported {where}")
        conditional = el.tag in _ACTIONS or el.tag == "composable_node"
        extra = set(el.attrs) - _ALLOWED[el.tag] - ({"if", "unless"} if conditional else set())
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

    def _file(self, path: Path, data: bytes, scope: _Scope, given: dict[str, str],
              nodes: list[NodeSpec], declared: dict[str, str], top: bool) -> None:
        root = parse_xml(path, data)
        extra = set(root.attrs) - _ALLOWED["launch"]
        if extra:
            raise LaunchError(path, root.line, "launch", f"unsupported attribute(s) {sorted(extra)}")
        scope.budget.files.append(path)
        try:
            self._actions(root, path, scope, given, nodes, declared if top else {})
        finally:
            scope.budget.files.pop()

    def _actions(self, parent: Element, path: Path, scope: _Scope, given: dict[str, str],
                 nodes: list[NodeSpec], declared: dict[str, str]) -> None:
        for el in parent.children:
            self._spend(scope, (path, el.line, el.tag), "elements", 1)
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
                pushed = self._sub(el, path, scope, self._req(el, path, "namespace"))
                scope.namespace = join_namespace(scope.namespace, pushed)
            elif tag == "group":
                scoped = parse_bool(self._sub(el, path, scope, el.attrs.get("scoped", "true")), "scoped")
                inner = _Scope(scope.variables.new_child(), scope.namespace, scope.budget) if scoped else scope
                with self._nested(scope, (path, el.line, tag)):
                    self._actions(el, path, inner, given, nodes, declared)
            elif tag == "include":
                self._include(el, path, scope, nodes)
            elif tag == "node":
                self._on_exit(el, path, scope)
                nodes.append(self._node(el, path, scope))
            elif tag == "node_container":
                self._container(el, path, scope, nodes)
            # fail_on_node_error: nothing to evaluate (see the module docstring)

    def _on_exit(self, el: Element, path: Path, scope: _Scope) -> None:
        if "on_exit" in el.attrs:
            value = self._sub(el, path, scope, el.attrs["on_exit"])
            if value != "shutdown":  # the only value launch's XML frontend accepts
                raise LaunchError(path, el.line, el.tag, f"on_exit must be 'shutdown', got {value!r}")

    def _container(self, el: Element, path: Path, scope: _Scope, nodes: list[NodeSpec]) -> None:
        self._on_exit(el, path, scope)
        pkg = self._sub(el, path, scope, self._req(el, path, "pkg"))
        exe = self._sub(el, path, scope, self._req(el, path, "exec"))
        self._req(el, path, "name")  # launch_ros needs it to find the container's services
        if (pkg, exe) != CONTAINER:
            raise LaunchError(path, el.line, el.tag,
                              f"container {pkg}/{exe} cannot host a2w components; use pkg={CONTAINER[0]!r} "
                              f"exec={CONTAINER[1]!r}")
        for child in el.children:
            self._spend(scope, (path, child.line, child.tag), "elements", 1)
            self._check(child, path, "node_container")
            if child.tag == "param":
                self._container_param(child, path, scope)
            elif self._enabled(child, path, scope):
                nodes.append(self._node(child, path, scope))

    def _container_param(self, el: Element, path: Path, scope: _Scope) -> None:
        """The container's own parameters (a2w.ros.container): checked, then nothing to do in one
        process (exit_on_load_error: a node this runner cannot build already ends the run with 2)."""
        if el.children or "from" in el.attrs:
            raise LaunchError(path, el.line, "param", "a container takes name/value parameters only")
        name = self._sub(el, path, scope, self._req(el, path, "name"))
        value = self._sub(el, path, scope, self._req(el, path, "value"))
        if name not in CONTAINER_PARAMS:
            raise LaunchError(path, el.line, "param",
                              f"unknown container parameter {name!r}; known: {sorted(CONTAINER_PARAMS)}")
        try:
            parse_bool(value, name)
        except SubstitutionError as exc:
            raise LaunchError(path, el.line, "param", str(exc)) from None

    def _include(self, el: Element, path: Path, scope: _Scope, nodes: list[NodeSpec]) -> None:
        where = (path, el.line, "include")
        target = Path(self._sub(el, path, scope, self._req(el, path, "file")))
        if not target.is_absolute():
            target = path.parent / target
        try:
            target = target.resolve()
        except (OSError, RuntimeError, ValueError) as exc:  # RuntimeError: symlink loop (< 3.13)
            raise LaunchError(*where, f"cannot resolve {target}: {exc}") from None
        files = scope.budget.files
        if target in files:
            cycle = " -> ".join(str(f) for f in [*files[files.index(target):], target])
            raise LaunchError(*where, f"include loop: {cycle}")
        args: dict[str, str] = {}
        for child in el.children:
            self._check(child, path, "include")
            args[self._req(child, path, "name")] = self._sub(child, path, scope, self._req(child, path, "value"))
        data = self._read(target, scope, where)
        # Included files see their own args (and inherit nothing else, as in ROS 2); the
        # namespace pushed so far applies to their nodes.
        inner = _Scope(ChainMap(), scope.namespace, scope.budget)
        declared: dict[str, str] = {}
        with self._nested(scope, where):
            try:
                self._file(target, data, inner, args, nodes, declared, top=True)
            except LaunchError as exc:
                raise exc.via(path, el.line) from None
        unknown = sorted(set(args) - set(declared))
        if unknown:
            raise LaunchError(path, el.line, "include",
                              f"{target.name} declares no argument(s) {unknown}; declared: {sorted(declared)}")

    def _node(self, el: Element, path: Path, scope: _Scope) -> NodeSpec:
        """A ``node`` or ``composable_node`` (whose ``plugin`` is what ``exec`` is to a node)."""
        pkg = self._sub(el, path, scope, self._req(el, path, "pkg"))
        exe = self._sub(el, path, scope, self._req(el, path, "exec" if el.tag == "node" else "plugin"))
        if pkg != node_registry.PACKAGE:
            raise LaunchError(path, el.line, el.tag,
                              f"unknown package {pkg!r}; this runner knows {node_registry.PACKAGE!r}")
        try:
            component = node_registry.load(exe) if el.tag == "node" else load_component(exe)
        except (LookupError, ImportError, TypeError, AttributeError) as exc:
            raise LaunchError(path, el.line, el.tag, str(exc)) from None
        name = self._sub(el, path, scope, el.attrs.get("name", exe))
        ns = join_namespace(scope.namespace, self._sub(el, path, scope, el.attrs.get("namespace", "")))
        fqn = join_namespace(ns, name)
        params: dict[str, Any] = {}
        remaps: dict[str, str] = {}
        for child in el.children:
            self._check(child, path, el.tag)
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
                size = min(file.stat().st_size, MAX_PARAM_FILE_BYTES)
            except (OSError, ValueError):
                size = 0  # load_param_file says why it cannot be read
            self._spend(scope, (path, el.line, "param"), "input", size)
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
        text = self._sub(el, path, scope, self._req(el, path, "value"))
        try:
            params[name] = parse_value(text)
        except ValueError as exc:
            raise LaunchError(path, el.line, "param", f"parameter {name!r}: {exc}") from None


def parse_value(text: str) -> Any:
    """Type a launch parameter value the way ROS does (YAML rules: 1 int, 1.5 float, true bool,
    [1, 2] list); anything YAML cannot type stays a string. YAML aliases and deep nesting are a
    ``ValueError`` (see ``a2w.host.params.load_yaml``)."""
    try:
        value = load_yaml(text)
    except RefusedYaml as exc:
        raise ValueError(f"unsupported YAML in the value: {exc.problem}") from None
    except yaml.YAMLError:
        return text
    if value is None or isinstance(value, dict):
        return text
    return value
