"""Every registered node's parameters as `ros2 param dump` reads them: ListParameters, then
GetParameters for all the names listed (ros2param's dump verb), from another node; then the real
`ros2 param dump` for the arm and sim nodes. Each node's Params are declared by the host's
declare_params on a bare rclpy node (the component itself is not built: the sim world and devices
are not needed to check the parameter layer)."""

import json
import os
import shutil
import subprocess
import sys
import threading
import time

import rclpy
from rcl_interfaces.msg import ParameterType
from rcl_interfaces.srv import GetParameters, ListParameters
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

from a2w import nodes
from a2w.host.params import specs
from a2w.ros.host import declare_params

rclpy.init()
targets: dict[str, Node] = {}
declare_errors: dict[str, str] = {}
for exe in sorted(nodes.NODES):
    node = Node(exe)
    try:
        declare_params(node, nodes.load(exe).Params, "/" + exe)
    except ValueError as exc:  # the defaults of a node that needs a value set; still dumped
        declare_errors[exe] = str(exc)
    targets[exe] = node
executor = SingleThreadedExecutor()
for node in targets.values():
    executor.add_node(node)
spinner = threading.Thread(target=executor.spin, daemon=True)
spinner.start()

dumper = Node("dumper")


def call(cli, request):
    assert cli.wait_for_service(timeout_sec=20), cli.srv_name
    fut = cli.call_async(request)
    rclpy.spin_until_future_complete(dumper, fut, timeout_sec=20)
    assert fut.done(), cli.srv_name
    return fut.result()


def array_kind(value) -> str:
    names = {ParameterType.PARAMETER_BOOL_ARRAY: "bool[]", ParameterType.PARAMETER_INTEGER_ARRAY: "int[]",
             ParameterType.PARAMETER_DOUBLE_ARRAY: "float[]", ParameterType.PARAMETER_STRING_ARRAY: "str[]",
             ParameterType.PARAMETER_BYTE_ARRAY: "byte[]", ParameterType.PARAMETER_NOT_SET: "not set"}
    return names.get(value.type, "scalar")


result: dict = {"declare_errors": declare_errors, "nodes": {}}
for exe in targets:
    listed = call(dumper.create_client(ListParameters, f"/{exe}/list_parameters"),
                  ListParameters.Request(depth=ListParameters.Request.DEPTH_RECURSIVE)).result.names
    values = call(dumper.create_client(GetParameters, f"/{exe}/get_parameters"),
                  GetParameters.Request(names=list(listed))).values
    lists = {s.name for s in specs(nodes.load(exe).Params) if s.type is not None and "list" in str(s.type)}
    result["nodes"][exe] = {
        "declared": sorted(s.name for s in specs(nodes.load(exe).Params)),
        "listed": sorted(listed),
        "values": len(values),
        "list_kinds": {n: array_kind(v) for n, v in zip(listed, values) if n in lists},
    }

# The real CLI (ros2cli is built into the tier's workspace). No daemon: it would outlive the netns'
# script; --timeout: the CLI's own wait for the node to be discovered.
if shutil.which("ros2"):
    dumps = {}
    for exe in ("arm_node", "sim_node"):
        p = subprocess.run(["ros2", "param", "dump", "--no-daemon", "--timeout", "20", f"/{exe}"],
                           capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        dumps[exe] = [p.returncode, p.stdout, p.stderr[-2000:]]
    result["cli"] = dumps
else:
    result["cli"] = None
    sys.stderr.write("ros2 not on PATH: the real `ros2 param dump` was not run\n")

executor.shutdown()
spinner.join(10)  # a daemon thread left inside rclpy aborts the exit (ros2/rclpy#1484)
for node in [*targets.values(), dumper]:
    node.destroy_node()
rclpy.try_shutdown()
time.sleep(0.1)
print("RESULT " + json.dumps(result))
