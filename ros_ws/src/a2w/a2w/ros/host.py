"""The rclpy host: runs any component as a ROS 2 node (docs/architecture.md §3). The only module, with
``a2w.ros.main``, that imports rclpy.

Semantics follow the in-process host (``a2w.host.host``), translated to rclpy:

* **Callbacks**: each component gets one mutually exclusive callback group for its
  subscriptions, timers, services and posted callbacks, so its callbacks never run concurrently
  (the component contract). Parameter services and ``/clock`` stay on the node's default group,
  service-client responses and QoS events on a host-wide reentrant group. One single-threaded
  executor serves them all by default (``num_threads=1``): rclpy's multi-threaded executor costs
  10-17 ms of CPU per received image against ~2 ms (bench/ros.py). A component that blocks in a
  callback (which breaks the contract: slow work belongs in worker threads) therefore delays every
  node of its process for as long as it blocks, as on rclpy's and rclcpp's default executors; it
  never stops them for good, and a host thread reports it on ``/diagnostics`` meanwhile.
  ``RosHost(num_threads=N)`` with N > 1 runs a multi-threaded executor instead, on which other
  components keep running while one blocks.
* **Service clients**: ``call_async`` from anywhere; the blocking ``call`` from worker threads
  and tools only. From inside a callback it raises ``RuntimeError`` at once: on a single-threaded
  executor the response could never be served while the callback waits for it.
* **Logs**: each node's Python logger (``a2w.node.<fqn>``) forwards its records to the rclpy
  node's logger, so they reach the console once (rcutils' format) and ``/rosout``.
* **Errors**: an exception in a component callback is logged and counted (rclpy would otherwise
  stop spinning); the diagnostics level turns ERROR.
* **Diagnostics**: a host thread wakes every ``diagnostics_period`` seconds of steady time (not
  sim time: a paused sim still reports) and has each component's status built on its own
  callback group, or, for a component stuck in a callback longer than that, publishes a WARN
  saying so itself.
* **Parameters**: every ``Params`` field is declared as a ROS parameter with its description and
  range; values come from ``--params-file``/``-p`` overrides and are checked by the same
  ``build_params`` as in-process (unknown names are an error, not a silent default). They are
  read-only: components read parameters once, at construction. Every parameter has a value, so
  ``ros2 param get``/``dump`` answer for all of them: a list without a default is an empty list
  of its type, an optional scalar without one is dynamically typed and unset.
* **Time**: stamps (``NodeHandle.clock``) use the node's ROS clock, so ``use_sim_time`` works
  as on any ROS node (``/clock`` from a simulator or ``ros2 bag play --clock``). Timers follow
  that clock with sim time and the steady clock otherwise, so a wall-clock step moves stamps but
  does not stall timers (as in-process).
* **Worker threads**: a crashed worker stops the run with exit code 70 (as in-process).
* **Stopping**: shutdown requests, signals (exit code 128 + signal number), worker bookkeeping
  and the diagnostics level rule are the in-process host's own (``a2w.host.bookkeeping``).
* **Messages**: domain types are converted by ``a2w.ros.codec``. A ``CameraFrame`` with
  intrinsics also publishes ``camera_info`` next to its image topic, and a ``CameraFrame``
  subscription attaches the latest matching ``camera_info`` (realsense-ros layout, ros2_facts.md §1.1).
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from concurrent.futures import Future
from typing import Any, Callable, Mapping

import rclpy
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.clock import Clock as RclpyClock
from rclpy.clock import ClockType, JumpThreshold, TimeJump
from rclpy.context import Context
from rclpy.duration import Duration
from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
from rclpy.exceptions import ParameterUninitializedException
from rclpy.executors import Executor, ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.impl.logging_severity import LoggingSeverity
from rclpy.node import Node
from rclpy.parameter import Parameter

from a2w import frames
from a2w.clock import MAX_SIM_CLOCK_JUMP, Clock, MonotonicClock, PeriodStats
from a2w.host.bookkeeping import HostedNode, RunControl, describe_clock_jump
from a2w.host.component import Component, Publisher, ServiceClient, Timer
from a2w.host.params import ParamSpec, build_params, specs
from a2w.host.qos import QoS
from a2w.msgs.cameras import CameraFrame, CameraIntrinsics
from a2w.msgs.diagnostics import DiagnosticLevel, DiagnosticStatus
from a2w.ros import codec
from a2w.ros.qos_map import profile
from a2w.ros.rclpy_kit import RclpyKit, message_class

KIT = RclpyKit()
DIAGNOSTICS_TOPIC = "/diagnostics"
_INT64 = (-(2**63), 2**63 - 1)
# Set while this thread runs a component callback: a blocking service call from there is refused.
_IN_CALLBACK = threading.local()


# -- parameters -----------------------------------------------------------------------------
def _param_kind(spec: ParamSpec) -> tuple[Parameter.Type | None, bool]:
    """(ROS type, optional) of a Params field; type None means dynamically typed."""
    import types
    import typing

    t, optional = spec.type, False
    if typing.get_origin(t) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(t) if a is not type(None)]
        t, optional = args[0], len(args) < len(typing.get_args(t))
    scalar = {bool: Parameter.Type.BOOL, int: Parameter.Type.INTEGER, str: Parameter.Type.STRING}
    if t in scalar:
        return scalar[t], optional
    if t is float:
        # Dynamically typed so `1` in YAML works for a float, as it does in-process;
        # build_params still checks the value.
        return None, optional
    if typing.get_origin(t) in (list, tuple) or t in (list, tuple):
        item = (typing.get_args(t) or (None,))[0]
        arrays = {bool: Parameter.Type.BOOL_ARRAY, int: Parameter.Type.INTEGER_ARRAY,
                  float: Parameter.Type.DOUBLE_ARRAY, str: Parameter.Type.STRING_ARRAY}
        return arrays.get(item), optional
    return None, optional


def descriptor(spec: ParamSpec, dynamic: bool) -> ParameterDescriptor:
    """ROS descriptor of a Params field: description, range, choices; read-only."""
    d = ParameterDescriptor(name=spec.name, description=spec.description, read_only=True,
                            dynamic_typing=dynamic)
    if spec.choices is not None:
        d.additional_constraints = f"one of {list(spec.choices)}"
    if spec.low is not None or spec.high is not None:
        base = spec.type
        if base is int:
            lo = int(spec.low) if spec.low is not None else _INT64[0]
            hi = int(spec.high) if spec.high is not None else _INT64[1]
            d.integer_range = [IntegerRange(from_value=lo, to_value=hi, step=0)]
        else:
            lo = float(spec.low) if spec.low is not None else -math.inf
            hi = float(spec.high) if spec.high is not None else math.inf
            d.floating_point_range = [FloatingPointRange(from_value=lo, to_value=hi, step=0.0)]
    return d


def _is_empty_list(value: Any) -> bool:
    return (isinstance(value, (list, tuple)) or type(value).__name__ == "array") and len(value) == 0


def declare_params(node: Node, cls: type, fqn: str) -> Any:
    """Declare ``cls``'s fields on ``node`` and build the Params from the effective values."""
    values: dict[str, Any] = {}
    for spec in specs(cls):
        if spec.name == "use_sim_time":  # every rclpy node declares it already
            values[spec.name] = node.get_parameter("use_sim_time").value
            continue
        ros_type, _optional = _param_kind(spec)
        default = list(spec.default) if isinstance(spec.default, tuple) else spec.default
        overridden = spec.name in node._parameter_overrides  # noqa: SLF001
        # rclpy types an empty list override as a byte array (and re-types it from its value when
        # declaring), so a typed list field would refuse it: `[]` from launch_ros for a composable
        # node, or from RosHost.add. It is declared like an empty default below.
        empty_override = overridden and _is_empty_list(node._parameter_overrides[spec.name].value)  # noqa: SLF001
        try:
            if ros_type is None or default is None:
                # No type to give a None (an optional scalar or list left unset): dynamically
                # typed, so rclpy's GetParameters answers it as NOT_SET. A statically typed
                # unset parameter makes it answer the whole request empty (`ros2 param dump`
                # printed {}). build_params still checks whatever value comes.
                p = node.declare_parameter(spec.name, default, descriptor(spec, dynamic=True))
            elif isinstance(default, list) and ((not default and not overridden) or empty_override):
                # An empty default list: rclpy would type [] as a byte array, so the parameter
                # is declared through the path declare_parameter itself ends in, with the
                # list type in its descriptor; the type check stays static.
                d = descriptor(spec, dynamic=False)
                d.type = ros_type.value
                node._declare_parameter_common([Parameter(spec.name, ros_type, [])], {spec.name: d})  # noqa: SLF001
                p = node.get_parameter(spec.name)
            elif isinstance(default, list) and not default:
                p = node.declare_parameter(spec.name, ros_type, descriptor(spec, dynamic=False))
            else:
                p = node.declare_parameter(spec.name, default, descriptor(spec, dynamic=False))
        except Exception as exc:  # rclpy's range/type refusals: same ValueError as in-process
            raise ValueError(f"node {fqn!r}, parameter {spec.name!r}: {type(exc).__name__}: {exc}") from exc
        try:
            value = node.get_parameter(spec.name).value if p.type_ != Parameter.Type.NOT_SET else spec.default
        except ParameterUninitializedException:
            value = spec.default
        if isinstance(value, (list, tuple)) or type(value).__name__ == "array":
            value = list(value)
        values[spec.name] = value
    # rclpy ignores overrides nobody declares; in-process they are an error, so here too.
    unknown = sorted(set(node._parameter_overrides) - set(node._parameters))  # noqa: SLF001
    if unknown:
        raise ValueError(f"node {fqn!r}: unknown parameter(s) {unknown}; declared: "
                         f"{sorted(s.name for s in specs(cls))}")
    return build_params(cls, values, fqn)


