"""In-process topics: typed publish/subscribe with per-subscription keep-last queues."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

from a2w.clock import Clock, RateMeter
from a2w.host.executor import SerialExecutor
from a2w.host.qos import QoS


class Subscription:
    """A subscriber's queue. Depth-bounded: when full the oldest message is dropped and counted
    (with depth 1 that is newest-wins). Delivery is scheduled on the subscriber's executor."""

    def __init__(self, topic: "Topic", owner: str, callback: Callable[[Any], None], qos: QoS,
                 executor: SerialExecutor) -> None:
        self.topic = topic
        self.owner = owner
        self.callback = callback
        self.qos = qos
        self.executor = executor
        self._queue: deque[Any] = deque()
        self._lock = threading.Lock()
        self._scheduled = False
        self.received = 0
        self.delivered = 0
        self.dropped = 0

    def push(self, msg: Any) -> None:
        with self._lock:
            self.received += 1
            if len(self._queue) >= self.qos.depth:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append(msg)
            if self._scheduled:
                return
            self._scheduled = True
        self.executor.post(self._deliver, f"topic {self.topic.name}")

    def _deliver(self) -> None:
        with self._lock:
            msg = self._queue.popleft()
            if self._queue:
                # Keep one dispatch in flight per subscription so a burst cannot flood the
                # executor queue (and newest-wins replacement stays effective).
                self.executor.post(self._deliver, f"topic {self.topic.name}")
            else:
                self._scheduled = False
        self.delivered += 1
        self.callback(msg)


@dataclass(frozen=True)
class TopicInfo:
    name: str
    msg_type: str
    publishers: tuple[str, ...]
    subscribers: tuple[str, ...]
    published: int
    rate_hz: float
    dropped: int


class Topic:
    def __init__(self, name: str, msg_type: type, clock: Clock) -> None:
        self.name = name
        self.msg_type = msg_type
        self.publishers: list[str] = []
        self.subscriptions: list[Subscription] = []
        self.published = 0
        self.rate = RateMeter()
        self._clock = clock
        self._lock = threading.Lock()
        self._latched: Any = None
        # Synchronous listeners called in the publisher's thread (the host's /clock follower).
        self.taps: list[Callable[[Any], None]] = []

    def check_type(self, msg_type: type, who: str) -> None:
        if msg_type is not self.msg_type:
            raise TypeError(
                f"{who}: topic {self.name} carries {self.msg_type.__name__}, "
                f"not {msg_type.__name__}"
            )

    def subscribe(self, sub: Subscription) -> None:
        with self._lock:
            self.subscriptions.append(sub)
            latched = self._latched
        if latched is not None and sub.qos.latched:
            sub.push(latched)

    def publish(self, msg: Any, latched: bool) -> None:
        if not isinstance(msg, self.msg_type):
            raise TypeError(
                f"topic {self.name}: expected {self.msg_type.__name__}, got {type(msg).__name__}"
            )
        with self._lock:
            self.published += 1
            if latched:
                self._latched = msg
            subs = list(self.subscriptions)
        self.rate.mark(self._clock.now())
        for tap in self.taps:
            tap(msg)
        for sub in subs:
            sub.push(msg)

    def info(self) -> TopicInfo:
        with self._lock:
            subs = list(self.subscriptions)
        return TopicInfo(
            self.name, f"{self.msg_type.__module__}.{self.msg_type.__qualname__}",
            tuple(self.publishers), tuple(s.owner for s in subs), self.published,
            self.rate.rate(self._clock.now()), sum(s.dropped for s in subs),
        )


class Bus:
    """All topics of one host, created on first use by publisher or subscriber."""

    def __init__(self, clock: Clock) -> None:
        self._topics: dict[str, Topic] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def topic(self, name: str, msg_type: type, who: str) -> Topic:
        with self._lock:
            t = self._topics.get(name)
            if t is None:
                t = self._topics[name] = Topic(name, msg_type, self._clock)
        t.check_type(msg_type, who)
        return t

    def topics(self) -> list[Topic]:
        with self._lock:
            return sorted(self._topics.values(), key=lambda t: t.name)

    def get(self, name: str) -> Topic | None:
        with self._lock:
            return self._topics.get(name)

