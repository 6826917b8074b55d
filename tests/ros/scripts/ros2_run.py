"""`ros2 run a2w EXEC [ros args]` in this namespace, seen through the real ros2 CLI, then SIGINT.

    ros2_run.py NODE_NAME EXEC [ARGS...]

Waits until /NODE_NAME is in `ros2 node list`, records `ros2 param list /NODE_NAME` and
`ros2 param get /NODE_NAME use_sim_time`, sends SIGINT to `ros2 run` and its node (one process
group, as Ctrl-C in a terminal does) and reports the exit code and whether /NODE_NAME then left the
graph: ``RESULT {"nodes": [...], "params": [...], "use_sim_time": ..., "rc": ..., "gone": ...}``.
"""

import signal
import sys

from tests.ros.netns_cli import report, ros2, start, stop, wait_until

name, exe, *extra = sys.argv[1:]
fqn = f"/{name}"
run = start(["ros2", "run", "a2w", exe, *extra])
result: dict = {"exec": exe}


def listed() -> list[str] | None:
    if run.proc.poll() is not None:
        raise RuntimeError(f"ros2 run exited {run.proc.returncode} before {fqn} joined the graph")
    names = ros2("node", "list").stdout.split()
    return names if fqn in names else None


try:
    result["nodes"] = wait_until(listed, timeout=90, what=f"{fqn} in `ros2 node list`")
    # Its parameter services are discovered a little after the node itself.
    result["params"] = wait_until(lambda: ros2("param", "list", fqn).stdout.split(), timeout=60,
                                  what=f"parameters of {fqn}")
    result["use_sim_time"] = ros2("param", "get", fqn, "use_sim_time").stdout.strip()
    result["topics"] = ros2("topic", "list", "-t").stdout.splitlines()
except (TimeoutError, RuntimeError) as e:
    result["error"] = str(e)
result["alive_before_sigint"] = run.proc.poll() is None
result["rc"] = stop(run, signal.SIGINT, timeout=30)
result["gone"] = fqn not in ros2("node", "list").stdout.split()
result["output_tail"] = run.output[-2000:]
report(result)
