"""a2w's component_container in a child process, driven through its composition_interfaces services
the way launch_ros's LoadComposableNodes and `ros2 component` drive rclcpp's: loads, refusals
answered in the response, list, unload, and the exit code of a component that stops the run."""

import json
import subprocess
import sys
import time

import rclpy
from composition_interfaces.srv import ListNodes, LoadNode, UnloadNode
from rcl_interfaces.srv import GetParameters
from rclpy.node import Node
from rclpy.parameter import Parameter

TALKER = "tests.probe_components:Talker"

container = subprocess.Popen(
    [sys.executable, "-m", "a2w.ros.container", "--ros-args", "-r", "__node:=box", "-r", "__ns:=/rig"],
    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

rclpy.init()
probe = Node("probe")


def container_output():
    """The container's output so far (it is killed first if still running), for the log."""
    if container.poll() is None:
        container.kill()
    return container.stdout.read()[-6000:]


def call(client, request, timeout=30.0):
    fut = client.call_async(request)
    rclpy.spin_until_future_complete(probe, fut, timeout_sec=timeout)
    if not fut.done():
        raise TimeoutError(f"{client.srv_name}: no answer in {timeout} s")
    return fut.result()


def param(name, value, type_=None):
    p = Parameter(name, type_, value) if type_ is not None else Parameter(name, value=value)
    return p.to_parameter_msg()


def load(plugin=TALKER, name="", namespace="/rig", package="a2w", params=(), remaps=(), extra=(), log_level=0):
    r = call(load_cli, LoadNode.Request(package_name=package, plugin_name=plugin, node_name=name,
                                        node_namespace=namespace, log_level=log_level, remap_rules=list(remaps),
                                        parameters=list(params), extra_arguments=list(extra)))
    return {"success": r.success, "error": r.error_message, "name": r.full_node_name, "id": r.unique_id}


load_cli = probe.create_client(LoadNode, "/rig/box/_container/load_node")
unload_cli = probe.create_client(UnloadNode, "/rig/box/_container/unload_node")
list_cli = probe.create_client(ListNodes, "/rig/box/_container/list_nodes")
ready = load_cli.wait_for_service(timeout_sec=30)


def checks(out):
    # views: launch_ros sends an empty YAML list as a byte array; the container takes it as [].
    out["ok"] = load(name="talk", remaps=["~/events:=/out"],
                     params=[param("rate", 20.0), param("task", "loaded"),
                             param("views", [], Parameter.Type.BYTE_ARRAY)],
                     extra=[param("use_intra_process_comms", False)])
    out["by_exec_name_unknown"] = load(plugin="no_such_node", name="x")
    out["bad_module"] = load(plugin="tests.no_such_module:Thing", name="x")
    out["not_a_component"] = load(plugin="tests.probe_components:Doubled", name="x")
    out["bad_value"] = load(name="x", params=[param("rate", "fast")])
    out["out_of_range"] = load(name="x", params=[param("rate", 1000.0)])
    out["unknown_param"] = load(name="x", params=[param("bogus", 1)])
    out["bad_type"] = load(name="x", params=[param("views", 3)])
    out["intra_process"] = load(name="x", extra=[param("use_intra_process_comms", True)])
    out["other_extra"] = load(name="x", extra=[param("forward_global_arguments", False)])
    out["other_package"] = load(package="rclcpp_components", name="x")
    out["duplicate"] = load(name="talk")
    out["log_level"] = load(name="x", log_level=10)
    out["bad_node_name"] = load(name="not a name!")

    deadline = time.monotonic() + 20
    topics = []
    while "/out" not in topics and time.monotonic() < deadline:
        rclpy.spin_once(probe, timeout_sec=0.1)
        try:
            topics = [t for t, _ in probe.get_publisher_names_and_types_by_node("talk", "/rig")]
        except Exception:  # noqa: BLE001 - not discovered yet
            topics = []
    out["talker_topics"] = sorted(topics)
    pc = probe.create_client(GetParameters, "/rig/talk/get_parameters")
    pc.wait_for_service(timeout_sec=10)
    values = call(pc, GetParameters.Request(names=["rate", "task", "views"])).values
    out["params_read_back"] = [values[0].double_value, values[1].string_value, list(values[2].string_array_value)]

    lst = call(list_cli, ListNodes.Request())
    out["listed"] = [list(lst.full_node_names), list(lst.unique_ids)]
    out["alive_after_refusals"] = container.poll() is None
    u = call(unload_cli, UnloadNode.Request(unique_id=out["ok"]["id"]))
    out["unload"] = [u.success, u.error_message]
    u = call(unload_cli, UnloadNode.Request(unique_id=out["ok"]["id"]))
    out["unload_again"] = [u.success, u.error_message]
    lst = call(list_cli, ListNodes.Request())
    out["listed_after_unload"] = list(lst.full_node_names)
    time.sleep(1.0)
    out["graph_after_unload"] = sorted(ns.rstrip("/") + "/" + n for n, ns in probe.get_node_names_and_namespaces())
    # A loaded component whose worker crashes ends the container with the host's exit code, 70.
    out["stopper"] = load(plugin="tests.probe_components:Crashy", name="crashy")
    try:
        out["container_exit"] = container.wait(timeout=30)
    except subprocess.TimeoutExpired:
        container.kill()
        out["container_exit"] = None
    # With exit_on_load_error a refused load also stops the container, with exit code 2.
    strict = subprocess.Popen(
        [sys.executable, "-m", "a2w.ros.container", "--ros-args", "-r", "__node:=strict", "-p",
         "exit_on_load_error:=true"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cli = probe.create_client(LoadNode, "/strict/_container/load_node")
    cli.wait_for_service(timeout_sec=30)
    r = call(cli, LoadNode.Request(package_name="a2w", plugin_name=TALKER, node_name="x",
                                   parameters=[param("rate", "fast")]))
    out["strict_refusal"] = [r.success, r.error_message]
    try:
        out["strict_exit"] = strict.wait(timeout=30)
    except subprocess.TimeoutExpired:
        strict.kill()
        out["strict_exit"] = None


out = {"ready": ready}
try:
    checks(out)
finally:
    sys.stderr.write(container_output())
probe.destroy_node()
rclpy.shutdown()
print("RESULT " + json.dumps(out))
