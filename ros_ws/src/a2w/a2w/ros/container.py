"""``component_container``: several components in one rclpy process, loaded by ``ros2 launch``.

Python has no ``rclcpp_components``, so this is its role for a2w components (docs/architecture.md
§4): a ``RosHost`` whose own node serves the services launch_ros's ``<node_container>`` /
``LoadComposableNodes`` and ``ros2 component`` speak (composition_interfaces):

* ``~/_container/load_node``: ``plugin_name`` is an exec name from ``a2w.nodes.NODES`` or
  ``module:Class``; node name, namespace, remap rules and parameters (already flattened per node
  by launch_ros, ``/**`` and nested keys such as ``sim.world_name`` included) become
  ``RosHost.add(component, name, namespace, params, cli_args)``. The component is built in the
  service callback, and launch_ros loads a container's nodes one after another, so the order in
  the launch file is the load order (``sim_node`` first: it registers the world the sim drivers
  reach in memory). What cannot be honoured (another package, an unknown plugin, a parameter the
  component refuses, ``use_intra_process_comms``, a log level) is answered ``success=False`` with
  the reason in ``error_message``; the container keeps running.
* ``~/_container/unload_node`` and ``~/_container/list_nodes``.

Its own parameter ``exit_on_load_error`` (default false, as rclcpp's containers) makes a refused
load also stop the container with exit code 2 (an invalid parameter, as ``a2w launch`` exits):
launch_ros only logs a failed load, so a launch whose nodes depend on each other (the sim's)
would otherwise run on without the node, waiting forever.

The process exits like any a2w node: with the exit code of the first component that stops the
run (the sim's verdict, a crashed worker's 70), 130/143 on SIGINT/SIGTERM (§9).

Only the container's own node takes the command line's ROS arguments (``-r __node:=``,
``-r __ns:=``, ``-p``, ``--params-file``): rclpy is initialised without them, as rclcpp's
container gives its components ``use_global_arguments(false)``, or ``__node:=`` would rename every
component to the container's name. Logging arguments stay global.
"""

from __future__ import annotations

import itertools
import logging
import sys
import time
from typing import Any, Sequence

from a2w import nodes
from a2w.host.component import Component
from a2w.host.names import join_namespace
from a2w.ros.main import configure_process, load_component

log = logging.getLogger(__name__)

DEFAULT_NAME = "component_container"
# Global ROS arguments that configure logging, not the node (rcl_arguments.h); the rest belongs
# to the container's node alone.
_LOG_FLAGS_WITH_VALUE = {"--log-level", "--log-config-file", "--log-file-name"}
_LOG_FLAGS = {"--enable-rosout-logs", "--disable-rosout-logs", "--enable-stdout-logs",
              "--disable-stdout-logs", "--enable-external-lib-logs", "--disable-external-lib-logs"}
_ARGS_WITH_VALUE = {"-r", "--remap", "-p", "--param", "--params-file", "-e", "--enclave"}


