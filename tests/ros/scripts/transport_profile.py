"""The shipped Fast DDS profile in use: a camera-like publisher started by ``a2w.ros.main`` (as
ros2 run/launch start nodes) sends 640x480 rgb8 images, reliable; this process receives them
(a) with the profile set the same way, (b) without any profile (Fast DDS's builtin transports),
so discovery and data between a profiled and a default participant are checked too; and (c) a
user's own FASTRTPS_DEFAULT_PROFILES_FILE is left alone. argv[1]: a scratch directory."""

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from a2w.host.component import Component, NodeHandle
from a2w.host.params import Params, param
from a2w.host.qos import QoS
from a2w.msgs.cameras import CameraFrame

TOPIC = "/cameras/front/color/image_raw"


class Sender(Component):
    """Writes the profile its process uses to ``report``, then sends full-size frames at 30 Hz."""

    @dataclass
    class Params(Params):
        report: str = param("", "file to write FASTRTPS_DEFAULT_PROFILES_FILE to")

    def __init__(self, node: NodeHandle, params: Any) -> None:
        super().__init__(node, params)
        Path(params.report).write_text(os.environ.get("FASTRTPS_DEFAULT_PROFILES_FILE", ""))
        self.img = np.random.default_rng(1).integers(0, 256, (480, 640, 3), dtype=np.uint8)
        self.pub = node.create_publisher(TOPIC, CameraFrame, QoS.reliable(1))
        node.create_timer(1 / 30, lambda: self.pub.publish(CameraFrame("front", self.img, time.time())))


class Receiver(Component):
    def __init__(self, node: NodeHandle, params: Any) -> None:
        super().__init__(node, params)
        self.ok = 0
        self.bad = 0
        node.create_subscription(TOPIC, CameraFrame, self.on_frame, QoS.reliable(1))

    def on_frame(self, f: CameraFrame) -> None:
        if f.image.shape == (480, 640, 3) and f.image[7, 11, 2] == self.expected:
            self.ok += 1
        else:
            self.bad += 1

    expected = int(np.random.default_rng(1).integers(0, 256, (480, 640, 3), dtype=np.uint8)[7, 11, 2])


def receive(with_profile: bool, tmp: Path, label: str) -> dict[str, Any]:
    import rclpy

    from a2w.ros import main
    from a2w.ros.host import RosHost

    os.environ.pop(main.PROFILE_ENV, None)
    if with_profile:
        main.configure_process()
    here = os.environ.get(main.PROFILE_ENV, "")
    report = tmp / f"{label}.txt"
    env = {k: v for k, v in os.environ.items() if k != main.PROFILE_ENV}
    child = subprocess.Popen([sys.executable, "-m", "a2w.ros.main", "tests.ros.scripts.transport_profile:Sender",
                              "--name", f"sender_{label}", "--duration", "60", "--ros-args", "-p", f"report:={report}"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    rclpy.init()
    host = RosHost(diagnostics_period=0)
    rx = host.add(Receiver, f"receiver_{label}")
    spinner = threading.Thread(target=host.spin, kwargs={"install_signal_handlers": False})
    spinner.start()
    deadline = time.monotonic() + 40
    while rx.ok < 60 and time.monotonic() < deadline:
        time.sleep(0.05)
    host.stop()
    spinner.join(20)
    rclpy.try_shutdown()
    child.send_signal(2)
    out, _ = child.communicate(timeout=60)
    return {"receiver_profile": here, "sender_profile": report.read_text() if report.exists() else None,
            "ok": rx.ok, "bad": rx.bad, "sender_tail": out[-800:]}


def user_setting_wins() -> list[Any]:
    from a2w.ros import main

    env = {"FASTRTPS_DEFAULT_PROFILES_FILE": "/etc/mine.xml"}
    other_rmw = {"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}
    unset: dict[str, str] = {}
    return [main.set_transport_profile(env), env["FASTRTPS_DEFAULT_PROFILES_FILE"],
            main.set_transport_profile(other_rmw), "FASTRTPS_DEFAULT_PROFILES_FILE" in other_rmw,
            main.set_transport_profile(unset), unset.get("FASTRTPS_DEFAULT_PROFILES_FILE")]


def lookup(tmp: Path) -> list[str]:
    """Where the profile is found: a colcon install (ament index) first, else the source tree."""
    from a2w.ros import main

    prefix = tmp / "install" / "a2w"
    (prefix / "share" / "ament_index" / "resource_index" / "packages").mkdir(parents=True, exist_ok=True)
    (prefix / "share" / "ament_index" / "resource_index" / "packages" / "a2w").write_text("")
    (prefix / "share" / "a2w" / "config").mkdir(parents=True, exist_ok=True)
    (prefix / "share" / "a2w" / "config" / main.PROFILE_NAME).write_text("<profiles/>")
    saved = os.environ.get("AMENT_PREFIX_PATH")
    try:
        os.environ["AMENT_PREFIX_PATH"] = str(prefix)
        installed = str(main.fastdds_profile())
        os.environ["AMENT_PREFIX_PATH"] = ""
        no_index = str(main.fastdds_profile())
        os.environ["AMENT_PREFIX_PATH"] = str(tmp / "elsewhere")
        not_indexed = str(main.fastdds_profile())
    finally:
        if saved is None:
            os.environ.pop("AMENT_PREFIX_PATH", None)
        else:
            os.environ["AMENT_PREFIX_PATH"] = saved
    return [installed == str(prefix / "share" / "a2w" / "config" / main.PROFILE_NAME), no_index, not_indexed]


def receive_in_child(with_profile: bool, tmp: Path, label: str) -> dict[str, Any]:
    """Fast DDS reads its profile file once per process, at the first participant: each case
    gets a fresh process."""
    p = subprocess.run([sys.executable, __file__, str(tmp), label, "1" if with_profile else "0"],
                       capture_output=True, text=True, timeout=150)
    for line in p.stdout.splitlines():
        if line.startswith("CASE "):
            return json.loads(line[len("CASE "):])
    return {"failed": p.returncode, "output": (p.stdout + p.stderr)[-2000:]}


if __name__ == "__main__":
    scratch = Path(sys.argv[1])
    if len(sys.argv) > 2:
        print("CASE " + json.dumps(receive(sys.argv[3] == "1", scratch, sys.argv[2])))
        sys.exit(0)
    from a2w.ros import main as ros_main

    result = {
        "shipped": str(ros_main.fastdds_profile()),
        "with_profile": receive_in_child(True, scratch, "profiled"),
        "without_profile": receive_in_child(False, scratch, "default"),
        "user_setting": user_setting_wins(),
        "lookup": lookup(scratch),
        "source_tree": str(Path(ros_main.__file__).resolve().parents[2] / "config" / ros_main.PROFILE_NAME),
    }
    print("RESULT " + json.dumps(result))
