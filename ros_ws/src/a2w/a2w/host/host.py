"""The in-process host: runs components as if each were a ROS 2 node, in one process."""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import math
import os
import threading
import time
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from a2w.clock import MAX_SIM_CLOCK_JUMP, Clock, PeriodStats, SimClock, WallClock
from a2w.host.bookkeeping import HostedNode, RunControl, describe_clock_jump
from a2w.host.bus import Bus, Subscription
from a2w.host.component import Component, Publisher, ServiceClient, Timer
from a2w.host.executor import SerialExecutor
from a2w.host.names import apply_remaps, join_namespace
from a2w.host.params import build_params
from a2w.host.qos import QoS
from a2w.msgs.diagnostics import DiagnosticLevel, DiagnosticStatus
from a2w.msgs.sim import ClockTick

log = logging.getLogger(__name__)

CLOCK_TOPIC = "/clock"


class ClockFollower:
    """Sets the host's sim clock from /clock, refusing a tick that would jump it.

    A tick is refused when it is not finite, goes backwards, or (after the first) moves forward
    by more than ``max_jump`` seconds (``MAX_SIM_CLOCK_JUMP``). Accepting it would stall
    (backwards) or leap (forwards) every ``use_sim_time`` timer and watchdog, and the real
    simulator's next tick would then be refused. A refusal never raises
    into the publisher; it is logged as an error (at most once a second), counted, and reported
    on /diagnostics by the host.
    """

    def __init__(self, clock: SimClock, max_jump: float) -> None:
        if not (math.isfinite(max_jump) and max_jump > 0):
            raise ValueError(f"max_clock_jump: must be a positive finite number of seconds, got {max_jump}")
        self.clock = clock
        self.max_jump = max_jump
        self.refused = 0
        self.last_refused = ""
        self._seen = False
        self._logged_at = -math.inf
        self._lock = threading.Lock()

    def __call__(self, tick: ClockTick) -> None:
        with self._lock:
            now, t = self.clock.now(), float(tick.time)
            if math.isfinite(t) and t >= now and (not self._seen or t - now <= self.max_jump):
                self._seen = True
                self.clock.set(t)
                return
            self.refused += 1
            self.last_refused = describe_clock_jump(now, t, self.max_jump)
            due = time.monotonic() - self._logged_at >= 1.0
            if due:
                self._logged_at = time.monotonic()
        if due:
            log.error("refused a sim clock jump: %s; %d refused so far", self.last_refused, self.refused)


class _Publisher(Publisher):
    def __init__(self, host: "Host", topic: str, msg_type: type, qos: QoS, owner: str) -> None:
        self.topic = topic
        self.msg_type = msg_type
        self._t = host.bus.topic(topic, msg_type, owner)
        self._t.publishers.append(owner)
        self._latched = qos.latched

    def publish(self, msg: Any) -> None:
        self._t.publish(msg, self._latched)


class _Timer(Timer):
    def __init__(self, period: float, callback: Callable[[], None], executor: SerialExecutor, clock: Clock,
                 context: str) -> None:
        if not period > 0:
            raise ValueError(f"timer period must be positive, got {period}")
        self.period = float(period)
        self.callback = callback
        self.executor = executor
        self.clock = clock
        self.context = context
        self.stats = PeriodStats(period)
        self.cancelled = False
        self._pending = False
        self._lock = threading.Lock()

    def fire(self) -> None:
        with self._lock:
            if self._pending:
                # The previous tick has not run yet: skip rather than pile up (counted).
                self.stats.overrun()
                return
            self._pending = True
        self.executor.post(self._run, self.context)

    def _run(self) -> None:
        with self._lock:
            self._pending = False
        if self.cancelled:
            return
        self.stats.tick(self.clock.now())
        self.callback()

    def cancel(self) -> None:
        self.cancelled = True


