"""Component logs reach /rosout: a component in a child process (``a2w.ros.main``, as ros2 run
starts it) logs at each level through its node's Python logger; this process subscribes to
/rosout (rcl_interfaces/msg/Log) and collects what arrives. The child's console output is kept to
count how often each line was printed."""

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from a2w.host.component import Component, NodeHandle
from a2w.host.params import Params, param

MARK = "rosout-probe"


class Chatty(Component):
    """Logs one line per level every ``period`` seconds, and one with a traceback."""

    @dataclass
    class Params(Params):
        period: float = param(0.2, "seconds between rounds of log lines", low=0.01)

    def __init__(self, node: NodeHandle, params: Any) -> None:
        super().__init__(node, params)
        self.n = 0
        node.logger.info("%s built", MARK)
        node.create_timer(params.period, self.tick)

    def tick(self) -> None:
        self.n += 1
        log = self.node.logger
        log.debug("%s debug %d", MARK, self.n)
        log.info("%s info %d", MARK, self.n)
        log.warning("%s warning %d", MARK, self.n)
        log.error("%s error %d", MARK, self.n)
        log.critical("%s critical %d", MARK, self.n)
        try:
            raise KeyError("boom")
        except KeyError:
            log.exception("%s exception %d", MARK, self.n)


def main() -> None:
    import rclpy
    from rcl_interfaces.msg import Log
    from rclpy.node import Node
    from rclpy.qos import QoSDurabilityPolicy, QoSProfile, QoSReliabilityPolicy

    rclpy.init()
    listener = Node("rosout_listener")
    got: list[Log] = []
    # /rosout is reliable, transient local (keep-last 1000) in Jazzy: a late joiner still sees the start.
    qos = QoSProfile(depth=1000, reliability=QoSReliabilityPolicy.RELIABLE,
                     durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)
    listener.create_subscription(Log, "/rosout", got.append, qos)
    child = subprocess.Popen(
        [sys.executable, "-m", "a2w.ros.main", "tests.ros.scripts.rosout:Chatty", "--name", "chatty",
         "--duration", "30", "--ros-args", "-r", "__ns:=/probe"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        rclpy.spin_once(listener, timeout_sec=0.1)
        if any(MARK in m.msg and " 3" in m.msg for m in got if m.name == "probe.chatty"):
            break
    child.send_signal(2)  # SIGINT: ends the run
    out, _ = child.communicate(timeout=60)
    mine = [m for m in got if MARK in m.msg]
    rounds = {m.msg.rsplit(" ", 1)[-1] for m in mine if " info " in m.msg}
    result = {
        "names": sorted({m.name for m in mine}),
        "levels": sorted({(m.msg.split()[1], int(m.level)) for m in mine if m.msg.split()[1] != "built"}),
        "built": any(m.msg == f"{MARK} built" for m in mine),
        "traceback_forwarded": any("exception" in m.msg and "KeyError: 'boom'" in m.msg for m in mine),
        "function": sorted({m.function for m in mine if " info " in m.msg}),
        # How often the child's console shows one line that reached /rosout (once expected).
        "console_counts": [out.count(f"{MARK} info {r}\n") + out.count(f"{MARK} info {r}\r") for r in sorted(rounds)],
        "console_tail": out[-1500:],
        "child_rc": child.returncode,
    }
    listener.destroy_node()
    rclpy.try_shutdown()
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
