"""Talker in a child process (params from YAML), Listener here; pub/sub, service, clean shutdown."""

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import rclpy
from rcl_interfaces.srv import DescribeParameters, GetParameters
from rclpy.node import Node

from a2w.msgs.services import StopRequest
from a2w.ros.host import RosHost
from tests.probe_components import Listener

tmp = Path(sys.argv[1])
marker = tmp / "talker_shutdown.txt"
params = tmp / "params.yaml"
params.write_text(f"""
talker:
  ros__parameters:
    rate: 50
    task: from-yaml
    views: [front, left_wrist]
    shutdown_marker: {marker}
listener:
  ros__parameters:
    views: [front, left_wrist]
""")
talker = subprocess.Popen(
    [sys.executable, "-m", "a2w.ros.main", "tests.probe_components:Talker", "--name", "talker",
     "--ros-args", "--params-file", str(params)],
    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

rclpy.init(args=["driver", "--ros-args", "--params-file", str(params)])
host = RosHost(diagnostics_period=0.5)
listener = host.add(Listener, "listener")
spinner = threading.Thread(target=host.spin, kwargs={"install_signal_handlers": False}, daemon=True)
spinner.start()

deadline = time.monotonic() + 40
while time.monotonic() < deadline:
    views = {f.view for f in listener.frames if f.intrinsics is not None}
    if len(listener.events) >= 30 and views == {"front", "left_wrist"}:
        break
    time.sleep(0.05)
reply = listener.stop.call(StopRequest("test"), timeout=10)

# Descriptors as any ROS tool sees them.
probe = Node("probe")
desc_cli = probe.create_client(DescribeParameters, "/talker/describe_parameters")
get_cli = probe.create_client(GetParameters, "/talker/get_parameters")
desc_cli.wait_for_service(timeout_sec=10)
f1 = desc_cli.call_async(DescribeParameters.Request(names=["rate", "views"]))
f2 = get_cli.call_async(GetParameters.Request(names=["task", "views", "rate"]))
rclpy.spin_until_future_complete(probe, f1, timeout_sec=10)
rclpy.spin_until_future_complete(probe, f2, timeout_sec=10)
rate_desc, views_desc = f1.result().descriptors
task_val, views_val, rate_val = f2.result().values
probe.destroy_node()

talker.send_signal(signal.SIGINT)
talker_out, _ = talker.communicate(timeout=30)
host.stop()
spinner.join(15)
rclpy.try_shutdown()

ev = listener.events
frames = listener.frames
result = {
    "events": len(ev),
    "indices_consecutive": all(b.episode_index == a.episode_index + 1 for a, b in zip(ev, ev[1:])),
    "tasks": sorted({e.task for e in ev}),
    "views": sorted({f.view for f in frames}),
    "frame_shapes": sorted({f.image.shape for f in frames}),
    "intrinsics_fx": sorted({f.intrinsics.fx for f in frames if f.intrinsics is not None}),
    "pixel_consistent": all(int(f.image[0, 0, 0]) == int(f.image[-1, -1, 2]) for f in frames),
    "reply": [reply.success, reply.message],
    "rate_desc": [rate_desc.description, rate_desc.read_only,
                  [(r.from_value, r.to_value) for r in rate_desc.floating_point_range]],
    "views_type": views_desc.type,
    "task_param": task_val.string_value,
    "views_param": list(views_val.string_array_value),
    "rate_param": rate_val.double_value if rate_val.type == 3 else rate_val.integer_value,
    "talker_rc": talker.returncode,
    "talker_out_tail": talker_out[-2000:],
    "marker": marker.read_text() if marker.exists() else None,
    "listener_errors": host.nodes[0].callback_errors,
}
print("RESULT " + json.dumps(result))
