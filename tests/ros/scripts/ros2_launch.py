"""Run the real `ros2 launch` (the tier's colcon-built launch/launch_ros/ros2launch) in this network
namespace and report its exit code.

    ros2_launch.py TIMEOUT [--kill-after REGEX --kill PROCESS] -- LAUNCH ARGS...

With --kill-after, once a line of the launch's output matches REGEX the process launch named
PROCESS (e.g. component_container-1) is killed with SIGKILL: a node that dies. The launch output
goes to stdout; the last line is ``RESULT {"rc": ..., "killed": pid or null, "seconds": ...}``.
"""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

argv = sys.argv[1:]
split = argv.index("--")
opts, launch_args = argv[:split], argv[split + 1:]
timeout = float(opts[0])
kill_after = opts[opts.index("--kill-after") + 1] if "--kill-after" in opts else None
kill_name = opts[opts.index("--kill") + 1] if "--kill" in opts else None

started = time.monotonic()
# Own process group: on a timeout the whole launch (and the nodes it started) goes.
proc = subprocess.Popen(["ros2", "launch", *launch_args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                        text=True, start_new_session=True)
timer = threading.Timer(timeout, lambda: os.killpg(proc.pid, signal.SIGKILL))
timer.start()
pids: dict[str, int] = {}
killed = None
for line in proc.stdout:
    sys.stdout.write(line)
    m = re.search(r"\[INFO\] \[([\w.-]+)\]: process started with pid \[(\d+)\]", line)
    if m:
        pids[m.group(1)] = int(m.group(2))
    if kill_after and killed is None and re.search(kill_after, line) and kill_name in pids:
        killed = pids[kill_name]
        os.kill(killed, signal.SIGKILL)
        sys.stdout.write(f"ros2_launch.py: killed {kill_name} (pid {killed})\n")
rc = proc.wait()
timer.cancel()
sys.stdout.write("RESULT " + json.dumps({"rc": rc, "killed": killed, "seconds": round(time.monotonic() - started, 1)})
                 + "\n")