def split_ros_args(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """(global logging arguments, the container node's own arguments), each as ``--ros-args ...``
    (empty when there are none), from a command line that may hold several ``--ros-args`` blocks."""
    logging_args: list[str] = []
    node_args: list[str] = []
    ros = False
    it = iter(argv)
    for tok in it:
        if tok == "--ros-args":
            ros = True
        elif tok == "--":
            ros = False
        elif not ros:
            continue
        elif tok in _LOG_FLAGS_WITH_VALUE:
            logging_args += [tok, next(it, "")]
        elif tok in _LOG_FLAGS:
            logging_args.append(tok)
        elif tok in _ARGS_WITH_VALUE:
            node_args += [tok, next(it, "")]
        else:
            node_args.append(tok)
    return (["--ros-args", *logging_args] if logging_args else [],
            ["--ros-args", *node_args] if node_args else [])


def parameter_values(msgs: Sequence[Any]) -> dict[str, Any]:
    """``rcl_interfaces/Parameter`` messages as plain values; ``ValueError`` for an unset one."""
    from rclpy.parameter import Parameter

    out: dict[str, Any] = {}
    for msg in msgs:
        p = Parameter.from_parameter_msg(msg)
        if p.type_ == Parameter.Type.NOT_SET:
            raise ValueError(f"parameter {msg.name!r} has no value")
        value = p.value
        if p.type_ == Parameter.Type.BYTE_ARRAY and not value:
            value = []  # launch_ros types an empty YAML list ("[]") as a byte array
        elif isinstance(value, (list, tuple)) or type(value).__name__ == "array":
            value = list(value)
        out[msg.name] = value
    return out


class LoadRefused(ValueError):
    """A load request this container cannot honour; the message goes back in the response."""


class Container:
    """The container node's services on a ``RosHost`` (built and spun by ``main``)."""

    def __init__(self, host: Any, node: Any) -> None:
        from composition_interfaces.srv import ListNodes, LoadNode, UnloadNode

        self.host = host
        self.node = node
        self.exit_on_load_error = bool(node.declare_parameter("exit_on_load_error", False).value)
        self.loaded: dict[int, Any] = {}  # unique id -> the RosNode hosting the component
        self._ids = itertools.count(1)
        node.create_service(LoadNode, "~/_container/load_node", self._load)
        node.create_service(UnloadNode, "~/_container/unload_node", self._unload)
        node.create_service(ListNodes, "~/_container/list_nodes", self._list)

    # -- load -------------------------------------------------------------------------------
    def component_for(self, request: Any) -> type[Component]:
        if request.package_name != nodes.PACKAGE:
            raise LoadRefused(f"package {request.package_name!r}: this container loads {nodes.PACKAGE!r} "
                              "components only")
        try:
            return load_component(request.plugin_name)
        except (LookupError, ImportError, AttributeError, TypeError, ValueError) as exc:
            raise LoadRefused(f"plugin {request.plugin_name!r}: {exc}") from None

    @staticmethod
    def check_extra_arguments(request: Any) -> None:
        for name, value in parameter_values(request.extra_arguments).items():
            if name == "use_intra_process_comms":
                if value is not False:
                    raise LoadRefused("use_intra_process_comms: rclpy has no intra-process "
                                      "communication; components in one container talk over DDS")
            else:
                raise LoadRefused(f"extra argument {name!r} is not supported (only "
                                  "use_intra_process_comms:=false)")

    def _load(self, request: Any, response: Any) -> Any:
        started = time.monotonic()
        try:
            rn = self.load(request)
        except Exception as exc:  # noqa: BLE001 - the caller gets the reason, the container lives
            reason = str(exc) if isinstance(exc, LoadRefused) else f"{type(exc).__name__}: {exc}"
            log.error("load %s as %r refused: %s", request.plugin_name, request.node_name, reason)
            response.success, response.error_message = False, reason
            if self.exit_on_load_error:
                # The run loop ends after this callback, once the response has gone out.
                self.host.request_stop(2, f"load of {request.plugin_name} as {request.node_name!r} refused: {reason}")
            return response
        uid = next(self._ids)
        self.loaded[uid] = rn
        response.success, response.full_node_name, response.unique_id = True, rn.fqn, uid
        log.info("loaded %s as %s (id %d) in %.2f s", request.plugin_name, rn.fqn, uid,
                 time.monotonic() - started)
        return response

    def load(self, request: Any) -> Any:
        """Build the requested component on the host; returns its ``RosNode``."""
        component = self.component_for(request)
        if request.log_level:
            raise LoadRefused("log_level: components log through Python logging; set levels with "
                              "--ros-args --log-level on the container")
        self.check_extra_arguments(request)
        try:
            params = parameter_values(request.parameters)
        except ValueError as exc:
            raise LoadRefused(str(exc)) from None
        name = request.node_name or (request.plugin_name if ":" not in request.plugin_name
                                     else component.__name__.lower())
        namespace = request.node_namespace or "/"
        fqn = join_namespace(namespace, name)
        if fqn in self.host.components:
            raise LoadRefused(f"a node named {fqn} is already loaded in this container")
        cli_args = []
        for rule in request.remap_rules:
            cli_args += ["-r", rule]
        before = len(self.host.nodes)
        try:
            self.host.add(component, name, namespace, params, ["--ros-args", *cli_args] if cli_args else None)
        except ValueError as exc:  # parameter errors, named by node and field
            raise LoadRefused(str(exc)) from None
        return self.host.nodes[before]

    # -- unload / list ----------------------------------------------------------------------
    def _unload(self, request: Any, response: Any) -> Any:
        rn = self.loaded.pop(request.unique_id, None)
        if rn is None:
            response.success = False
            response.error_message = f"no node with unique id {request.unique_id} in this container"
            return response
        problem = self.unload(rn)
        response.success, response.error_message = not problem, problem
        log.info("unloaded %s%s", rn.fqn, f" ({problem})" if problem else "")
        return response

    def unload(self, rn: Any) -> str:
        """Remove ``rn``'s component from the host; what went wrong, or ""."""
        alive = self.host.remove(rn.fqn)
        return f"worker thread(s) still running: {alive}" if alive else ""

    def _list(self, _request: Any, response: Any) -> Any:
        response.unique_ids = list(self.loaded)
        response.full_node_names = [rn.fqn for rn in self.loaded.values()]
        return response


def run(argv: Sequence[str] | None = None, duration: float | None = None) -> int:
    """Init rclpy (logging arguments only), serve the container until the run stops."""
    import rclpy
    from rclpy.node import Node

    from a2w.ros.host import RosHost

    argv = list(sys.argv if argv is None else argv)
    logging_args, node_args = split_ros_args(argv[1:])
    configure_process()  # the Fast DDS profile and malloc settings of every a2w process
    rclpy.init(args=[argv[0], *logging_args])
    host = RosHost()
    # Before anything is loaded (MuJoCo, cameras: seconds): a signal then still ends the run as
    # interrupted (128 + signal number), as for any a2w node.
    host.install_signal_handlers()
    node = Node(DEFAULT_NAME, cli_args=node_args or None, use_global_arguments=False)
    try:
        Container(host, node)
        host.start().add_node(node)
        log.info("component container %s ready", node.get_fully_qualified_name())
        host.spin(duration, install_signal_handlers=False)
    finally:
        host.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    log.info("component container stopped (%s), exit code %d",
             host.stop_reason or "duration passed or ROS shut down", host.exit_code)
    return host.exit_code


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run()


if __name__ == "__main__":
    sys.exit(main())
