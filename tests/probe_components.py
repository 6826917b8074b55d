"""Small components that exercise the host in tests (counters, echo, a failing callback)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from a2w.host import Component, Params, QoS, param


@dataclass
class TickerParams(Params):
    period: float = param(0.01, "timer period (s)", low=1e-4, high=10.0)
    topic: str = param("ticks", "where to publish the tick count")
    count: int = param(0, "stop the host after this many ticks (0 = never)", low=0)
    gain: float = param(1.0, "unused; a float parameter for type tests")
    tags: list = param([], "unused; a list parameter")
    mode: str = param("a", "unused; a choice", choices=("a", "b"))


class Ticker(Component):
    """Publishes an increasing integer on a timer."""

    Params = TickerParams

    def __init__(self, node, params):
        super().__init__(node, params)
        self.n = 0
        self.pub = node.create_publisher(params.topic, int, QoS.reliable())
        self.timer = node.create_timer(params.period, self.tick)

    def tick(self):
        self.n += 1
        self.pub.publish(self.n)
        if self.params.count and self.n >= self.params.count:
            self.node.request_shutdown(f"published {self.n} ticks", exit_code=3)


@dataclass
class CollectorParams(Params):
    topic: str = param("ticks", "topic to collect")
    depth: int = param(10, "queue depth", low=1)
    delay: float = param(0.0, "seconds to block in each callback (to force drops)", low=0.0)


class Collector(Component):
    Params = CollectorParams

    def __init__(self, node, params):
        super().__init__(node, params)
        self.got: list[int] = []
        self.release = threading.Event()
        node.create_subscription(params.topic, int, self.on_msg, QoS.reliable(params.depth))

    def on_msg(self, msg):
        if self.params.delay:
            self.release.wait(self.params.delay)
        self.got.append(msg)


class Exploder(Component):
    """Raises on every odd message: the host must isolate it."""

    def __init__(self, node, params):
        super().__init__(node, params)
        self.ok = 0
        node.create_subscription("ticks", int, self.on_msg, QoS.reliable())

    def on_msg(self, msg):
        if msg % 2:
            raise RuntimeError(f"odd {msg}")
        self.ok += 1


@dataclass
class Doubled:
    value: int


class Doubler(Component):
    """A service: returns twice the request value."""

    def __init__(self, node, params):
        super().__init__(node, params)
        node.create_service("double", Doubled, lambda req: Doubled(req.value * 2))