# -- time -----------------------------------------------------------------------------------
class RosClock(Clock):
    """The node's ROS clock (sim time when ``use_sim_time``) behind the a2w ``Clock`` interface."""

    def __init__(self, node: Node) -> None:
        self._clock = node.get_clock()
        self._node = node
        self._monotonic = MonotonicClock()

    def now(self) -> float:
        return self._clock.now().nanoseconds * 1e-9

    def sim_time(self) -> bool:
        return bool(self._node.get_parameter("use_sim_time").value)

    def timeline(self) -> Clock:
        return self if self.sim_time() else self._monotonic

    def wait_until(self, t: float, cancel: threading.Event) -> bool:
        while not cancel.is_set():
            remaining = t - self.now()
            if remaining <= 0:
                return True
            # Sim time moves with /clock, not with the wall: poll it in small steps.
            cancel.wait(min(remaining, 0.005) if self.sim_time() else remaining)
        return False


# -- logs -----------------------------------------------------------------------------------
def ros_severity(levelno: int) -> LoggingSeverity:
    """rcutils severity of a Python logging level (custom levels round down to a standard one)."""
    for floor, severity in ((logging.CRITICAL, LoggingSeverity.FATAL), (logging.ERROR, LoggingSeverity.ERROR),
                            (logging.WARNING, LoggingSeverity.WARN), (logging.INFO, LoggingSeverity.INFO)):
        if levelno >= floor:
            return severity
    return LoggingSeverity.DEBUG