class _TimerScheduler:
    """One thread per timeline (``Clock.timeline()``) firing due timers in deadline order."""

    def __init__(self, clock: Clock, stop: threading.Event) -> None:
        self.clock = clock
        self._stop = stop
        self._heap: list[tuple[float, int, _Timer]] = []
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self._changed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="timers", daemon=True)

    def add(self, timer: _Timer) -> None:
        with self._lock:
            heapq.heappush(self._heap, (self.clock.now() + timer.period, next(self._seq), timer))
        self.wake()

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self.wake()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def wake(self) -> None:
        self._changed.set()
        self.clock.wake()

    def _run(self) -> None:
        # ``_changed`` doubles as the wait's cancel event: set when a timer is added (it may be
        # due first) and on shutdown; either way the head of the heap is re-evaluated.
        while not self._stop.is_set():
            with self._lock:
                head = self._heap[0] if self._heap else None
            if head is None:
                self._changed.wait(0.5)
                self._changed.clear()
                continue
            deadline, _, timer = head
            self._changed.clear()
            if not self.clock.wait_until(deadline, self._changed):
                continue
            with self._lock:
                if not self._heap or self._heap[0][2] is not timer or self._heap[0][0] != deadline:
                    continue
                heapq.heappop(self._heap)
                if not timer.cancelled:
                    # Next deadline from the nominal grid, not from "now": no drift. If we fell
                    # more than a period behind, resynchronise instead of firing a burst.
                    nxt = deadline + timer.period
                    now = self.clock.now()
                    if nxt <= now:
                        skipped = int((now - nxt) // timer.period) + 1
                        timer.stats.overruns += skipped
                        nxt += skipped * timer.period
                    heapq.heappush(self._heap, (nxt, next(self._seq), timer))
            if not timer.cancelled:
                timer.fire()


class _Client(ServiceClient):
    def __init__(self, host: "Host", name: str, request_type: type) -> None:
        self.name = name
        self._host = host
        self._request_type = request_type

    def ready(self) -> bool:
        return self.name in self._host._services

    def call_async(self, request: Any) -> Future:
        fut: Future = Future()
        if not isinstance(request, self._request_type):
            fut.set_exception(TypeError(
                f"service {self.name}: expected {self._request_type.__name__}, "
                f"got {type(request).__name__}"))
            return fut
        entry = self._host._services.get(self.name)
        if entry is None:
            fut.set_exception(LookupError(f"service {self.name} is not available"))
            return fut
        handler, executor, req_type = entry
        if req_type is not self._request_type:
            fut.set_exception(TypeError(f"service {self.name} takes {req_type.__name__}"))
            return fut

        def run() -> None:
            try:
                fut.set_result(handler(request))
            except Exception as exc:  # noqa: BLE001 - handed to the caller
                fut.set_exception(exc)
                raise

        executor.post(run, f"service {self.name}")
        return fut


class _Node(HostedNode):
    def __init__(self, host: "Host", name: str, namespace: str, remaps: Mapping[str, str],
                 clock: Clock) -> None:
        super().__init__(name, namespace, host)
        self.remaps = dict(remaps)
        self.clock = clock
        self.executor = SerialExecutor(self.fqn)
        self.timers: list[_Timer] = []
        self.subscriptions: list[Subscription] = []
        self._host = host

    @property
    def callback_errors(self) -> int:
        return self.executor.errors

    @property
    def last_callback_error(self) -> str:
        return self.executor.last_error

    def schedule(self, fn: Callable[[], None], context: str) -> None:
        self.executor.post(fn, context)

    def resolve(self, name: str) -> str:
        return apply_remaps(name, self.remaps, self.namespace, self.name)

    def create_publisher(self, topic: str, msg_type: type, qos: QoS) -> Publisher:
        return _Publisher(self._host, self.resolve(topic), msg_type, qos, self.fqn)

    def resolve_topic(self, topic: str) -> str:
        return self.resolve(topic)

    def topic_publishers(self, topic: str) -> list[str]:
        t = self._host.bus.get(topic)
        return list(t.publishers) if t is not None else []

    def create_subscription(self, topic: str, msg_type: type, callback: Callable[[Any], None],
                            qos: QoS) -> None:
        t = self._host.bus.topic(self.resolve(topic), msg_type, self.fqn)
        sub = Subscription(t, self.fqn, callback, qos, self.executor)
        self.subscriptions.append(sub)
        t.subscribe(sub)

    def create_timer(self, period: float, callback: Callable[[], None]) -> Timer:
        # Scheduled (and its period measured) on the clock's timeline: monotonic for wall time.
        sched = self._host._scheduler_for(self.clock.timeline())
        timer = _Timer(period, callback, self.executor, sched.clock, f"timer {period:g}s")
        self.timers.append(timer)
        sched.add(timer)
        return timer

    def create_service(self, name: str, request_type: type, handler: Callable[[Any], Any]) -> None:
        full = self.resolve(name)
        if full in self._host._services:
            raise ValueError(f"service {full} is already provided")
        self._host._services[full] = (handler, self.executor, request_type)

    def create_client(self, name: str, request_type: type) -> ServiceClient:
        return _Client(self._host, self.resolve(name), request_type)



@dataclass
class NodeSpec:
    """How to instantiate one component (what a launch file's <node> says)."""

    component: type[Component]
    name: str
    namespace: str = "/"
    params: dict[str, Any] = field(default_factory=dict)
    remaps: dict[str, str] = field(default_factory=dict)


class Host(RunControl):
    """Runs components in-process with ROS-like topics, QoS, timers, services and parameters."""

    def __init__(self, clock: Clock | None = None, sim_clock: SimClock | None = None,
                 diagnostics_period: float = 1.0, max_clock_jump: float = MAX_SIM_CLOCK_JUMP) -> None:
        super().__init__()
        self.wall_clock = clock or WallClock()
        self.sim_clock = sim_clock or SimClock()
        # Topic rates are measured on the monotonic timeline: a wall-clock step must not skew them.
        self.bus = Bus(self.wall_clock.timeline())
        self._schedulers: dict[int, _TimerScheduler] = {}
        self._services: dict[str, tuple[Callable[[Any], Any], SerialExecutor, type]] = {}
        self.nodes: list[_Node] = []
        self.components: dict[str, Component] = {}
        self._started = False
        self._stopped = False
        self._diag_period = diagnostics_period
        self._diag_pub = _Publisher(self, "/diagnostics", DiagnosticStatus, QoS.reliable(50), "host")
        # /clock drives the sim clock, as rclpy does for nodes with use_sim_time.
        self.clock_follower = ClockFollower(self.sim_clock, max_clock_jump)
        self.bus.topic(CLOCK_TOPIC, ClockTick, "host").taps.append(self.clock_follower)

    # -- building -------------------------------------------------------------------------
    def _scheduler_for(self, clock: Clock) -> _TimerScheduler:
        sched = self._schedulers.get(id(clock))
        if sched is None:
            sched = self._schedulers[id(clock)] = _TimerScheduler(clock, self.stop_event)
            if self._started:
                sched.start()
        return sched

    def add(self, spec: NodeSpec) -> Component:
        """Instantiate a component. Parameter errors raise ``ValueError`` naming node and field."""
        ns = join_namespace(spec.namespace)
        fqn = join_namespace(ns, spec.name)
        if fqn in self.components:
            raise ValueError(f"a node named {fqn} already exists")
        params = build_params(spec.component.Params, spec.params, fqn)
        clock: Clock = self.sim_clock if params.use_sim_time else self.wall_clock
        node = _Node(self, spec.name, ns, spec.remaps, clock)
        component = spec.component(node, params)
        self.nodes.append(node)
        self.components[fqn] = component
        if self._started:
            node.executor.start()
        return component

    def add_component(self, component: type[Component], name: str, **params: Any) -> Component:
        """Shorthand for tests and tools."""
        return self.add(NodeSpec(component, name, params=params))

    # -- running --------------------------------------------------------------------------
    def start(self) -> None:
        if self._started:
            return
        self._started = True
        for node in self.nodes:
            node.executor.start()
        for sched in self._schedulers.values():
            sched.start()
        if self._diag_period > 0:
            self._diag_thread = threading.Thread(target=self._diag_loop, name="diagnostics", daemon=True)
            self._diag_thread.start()

    def spin(self, duration: float | None = None, install_signal_handlers: bool = True,
             snapshot_dir: Path | None = None) -> None:
        """Run until ``duration`` (wall seconds) passes, SIGINT/SIGTERM, or ``stop()``."""
        self.start()
        if install_signal_handlers:
            self.install_signal_handlers()
        deadline = None if duration is None else time.monotonic() + duration
        snap_path = None
        if snapshot_dir is not None:
            snapshot_dir.mkdir(parents=True, exist_ok=True)
            snap_path = snapshot_dir / f"{os.getpid()}.json"
        try:
            while not self.stop_event.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    break
                if snap_path is not None:
                    _write_atomic(snap_path, json.dumps(self.introspect(), indent=1))
                self.stop_event.wait(0.5 if deadline is None else max(0.0, min(0.5, deadline - time.monotonic())))
        finally:
            self.shutdown()
            if snap_path is not None:
                snap_path.unlink(missing_ok=True)

    def stop(self) -> None:
        super().stop()
        for sched in self._schedulers.values():
            sched.wake()

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop timers, let each component release resources, join workers and executors."""
        if self._stopped:
            return
        self._stopped = True
        self.stop()
        for sched in self._schedulers.values():
            sched.join(timeout)
        for fqn, comp in self.components.items():
            node = self._node(fqn)
            done = threading.Event()

            def do_shutdown(c: Component = comp) -> None:
                try:
                    c.shutdown()
                finally:
                    done.set()

            if self._started:
                node.executor.post(do_shutdown, "shutdown")
                if not done.wait(timeout):
                    log.error("component %s did not shut down within %.1fs", fqn, timeout)
            else:
                do_shutdown()
        for node in self.nodes:
            node.join_workers(timeout)
            node.executor.stop(timeout)

    def _node(self, fqn: str) -> _Node:
        return next(n for n in self.nodes if n.fqn == fqn)

    # -- introspection --------------------------------------------------------------------
    def introspect(self) -> dict[str, Any]:
        """Components, topics (publishers, subscribers, rate, drops), timers and errors."""
        nodes = []
        for node in self.nodes:
            nodes.append({
                "name": node.fqn,
                "component": type(self.components[node.fqn]).__qualname__,
                "callback_errors": node.callback_errors,
                "worker_errors": node.worker_errors,
                "last_error": node.last_callback_error or node.last_worker_error,
                "timers": [
                    {"period": t.period, **asdict(t.stats.report())} for t in node.timers
                ],
                "subscriptions": [
                    {"topic": s.topic.name, "received": s.received, "delivered": s.delivered,
                     "dropped": s.dropped, "depth": s.qos.depth} for s in node.subscriptions
                ],
            })
        return {
            "pid": os.getpid(),
            "time": self.wall_clock.now(),
            "sim_time": self.sim_clock.now(),
            "clock_jumps_refused": self.clock_follower.refused,
            "last_clock_jump": self.clock_follower.last_refused,
            "nodes": nodes,
            "topics": [asdict(t.info()) for t in self.bus.topics()],
            "services": sorted(self._services),
        }

    def _diag_loop(self) -> None:
        while not self.stop_event.wait(self._diag_period):
            for node in self.nodes:
                comp = self.components[node.fqn]

                def emit(c: Component = comp, n: _Node = node) -> None:
                    values = {k: str(v) for k, v in c.diagnostics().items()}
                    self._diag_pub.publish(n.status({**values, **n.error_values()}, health=c.health()))

                node.schedule(emit, "diagnostics")
            follower = self.clock_follower
            if follower.refused:
                self._diag_pub.publish(DiagnosticStatus(
                    name=CLOCK_TOPIC, level=DiagnosticLevel.ERROR,
                    message=f"{follower.refused} /clock jump(s) refused",
                    values={"refused": str(follower.refused), "last": follower.last_refused},
                    stamp=self.wall_clock.now()))


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
