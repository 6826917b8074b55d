"""The component contract: what a component may ask of the node that hosts it.

Components hold the behaviour; hosts only move messages and time. A component:

* declares ``Params`` (a dataclass) and receives them filled in as ``self.params``;
* publishes and subscribes by topic name with a ``QoS``; callbacks of one component never run
  concurrently with each other (one serial executor per component), so components need no locks
  for their own state;
* owns timers (period in seconds on its clock) and, for slow work (inference, encoding, device
  I/O), worker threads started through the handle so the host can stop and join them;
* never sleeps or blocks in a callback.

Two hosts implement ``NodeHandle``: the in-process ``a2w.host.Host`` and the rclpy host in
``a2w.ros``.
"""

from __future__ import annotations

import abc
import logging
import threading
from concurrent.futures import Future
from typing import Any, Callable, ClassVar, Generic, TypeVar

from a2w.clock import Clock, PeriodStats
from a2w.host.params import Params
from a2w.host.qos import QoS
from a2w.msgs.diagnostics import DiagnosticLevel

M = TypeVar("M")
Req = TypeVar("Req")
Resp = TypeVar("Resp")


class Publisher(abc.ABC, Generic[M]):
    topic: str
    msg_type: type

    @abc.abstractmethod
    def publish(self, msg: M) -> None:
        """Send ``msg``; never blocks on subscribers."""


class Timer(abc.ABC):
    stats: PeriodStats

    @abc.abstractmethod
    def cancel(self) -> None: ...


class ServiceClient(abc.ABC, Generic[Req, Resp]):
    name: str

    @abc.abstractmethod
    def call_async(self, request: Req) -> "Future[Resp]":
        """Send ``request``; the future resolves with the response or the handler's exception."""

    @abc.abstractmethod
    def ready(self) -> bool:
        """Whether a server answers this service now. Under DDS a server is seen a moment after
        its node's topics, so a component waits for this before its first call."""

    def call(self, request: Req, timeout: float = 5.0) -> Resp:
        """Blocking call, for worker threads and tools only (never from a callback)."""
        return self.call_async(request).result(timeout)


class NodeHandle(abc.ABC):
    """What a host gives a component."""

    name: str  # node name
    namespace: str  # e.g. "/" or "/left"
    clock: Clock
    logger: logging.Logger
    shutdown_event: threading.Event  # set when the host stops; workers watch it

    @property
    def fqn(self) -> str:
        return (self.namespace.rstrip("/") + "/" + self.name) if self.namespace != "/" else "/" + self.name

    @abc.abstractmethod
    def create_publisher(self, topic: str, msg_type: type[M], qos: QoS) -> Publisher[M]: ...

    @abc.abstractmethod
    def create_subscription(
        self, topic: str, msg_type: type[M], callback: Callable[[M], None], qos: QoS
    ) -> None: ...

    @abc.abstractmethod
    def create_timer(self, period: float, callback: Callable[[], None]) -> Timer: ...

    @abc.abstractmethod
    def create_service(
        self, name: str, request_type: type[Req], handler: Callable[[Req], Resp]
    ) -> None: ...

    @abc.abstractmethod
    def create_client(self, name: str, request_type: type[Req]) -> ServiceClient[Req, Resp]: ...

    @abc.abstractmethod
    def resolve_topic(self, topic: str) -> str:
        """The absolute name ``topic`` has for this node (namespace, private name, remaps)."""

    @abc.abstractmethod
    def topic_publishers(self, topic: str) -> list[str]:
        """Fully qualified names of the nodes publishing the resolved name ``topic``, one entry
        per publisher. Across processes this is what discovery has seen so far, so a node that
        must be a topic's only publisher checks it periodically."""

    @abc.abstractmethod
    def start_worker(self, name: str, target: Callable[[], None]) -> threading.Thread:
        """Run ``target`` in a thread the host joins at shutdown (``target`` must watch
        ``shutdown_event``). An exception in it is logged and counted, not propagated."""

    @abc.abstractmethod
    def request_shutdown(self, reason: str, exit_code: int = 0) -> None:
        """Ask the host to stop the whole process (e.g. a finished demo run, a fatal fault).
        The first request's exit code becomes the process's exit code."""

    @abc.abstractmethod
    def post(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` on this component's executor (e.g. a worker handing back a result)."""


class Component:
    """Base class of every component. Subclasses set ``Params`` and build in ``__init__``."""

    Params: ClassVar[type[Params]] = Params

    def __init__(self, node: NodeHandle, params: Params) -> None:
        self.node = node
        self.params = params
        self.log = node.logger

    def diagnostics(self) -> dict[str, Any]:
        """Key figures for /diagnostics (rates, drops, faults). Called on the component's executor."""
        return {}

    def health(self) -> tuple[DiagnosticLevel, str] | None:
        """The component's own verdict for /diagnostics (e.g. a fault it holds the arms for), or None
        when it has nothing to report. The host reports the worse of this and its own checks."""
        return None

    def shutdown(self) -> None:
        """Release resources. Called once, on the component's executor, before workers are joined."""