class RosoutHandler(logging.Handler):
    """Forwards Python log records to the rcutils logger ``ros_name``: rcl's output handler writes
    them to the console, ``/rosout`` and the log file as for any rclpy log call. The record's own
    function, file and line are passed on. rcutils never calls back into Python logging, and a
    record logged while forwarding (on this thread) is dropped rather than recursed into."""

    def __init__(self, ros_name: str) -> None:
        super().__init__()
        self.ros_name = ros_name
        self._forwarding = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self._forwarding, "active", False):
            return
        severity = ros_severity(record.levelno)
        self._forwarding.active = True
        try:
            if not _rclpy.rclpy_logging_logger_is_enabled_for(self.ros_name, severity):
                return
            _rclpy.rclpy_logging_rcutils_log(severity, self.ros_name, self.format(record),
                                             record.funcName or "", record.pathname or "", record.lineno or 0)
        except Exception:  # noqa: BLE001 - logging must not raise into the component
            self.handleError(record)
        finally:
            self._forwarding.active = False


# -- entities -------------------------------------------------------------------------------
class _Publisher(Publisher):
    def __init__(self, rn: "RosNode", topic: str, msg_type: type, qos: QoS) -> None:
        self.topic = topic
        self.msg_type = msg_type
        self._codec = codec.topic_codec(msg_type)
        events = PublisherEventCallbacks(incompatible_qos=rn.on_incompatible_qos(topic))
        self._pub = rn.node.create_publisher(message_class(self._codec.ros_type), topic, profile(qos),
                                             event_callbacks=events)
        self._info = None
        if msg_type is CameraFrame:
            self._info = rn.node.create_publisher(message_class("sensor_msgs/msg/CameraInfo"),
                                                  _camera_info_topic(topic), profile(qos))

    def publish(self, msg: Any) -> None:
        if not isinstance(msg, self.msg_type):
            raise TypeError(f"topic {self.topic}: expected {self.msg_type.__name__}, got {type(msg).__name__}")
        self._pub.publish(self._codec.encode(KIT, msg))
        if self._info is not None and msg.intrinsics is not None:
            frame_id = msg.frame_id or frames.optical_frame(msg.view)
            self._info.publish(codec.encode_camera_info(KIT, msg.intrinsics, msg.stamp, frame_id))


