"""Small components that exercise the hosts in tests: counters, echo, a failing callback for the
in-process host; talkers, listeners, latching, blocking and crashing components that the ROS tier's
scripts (tests/ros/scripts) run as real rclpy nodes."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from a2w.host import Component, NodeHandle, ParamGroup, Params, QoS, param
from a2w.msgs.cameras import CameraFrame, CameraIntrinsics
from a2w.msgs.episode import EpisodeEvent, EpisodeEventKind
from a2w.msgs.services import Outcome, StopRequest


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


class Talker(Component):
    """Publishes numbered EpisodeEvents and small camera frames; ``~/stop`` answers with the count."""

    @dataclass
    class Params(Params):
        rate: float = param(20.0, "publish rate (Hz)", low=1.0, high=200.0)
        task: str = param("", "text carried in every event")
        views: list[str] = param(["front"], "camera views to publish")
        shutdown_marker: str = param("", "file written when the component shuts down")

    def __init__(self, node: NodeHandle, params: Any) -> None:
        super().__init__(node, params)
        self.sent = 0
        self.events = node.create_publisher("~/events", EpisodeEvent, QoS.reliable(10))
        self.cams = {v: node.create_publisher(f"/cameras/{v}/color/image_raw", CameraFrame, QoS.sensor())
                     for v in params.views}
        self.intr = CameraIntrinsics(32, 24, 30.0, 30.0, 15.5, 11.5)
        node.create_timer(1.0 / params.rate, self.tick)
        node.create_service("~/stop", StopRequest, self.on_stop)

    def tick(self) -> None:
        now = self.node.clock.now()
        self.events.publish(EpisodeEvent(EpisodeEventKind.MARK, now, self.sent, self.params.task))
        img = np.full((24, 32, 3), self.sent % 256, np.uint8)
        for view, pub in self.cams.items():
            pub.publish(CameraFrame(view, img, now, intrinsics=self.intr))
        self.sent += 1

    def on_stop(self, req: StopRequest) -> Outcome:
        return Outcome(True, f"{req.reason}: sent {self.sent}")

    def shutdown(self) -> None:
        if self.params.shutdown_marker:
            Path(self.params.shutdown_marker).write_text(f"sent {self.sent}")


class Listener(Component):
    """Records what arrives; can call a Stop service."""

    @dataclass
    class Params(Params):
        views: list[str] = param(["front"], "camera views to subscribe to")
        stop_service: str = param("/talker/stop", "service to call")

    def __init__(self, node: NodeHandle, params: Any) -> None:
        super().__init__(node, params)
        self.events: list[EpisodeEvent] = []
        self.frames: list[CameraFrame] = []
        node.create_subscription("/talker/events", EpisodeEvent, self.events.append, QoS.reliable(50))
        for v in params.views:
            node.create_subscription(f"/cameras/{v}/color/image_raw", CameraFrame, self.frames.append,
                                     QoS.sensor())
        self.stop = node.create_client(params.stop_service, StopRequest)


class Latch(Component):
    """Publishes one latched EpisodeEvent and one best-effort event per tick."""

    def __init__(self, node: NodeHandle, params: Any) -> None:
        super().__init__(node, params)
        node.create_publisher("/latched", EpisodeEvent, QoS.latched_state()).publish(
            EpisodeEvent(EpisodeEventKind.START, node.clock.now(), 7, "latched"))
        self.be = node.create_publisher("/best_effort", EpisodeEvent, QoS.sensor())
        node.create_timer(0.05, lambda: self.be.publish(EpisodeEvent(EpisodeEventKind.MARK, node.clock.now())))


class LateJoiner(Component):
    """Late joiner: subscribes latched (matching QoS) and, mismatched, reliable to a best-effort topic."""

    def __init__(self, node: NodeHandle, params: Any) -> None:
        super().__init__(node, params)
        self.latched: list[EpisodeEvent] = []
        self.mismatched: list[EpisodeEvent] = []
        node.create_subscription("/latched", EpisodeEvent, self.latched.append, QoS.latched_state())
        node.create_subscription("/best_effort", EpisodeEvent, self.mismatched.append, QoS.reliable(10))


class Sleepy(Component):
    """Blocks its own callbacks (a misbehaving component): must not starve anyone else."""

    @dataclass
    class Params(Params):
        block_s: float = param(1.5, "how long the slow callback blocks", low=0.0)

    def __init__(self, node: NodeHandle, params: Any) -> None:
        super().__init__(node, params)
        self.started = False
        node.create_timer(0.05, self.slow)

    def slow(self) -> None:
        if not self.started:
            self.started = True
            time.sleep(self.params.block_s)  # deliberately breaks the contract


class Stamper(Component):
    """Records the monotonic time of each 20 ms timer tick."""

    def __init__(self, node: NodeHandle, params: Any) -> None:
        super().__init__(node, params)
        self.ticks: list[float] = []
        self.timer = node.create_timer(0.02, lambda: self.ticks.append(time.monotonic()))


@dataclass
class TunableDriver(ParamGroup):
    rate: float = param(1.0, "a float in a group", low=0.5)
    serials: list[str] = param(["a", "b"], "a string list in a group")


class Tunable(Component):
    """Does nothing; float parameters of every kind for the parameter checks, one in a group."""

    @dataclass
    class Params(Params):
        gain: float = param(1.0, "a float without a range")
        limit: float = param(1.0, "a float with a range", low=0.0, high=10.0)
        weights: list[float] = param([1.0, 2.0], "a float list")
        driver: TunableDriver = param(TunableDriver(), "a driver's parameters, declared as driver.*")


class Crashy(Component):
    """Its worker thread dies shortly after start: the run must end, not go on without it."""

    def __init__(self, node: NodeHandle, params: Any) -> None:
        super().__init__(node, params)
        node.start_worker("physics", self._run)

    def _run(self) -> None:
        self.node.shutdown_event.wait(0.5)
        raise RuntimeError("physics diverged")


class SlowStart(Component):
    """Takes ``startup_s`` to build (as a device connection does, watching shutdown), then logs
    its first timer tick: the signal tests interrupt it in either phase."""

    @dataclass
    class Params(Params):
        startup_s: float = param(0.0, "how long construction waits for shutdown", low=0.0)

    def __init__(self, node: NodeHandle, params: Any) -> None:
        super().__init__(node, params)
        self.log.info("building")
        node.shutdown_event.wait(params.startup_s)
        self.ticked = False
        node.create_timer(0.05, self.tick)

    def tick(self) -> None:
        if not self.ticked:
            self.ticked = True
            self.log.info("spinning")
