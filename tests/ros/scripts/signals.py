"""SIGINT/SIGTERM end a node run by ``a2w.ros.main`` as interrupted, as in-process: exit code
128 + signal number and the reason 'interrupted by SIG...', whether the signal comes while the
component is being built or while it spins."""

import json
import signal
import subprocess
import sys

runs = {}
for sig in (signal.SIGINT, signal.SIGTERM):
    for phase, startup_s, marker in (("building", 60.0, "building"), ("spinning", 0.0, "spinning")):
        p = subprocess.Popen([sys.executable, "-m", "a2w.ros.main", "tests.probe_components:SlowStart",
                              "--name", "slow",
                              "--ros-args", "-p", f"startup_s:={startup_s}"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        seen = []
        for line in p.stdout:  # until the marker, or EOF if the node died first
            seen.append(line)
            if line.rstrip().endswith(marker):
                p.send_signal(sig)
                break
        try:
            rest, _ = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            rest, _ = p.communicate()
        runs[f"{sig.name} {phase}"] = [p.returncode, ("".join(seen) + rest)[-1500:]]
print("RESULT " + json.dumps(runs))