def _camera_info_topic(image_topic: str) -> str:
    head = image_topic.rsplit("/", 1)[0] if "/" in image_topic else ""
    return f"{head}/camera_info" if head else "camera_info"


class _Timer(Timer):
    def __init__(self, rn: "RosNode", period: float, callback: Callable[[], None]) -> None:
        if not period > 0:
            raise ValueError(f"timer period must be positive, got {period}")
        self.period = float(period)
        self.stats = PeriodStats(period)
        self._rn = rn
        self._callback = callback
        self._last: float | None = None
        # Wall-time timers run on the steady clock: on the system clock a backwards step would
        # stall them for as long as the step. Sim-time timers follow /clock as on any ROS node.
        clock = (rn.node.get_clock() if rn.clock.sim_time()
                 else RclpyClock(clock_type=ClockType.STEADY_TIME))
        self._timer = rn.node.create_timer(period, rn.guarded(self._run, f"timer {period:g}s"),
                                           callback_group=rn.group, clock=clock)

    def _run(self) -> None:
        now = self._rn.clock.timeline().now()
        if self._last is not None:
            # rclpy skips ticks that fall due while the group is busy; count them as overruns.
            missed = int(round((now - self._last) / self.period)) - 1
            if missed > 0:
                self.stats.overruns += missed
        self._last = now
        self.stats.tick(now)
        self._callback()

    def cancel(self) -> None:
        self._timer.cancel()


class _Client(ServiceClient):
    def __init__(self, rn: "RosNode", name: str, request_type: type) -> None:
        self.name = name
        self._host = rn.host
        self._codec = codec.service_codec(request_type)
        self._request_type = request_type
        self._client = rn.node.create_client(message_class(self._codec.ros_type), name,
                                             callback_group=rn.host.shared_group)

    def ready(self) -> bool:
        return self._client.service_is_ready()

    def call_async(self, request: Any) -> Future:
        fut: Future = Future()
        if not isinstance(request, self._request_type):
            fut.set_exception(TypeError(
                f"service {self.name}: expected {self._request_type.__name__}, got {type(request).__name__}"))
            return fut
        if not self._client.service_is_ready():
            fut.set_exception(LookupError(f"service {self.name} is not available"))
            return fut
        ros_future = self._client.call_async(self._codec.encode_request(KIT, request))

        def done(f: Any) -> None:
            try:
                fut.set_result(self._codec.decode_response(f.result()))
            except Exception as exc:  # noqa: BLE001 - handed to the caller
                fut.set_exception(exc)

        ros_future.add_done_callback(done)
        return fut

    def call(self, request: Any, timeout: float = 5.0) -> Any:
        # The executor that would deliver the response is the one this thread blocks: a component
        # callback, or any callback on the thread that spins a single-threaded executor (e.g. a
        # container's load request building a component).
        where = getattr(_IN_CALLBACK, "node", None)
        if where is None and self._host.spins_here():
            where = "the executor's thread"
        if where is not None:
            raise RuntimeError(
                f"service {self.name}: blocking call() from a callback of {where} would wait for the executor "
                "it blocks; use call_async() and handle the future, or call from a worker thread")
        # Discovery takes a moment under DDS: a blocking call waits for the server first.
        deadline = time.monotonic() + timeout
        self._client.wait_for_service(timeout_sec=timeout)
        return self.call_async(request).result(max(0.0, deadline - time.monotonic()))


