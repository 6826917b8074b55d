"""One process, several nodes: latched late joiner, a QoS mismatch, a blocked component, and
blocking service calls. ``argv[1]``: the executor's thread count (1, the default host, or more)."""

import json
import sys
import threading
import time
from typing import Any

import rclpy

from a2w.host.component import Component, NodeHandle
from a2w.host.qos import QoS
from a2w.msgs.diagnostics import DiagnosticStatus
from a2w.msgs.services import Outcome, StopRequest
from a2w.ros.host import RosHost
from tests.probe_components import Latch, LateJoiner, Sleepy, Stamper


class Server(Component):
    def __init__(self, node: NodeHandle, params: Any) -> None:
        super().__init__(node, params)
        node.create_service("/probe/stop", StopRequest, lambda r: Outcome(True, f"served {r.reason}"))


class LateServer(Component):
    def __init__(self, node: NodeHandle, params: Any) -> None:
        super().__init__(node, params)
        node.create_service("/probe/late", StopRequest, lambda r: Outcome(True, "late"))


class Caller(Component):
    """Calls /probe/stop from a callback, blocking (refused) and async, and from a worker."""

    def __init__(self, node: NodeHandle, params: Any) -> None:
        super().__init__(node, params)
        self.client = node.create_client("/probe/stop", StopRequest)
        self.outcomes: dict[str, Any] = {}
        self.timer = node.create_timer(0.1, self.tick)

    def tick(self) -> None:
        if "in_callback" in self.outcomes:
            return
        t0 = time.monotonic()
        try:
            self.client.call(StopRequest("blocking"), timeout=3.0)
            self.outcomes["in_callback"] = ["returned", time.monotonic() - t0]
        except Exception as exc:  # noqa: BLE001 - recorded for the test
            self.outcomes["in_callback"] = [type(exc).__name__, str(exc)]
        fut = self.client.call_async(StopRequest("async"))
        fut.add_done_callback(lambda f: self.node.post(lambda: self._async_done(f)))
        self.node.start_worker("caller", self._from_worker)

    def _async_done(self, fut: Any) -> None:
        self.outcomes["async"] = repr(fut.exception()) if fut.exception() else fut.result().message

    def _from_worker(self) -> None:
        try:
            self.outcomes["worker"] = self.client.call(StopRequest("worker"), timeout=10.0).message
        except Exception as exc:  # noqa: BLE001
            self.outcomes["worker"] = f"{type(exc).__name__}: {exc}"


threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
rclpy.init()
host = RosHost(diagnostics_period=0.25, num_threads=threads)
host.add(Latch, "latch")
host.add(Server, "server")
sleepy = host.add(Sleepy, "sleepy", params={"block_s": 1.5})
ticker = host.add(Stamper, "ticker")
spinner = threading.Thread(target=host.spin, kwargs={"install_signal_handlers": False}, daemon=True)
spinner.start()
while not sleepy.started:  # its first tick blocks for 1.5 s from now
    time.sleep(0.01)
t0, w0 = time.monotonic(), time.time()
time.sleep(0.5)
collector = host.add(LateJoiner, "collector")  # joins after the latched message was sent
diags: list[DiagnosticStatus] = []
collector.node.create_subscription("/diagnostics", DiagnosticStatus, diags.append, QoS.reliable(100))
time.sleep(2.0)
blocked_window = [t for t in ticker.ticks if t0 < t < t0 + 1.4]
after_window = [t for t in ticker.ticks if t0 + 1.6 < t < t0 + 2.5]
caller = host.add(Caller, "caller")  # the server has been discovered by now


def raw_callback() -> None:
    """A callback the host does not wrap (as a container's load request is): the single
    executor thread is recognised all the same."""
    raw_timer.cancel()
    try:
        caller.outcomes["raw"] = caller.client.call(StopRequest("raw"), timeout=3.0).message
    except Exception as exc:  # noqa: BLE001
        caller.outcomes["raw"] = f"{type(exc).__name__}: {exc}"


raw_timer = next(n for n in host.nodes if n.name == "caller").node.create_timer(0.05, raw_callback)
deadline = time.monotonic() + 15
while time.monotonic() < deadline and len(caller.outcomes) < 4:
    time.sleep(0.05)
# A client sees a server only once discovery has matched them: ready() says when a first call can go.
late = caller.node.create_client("/probe/late", StopRequest)
ready = {"before_server": late.ready()}
host.add(LateServer, "late_server")
deadline = time.monotonic() + 10
while time.monotonic() < deadline and not late.ready():
    time.sleep(0.02)
ready["after_server"] = late.ready()
ready["answer"] = late.call(StopRequest("late"), timeout=3.0).message if ready["after_server"] else None
cn = next(n for n in host.nodes if n.name == "collector")
host.stop()
spinner.join(15)
rclpy.try_shutdown()
result = {
    "latched": [(e.episode_index, e.task) for e in collector.latched],
    "mismatched": len(collector.mismatched),
    "incompatible_qos": dict(cn.incompatible_qos),
    "ticks_while_blocked": len(blocked_window),
    "ticks_after_block": len(after_window),
    "sleepy_diag": sorted({(d.level, d.message.split(" for ")[0]) for d in diags if d.name == "/sleepy"}),
    # Stamped while the callback still blocked (so sent then, not after it returned).
    "busy_reported_while_blocked": any(w0 < d.stamp < w0 + 1.4 for d in diags
                                       if d.name == "/sleepy" and d.message.startswith("busy")),
    "ticker_diag_levels": sorted({d.level for d in diags if d.name == "/ticker"}),
    "calls": caller.outcomes,
    "ready": ready,
    "caller_errors": next(n for n in host.nodes if n.name == "caller").callback_errors,
}
print("RESULT " + json.dumps(result))
