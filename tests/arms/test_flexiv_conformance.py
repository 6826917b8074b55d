"""SDK conformance tier: the real, pinned flexivrdk in its Python 3.12 venv.

* every class, method (argument names and order), enum member and field the backend uses
  (``a2w.arms.flexiv.rdk_api.RDK_SYMBOLS``) exists in the installed wheel, and the stand-in robot used
  by the plumbing tests has the same surface;
* the installed version is the pinned one, of the 1.x line, with a known FSP pairing;
* through the real backend and worker processes, a malformed serial and an unreachable robot map
  to our clear ``ArmConnectionError``s. Robots are only constructed inside a network namespace
  that holds nothing but loopback (``unshare --net``), so nothing can reach a real arm.

Skips with the reason when no Python 3.12 is available (scripts/setup_flexiv_venv.sh says why).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from a2w.arms.flexiv.rdk_api import PINNED_VERSION, check_rdk_line, fsp_for_rdk
from tests.tiers import unavailable

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent
A2W_ROOT = ROOT / "ros_ws" / "src" / "a2w"


@pytest.fixture(scope="module")
def rdk_python() -> str:
    """The RDK venv's python, built idempotently by the setup script on first use."""
    script = ROOT / "scripts" / "setup_flexiv_venv.sh"
    try:
        out = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        unavailable("flexiv", "setup_flexiv_venv.sh timed out (no package index reachable?)")
    if out.returncode == 3:
        unavailable("flexiv", "no Python 3.12 on this machine, and flexivrdk has no 3.11 wheels: " + out.stderr.strip())
    assert out.returncode == 0, f"setup_flexiv_venv.sh failed:\n{out.stderr}"
    return out.stdout.strip().splitlines()[-1]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(A2W_ROOT), str(HERE)])
    return env


def test_every_rdk_symbol_the_backend_uses_exists_with_its_signature(rdk_python: str) -> None:
    out = subprocess.run([rdk_python, str(HERE / "rdk_conformance_check.py")], capture_output=True,
                         text=True, timeout=120, env=_env())
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["python"].startswith("3.12")
    assert report["version"] == PINNED_VERSION
    assert check_rdk_line(report["version"]) is None and fsp_for_rdk(report["version"]) is not None
    assert report["real_problems"] == [], "\n".join(report["real_problems"])
    assert report["fake_problems"] == [], "the stand-in drifted:\n" + "\n".join(report["fake_problems"])


_NETNS_PROBE = r"""
import json, os, sys, time, subprocess
# /proc/net/dev is per network namespace (/sys/class/net is not remounted by unshare).
nics = sorted(l.split(":")[0].strip() for l in open("/proc/net/dev").read().splitlines()[2:])
if nics != ["lo"]:
    print(json.dumps({"error": f"not an isolated namespace: {nics}"})); sys.exit(0)
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
from a2w.arms.backend import ArmConnectionError
from a2w.arms.flexiv.backend import FlexivRigBackend
from a2w.arms.flexiv.params import FlexivParams
out = {}
for label, serials in (("bad_serial", ("Rizon4s123456", "Rizon4s-000002")),
                       ("unreachable", ("Rizon4s-000001", "Rizon4s-000002"))):
    cfg = FlexivParams(left_serial=serials[0], right_serial=serials[1], software_version="3.11.2",
                       left_nics=["127.0.0.1"], right_nics=["127.0.0.1"], gripper_interface="none",
                       worker_python=sys.argv[1], hello_timeout=60.0, connect_timeout=30.0)
    t0 = time.monotonic()
    try:
        FlexivRigBackend(cfg).connect()
        out[label] = {"error": None}
    except ArmConnectionError as exc:
        out[label] = {"type": type(exc).__name__, "text": str(exc), "kinds": getattr(exc, "kinds", []),
                      "seconds": time.monotonic() - t0}
print(json.dumps(out))
"""


def _unshare() -> list[str] | None:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return None
    for cmd in (["unshare", "--net"], ["unshare", "--map-root-user", "--net"]):
        if subprocess.run([*cmd, "true"], capture_output=True).returncode == 0:
            return cmd
    return None


def test_bad_serial_and_unreachable_robot_give_clear_errors(rdk_python: str) -> None:
    cmd = _unshare()
    if cmd is None:
        unavailable("flexiv", "cannot create a loopback-only network namespace (unshare --net / ip missing or "
                              "not permitted)")
    out = subprocess.run([*cmd, sys.executable, "-c", _NETNS_PROBE, rdk_python], capture_output=True,
                         text=True, timeout=180, env=_env())
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert "error" not in res, res
    bad = res["bad_serial"]
    assert bad["type"] == "ArmConnectionError" and "config" in bad["kinds"]
    assert "configuration error" in bad["text"] and "Rizon4s123456" in bad["text"]
    assert "Format of the provided robot serial number" in bad["text"]  # the RDK's own words
    gone = res["unreachable"]
    assert gone["type"] == "ArmConnectionError" and gone["kinds"] == ["not_found", "not_found"]
    assert "robot not found" in gone["text"] and "Failed to connect to [Rizon4s-000001]" in gone["text"]
    assert f"flexivrdk {PINNED_VERSION}" in gone["text"] and "127.0.0.1" in gone["text"]