class RosNode(HostedNode):
    """``NodeHandle`` on an rclpy ``Node``."""

    def __init__(self, host: "RosHost", node: Node) -> None:
        super().__init__(node.get_name(), node.get_namespace(), host)
        self.host = host
        self.node = node
        self.clock = RosClock(node)
        self.group = MutuallyExclusiveCallbackGroup()
        self.timers: list[_Timer] = []
        self.callback_errors = 0
        self.last_callback_error = ""
        self.incompatible_qos: dict[str, int] = collections.Counter()
        self.received: dict[str, int] = collections.Counter()
        self.busy_since: float | None = None
        self.busy_context = ""
        self.clock_jumps = 0
        self.last_clock_jump = ""
        self._jump_from = 0.0
        self._jump_handle = None
        if self.clock.sim_time():
            # rclpy follows any /clock message; it cannot refuse a jump, but it must not pass
            # unnoticed (the in-process host refuses it outright).
            self._jump_handle = node.get_clock().create_jump_callback(
                JumpThreshold(min_forward=Duration(seconds=MAX_SIM_CLOCK_JUMP),
                              min_backward=Duration(nanoseconds=-1), on_clock_change=False),
                pre_callback=self._before_clock_jump, post_callback=self._clock_jumped)
        self._posted: collections.deque[tuple[Callable[[], None], str]] = collections.deque()
        self._post_gc = node.create_guard_condition(self.guarded(self._drain_posted, "posted"),
                                                    callback_group=self.group)
        self._rosout = RosoutHandler(node.get_logger().name)
        self.logger.addHandler(self._rosout)
        # rcutils prints the forwarded record on the console: not a second time through the root logger.
        self.logger.propagate = False

    def detach_logger(self) -> None:
        """Give the Python logger back to Python's handlers (before the node is destroyed)."""
        self.logger.removeHandler(self._rosout)
        self.logger.propagate = True

    # callbacks run through here: counted, timed, never fatal to the executor
    def guarded(self, fn: Callable[..., Any], context: str) -> Callable[..., Any]:
        def run(*args: Any) -> Any:
            outer = getattr(_IN_CALLBACK, "node", None)
            _IN_CALLBACK.node = self.fqn
            self.busy_since, self.busy_context = time.monotonic(), context
            try:
                return fn(*args)
            except Exception as exc:  # noqa: BLE001 - isolation is the point
                self._callback_failed(context, exc)
                return None
            finally:
                self.busy_since = None
                _IN_CALLBACK.node = outer

        return run

    def _callback_failed(self, context: str, exc: Exception) -> None:
        self.callback_errors += 1
        self.last_callback_error = f"{context}: {type(exc).__name__}: {exc}"
        self.logger.exception("component %s: callback for %s raised", self.fqn, context)

    def _before_clock_jump(self) -> None:
        self._jump_from = self.clock.now()

    def _clock_jumped(self, _jump: TimeJump) -> None:
        if self._jump_from == 0.0:
            return  # the first /clock message: sim time starts at 0 until one arrives
        self.clock_jumps += 1
        self.last_clock_jump = describe_clock_jump(self._jump_from, self.clock.now(), MAX_SIM_CLOCK_JUMP)
        self.logger.error("%s: sim clock jump: %s", self.fqn, self.last_clock_jump)

    def on_incompatible_qos(self, topic: str) -> Callable[[Any], None]:
        def note(info: Any) -> None:
            self.incompatible_qos[topic] += 1
            self.logger.warning("%s: incompatible QoS with a peer on %s (policy %s)", self.fqn, topic,
                                getattr(info, "last_policy_kind", "?"))

        return note

    def create_publisher(self, topic: str, msg_type: type, qos: QoS) -> Publisher:
        return _Publisher(self, topic, msg_type, qos)

    def resolve_topic(self, topic: str) -> str:
        return self.node.resolve_topic_name(topic)

    def topic_publishers(self, topic: str) -> list[str]:
        infos = self.node.get_publishers_info_by_topic(topic)
        return [i.node_namespace.rstrip("/") + "/" + i.node_name for i in infos]

    def create_subscription(self, topic: str, msg_type: type, callback: Callable[[Any], None],
                            qos: QoS) -> None:
        c = codec.topic_codec(msg_type)
        infos: dict[str, CameraIntrinsics] = {}
        if msg_type is CameraFrame:
            def keep_info(m: Any) -> None:
                infos[str(m.header.frame_id)] = codec.decode_camera_info(m)

            self.node.create_subscription(
                message_class("sensor_msgs/msg/CameraInfo"), _camera_info_topic(topic),
                self.guarded(keep_info, f"camera_info of {topic}"), profile(qos), callback_group=self.group)

        def on_msg(m: Any) -> None:
            self.received[topic] += 1
            if msg_type is CameraFrame:
                intr = infos.get(str(m.header.frame_id))
                if intr is not None and (intr.width, intr.height) != (m.width, m.height):
                    intr = None
                items = [codec.decode_image(m, intrinsics=intr)]
            else:
                items = c.decode(m)
            for item in items:
                callback(item)

        events = SubscriptionEventCallbacks(incompatible_qos=self.on_incompatible_qos(topic))
        self.node.create_subscription(message_class(c.ros_type), topic, self.guarded(on_msg, f"topic {topic}"),
                                      profile(qos), callback_group=self.group, event_callbacks=events)

    def create_timer(self, period: float, callback: Callable[[], None]) -> Timer:
        t = _Timer(self, period, callback)
        self.timers.append(t)
        return t

    def create_service(self, name: str, request_type: type, handler: Callable[[Any], Any]) -> None:
        c = codec.service_codec(request_type)
        srv_cls = message_class(c.ros_type)

        def serve(request: Any, response: Any) -> Any:
            try:
                return c.encode_response(KIT, handler(c.decode_request(request)))
            except Exception as exc:  # noqa: BLE001 - counted like any callback error
                self._callback_failed(f"service {name}", exc)
                # The caller still gets an answer: a refusal saying why, where the type has room.
                if hasattr(response, "success") and hasattr(response, "message"):
                    response.success, response.message = False, f"{type(exc).__name__}: {exc}"
                return response

        self.node.create_service(srv_cls, name, self.guarded(serve, f"service {name}"),
                                 callback_group=self.group)

    def create_client(self, name: str, request_type: type) -> ServiceClient:
        return _Client(self, name, request_type)

    def schedule(self, fn: Callable[[], None], context: str) -> None:
        self._posted.append((fn, context))
        self._post_gc.trigger()

    def _drain_posted(self) -> None:
        while self._posted:
            fn, context = self._posted.popleft()
            self.guarded(fn, context)()


