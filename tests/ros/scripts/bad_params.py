"""A node refuses unknown and out-of-range parameters at start, naming them."""

import json
import subprocess
import sys

runs = {}
for label, extra in {"unknown": ["-p", "bogus:=1"], "range": ["-p", "rate:=500.0"],
                     "type": ["-p", "task:=3"]}.items():
    p = subprocess.run([sys.executable, "-m", "a2w.ros.main", "tests.probe_components:Talker", "--name", "talker",
                        "--duration", "5", "--ros-args", *extra], capture_output=True, text=True, timeout=60)
    runs[label] = [p.returncode, (p.stdout + p.stderr)[-600:]]
print("RESULT " + json.dumps(runs))
