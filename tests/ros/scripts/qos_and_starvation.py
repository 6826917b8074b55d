"""One process, several nodes: latched late joiner, a QoS mismatch, and a blocked component."""

import json
import threading
import time

import rclpy

from a2w.host.qos import QoS
from a2w.msgs.diagnostics import DiagnosticStatus
from a2w.ros.host import RosHost
from tests.probe_components import Latch, LateJoiner, Sleepy, Stamper

rclpy.init()
host = RosHost(diagnostics_period=0.25)
host.add(Latch, "latch")
sleepy = host.add(Sleepy, "sleepy", params={"block_s": 1.5})
ticker = host.add(Stamper, "ticker")
spinner = threading.Thread(target=host.spin, kwargs={"install_signal_handlers": False}, daemon=True)
spinner.start()
time.sleep(0.5)
collector = host.add(LateJoiner, "collector")  # joins after the latched message was sent
diags: list[DiagnosticStatus] = []
collector.node.create_subscription("/diagnostics", DiagnosticStatus, diags.append, QoS.reliable(100))
while not sleepy.started:
    time.sleep(0.01)
t0 = time.monotonic()
time.sleep(2.5)
blocked_window = [t for t in ticker.ticks if t0 < t < t0 + 1.4]
cn = next(n for n in host.nodes if n.name == "collector")
host.stop()
spinner.join(15)
rclpy.try_shutdown()
result = {
    "latched": [(e.episode_index, e.task) for e in collector.latched],
    "mismatched": len(collector.mismatched),
    "incompatible_qos": dict(cn.incompatible_qos),
    "ticks_while_blocked": len(blocked_window),
    "sleepy_diag": sorted({(d.level, d.message.split(" for ")[0]) for d in diags if d.name == "/sleepy"}),
    "ticker_diag_levels": sorted({d.level for d in diags if d.name == "/ticker"}),
}
print("RESULT " + json.dumps(result))