def _spin_once(executor: Executor, timeout: float) -> None:
    try:
        executor.spin_once(timeout_sec=timeout)
    except RuntimeError as exc:
        # A timer cancelled (by a component, or at shutdown) after the wait set saw it ready:
        # rclpy raises instead of skipping it. Nothing was lost; go on serving.
        if "canceled" not in str(exc):
            raise


class RosHost(RunControl):
    """Runs components as rclpy nodes on one executor: single-threaded unless ``num_threads`` > 1
    (see the module docstring for what each promises)."""

    def __init__(self, context: Context | None = None, diagnostics_period: float = 1.0,
                 num_threads: int = 1) -> None:
        super().__init__()
        if num_threads < 1:
            raise ValueError(f"num_threads must be at least 1, got {num_threads}")
        self.context = context or rclpy.get_default_context()
        self.shared_group = ReentrantCallbackGroup()
        self.nodes: list[RosNode] = []
        self.components: dict[str, Component] = {}
        self._num_threads = num_threads
        self._executor: Executor | None = None
        self._diag_period = diagnostics_period
        self._diag_pubs: list[tuple[RosNode, Component, Any]] = []
        self._diag_lock = threading.Lock()
        self._diag_thread: threading.Thread | None = None
        self._spin_thread: threading.Thread | None = None
        self._stopped = False

    def add(self, component: type[Component], name: str, namespace: str | None = None,
            params: Mapping[str, Any] | None = None, cli_args: list[str] | None = None) -> Component:
        """Create node ``name`` (``__node``/``__ns`` remaps from the command line win) and the
        component in it. Parameter errors raise ``ValueError`` naming node and field."""
        overrides = [Parameter(k, value=v) for k, v in (params or {}).items()]
        node = Node(name, namespace=namespace, context=self.context, cli_args=cli_args,
                    parameter_overrides=overrides)
        rn = RosNode(self, node)
        try:
            p = declare_params(node, component.Params, rn.fqn)
            comp = component(rn, p)
        except Exception:
            rn.detach_logger()
            node.destroy_node()
            raise
        if self._diag_period > 0:
            pub = node.create_publisher(message_class("diagnostic_msgs/msg/DiagnosticArray"),
                                        DIAGNOSTICS_TOPIC, profile(QoS.reliable(50)))
            with self._diag_lock:
                self._diag_pubs.append((rn, comp, pub))
        self.nodes.append(rn)
        self.components[rn.fqn] = comp
        if self._executor is not None:
            self._executor.add_node(node)
        return comp

    def remove(self, fqn: str, timeout: float = 5.0) -> list[str]:
        """Take node ``fqn`` out of a running host (a component container's unload): off the
        executor and the diagnostics, then what ``shutdown`` does for each node: the component's
        ``shutdown``, its workers joined, its node destroyed. Returns the names of its worker
        threads still alive after ``timeout`` (workers end on the host's stop or when the
        component's ``shutdown`` ends them). ``KeyError`` for a node the host does not run."""
        rn = next((n for n in self.nodes if n.fqn == fqn), None)
        if rn is None:
            raise KeyError(fqn)
        if self._executor is not None:
            self._executor.remove_node(rn.node)
        for t in rn.timers:
            t.cancel()
        with self._diag_lock:
            self._diag_pubs = [e for e in self._diag_pubs if e[0] is not rn]
        deadline = time.monotonic() + timeout
        while rn.busy_since is not None and time.monotonic() < deadline:
            time.sleep(0.01)  # a callback still running on another thread of a multi-threaded executor
        self.nodes.remove(rn)
        comp = self.components.pop(fqn)
        rn.guarded(comp.shutdown, "shutdown")()
        rn.join_workers(max(0.0, deadline - time.monotonic()))
        rn.detach_logger()
        rn.node.destroy_node()
        return [w.name for w in rn.workers if w.is_alive()]

    # -- diagnostics ------------------------------------------------------------------------
    def _diagnostics_loop(self) -> None:
        """A host thread, not an executor callback: on a single-threaded executor a component
        stuck in a callback would otherwise hold back the report that it is stuck."""
        while not self.stop_event.wait(self._diag_period):
            with self._diag_lock:
                entries = list(self._diag_pubs)
            for rn, comp, pub in entries:
                try:
                    self._diagnose(rn, comp, pub)
                except Exception:  # noqa: BLE001 - e.g. publishing while the context shuts down
                    rn.logger.debug("diagnostics of %s not sent", rn.fqn, exc_info=True)

    def _diagnose(self, rn: RosNode, comp: Component, pub: Any) -> None:
        busy = rn.busy_since
        if busy is not None and time.monotonic() - busy > self._diag_period:
            # The component is stuck in a callback: report that now rather than queue behind it.
            status = DiagnosticStatus(rn.fqn, DiagnosticLevel.WARN,
                                      f"busy in {rn.busy_context} for {time.monotonic() - busy:.1f} s",
                                      self._counters(rn), rn.clock.now())
            pub.publish(codec.encode_diagnostics(KIT, [status]))
            return

        def emit() -> None:
            values = {str(k): str(v) for k, v in comp.diagnostics().items()}
            values.update(self._counters(rn))
            status = rn.status(values, clock_jumps=rn.clock_jumps, incompatible_qos=len(rn.incompatible_qos),
                               health=comp.health())
            pub.publish(codec.encode_diagnostics(KIT, [status]))

        rn.schedule(emit, "diagnostics")

    @staticmethod
    def _counters(rn: RosNode) -> dict[str, str]:
        # Both counts always, so a dashboard sees the keys before the first error.
        out = {"callback_errors": str(rn.callback_errors), "worker_errors": str(rn.worker_errors),
               **rn.error_values()}
        if rn.clock_jumps:
            out["clock_jumps"] = str(rn.clock_jumps)
            out["last_clock_jump"] = rn.last_clock_jump
        for topic, n in rn.incompatible_qos.items():
            out[f"incompatible_qos {topic}"] = str(n)
        for topic, n in rn.received.items():
            out[f"received {topic}"] = str(n)
        return out

    # -- running ----------------------------------------------------------------------------
    def spins_here(self) -> bool:
        """Whether this thread is the only one serving the executor (nothing else would run a
        callback while it waits)."""
        return self._num_threads == 1 and self._spin_thread is threading.current_thread()

    def start(self) -> Executor:
        """The executor, created with the nodes added so far (later ones join it), and the
        diagnostics thread."""
        if self._executor is None:
            if self._num_threads == 1:
                self._executor = SingleThreadedExecutor(context=self.context)
            else:
                self._executor = MultiThreadedExecutor(num_threads=self._num_threads, context=self.context)
            for rn in self.nodes:
                self._executor.add_node(rn.node)
            if self._diag_period > 0:
                self._diag_thread = threading.Thread(target=self._diagnostics_loop, name="a2w-diagnostics",
                                                     daemon=True)
                self._diag_thread.start()
        return self._executor

    def spin(self, duration: float | None = None, install_signal_handlers: bool = True) -> None:
        """Serve callbacks until ``duration`` passes, SIGINT/SIGTERM, or ``stop()``; then shut down."""
        executor = self.start()
        self._spin_thread = threading.current_thread()
        if install_signal_handlers:
            self.install_signal_handlers()
        deadline = None if duration is None else time.monotonic() + duration
        try:
            while not self.stop_event.is_set() and self.context.ok():
                if deadline is not None and time.monotonic() >= deadline:
                    break
                _spin_once(executor, 0.1)
        except (ExternalShutdownException, KeyboardInterrupt):
            pass
        finally:
            self._spin_thread = None
            self.shutdown()

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop the executor (it waits for running callbacks), let each component release its
        resources, join workers, destroy nodes. With the executor stopped, ``Component.shutdown``
        runs serialised with the component's callbacks, as the contract promises."""
        if self._stopped:
            return
        self._stopped = True
        self.stop()
        for rn in self.nodes:
            for t in rn.timers:
                t.cancel()
        if self._executor is not None:
            self._executor.shutdown(timeout_sec=timeout)
        if self._diag_thread is not None:
            self._diag_thread.join(timeout)
        for rn in self.nodes:
            rn.guarded(self.components[rn.fqn].shutdown, "shutdown")()
        for rn in self.nodes:
            rn.join_workers(timeout)
        for rn in self.nodes:
            rn.detach_logger()
            rn.node.destroy_node()

