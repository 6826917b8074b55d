"""The teleop page in headless Chromium (Debian's ``chromium``), over HTTP and over HTTPS with the
node's self-signed certificate: it connects with the pairing token, shows the desktop fallback
without a headset, and its scripted pose source (the page's test hook) moves the sim's left arm
through teleop_node and the arm node. Closing the page hands the arms back.

Browser and stack run together in a fresh network namespace with only loopback up."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.monitor.test_viewer_page import _unavailable

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("page_child.py")
pytestmark = pytest.mark.slow


def test_the_page_drives_the_sim_arm_from_headless_chromium_over_http_and_https(tmp_path):
    why = _unavailable()
    if why:
        pytest.skip(why)
    proc = subprocess.run(["unshare", "--net", "bash", "-c", 'ip link set lo up && exec "$@"', "_", sys.executable,
                           str(CHILD), str(tmp_path)], capture_output=True, text=True, timeout=400, cwd=ROOT,
                          start_new_session=True)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    r = json.loads(lines[-1][len("RESULT "):])
    assert set(r["pages"]) == {"http", "https"}, r
    for scheme, p in r["pages"].items():
        p = dict(p, text=p.get("text", "")[:80], scheme=scheme)  # short enough to read in a failure
        assert p["url"].startswith(f"{scheme}://127.0.0.1:"), p
        assert p["owned"] and p["fallback"] and "desktop" in p["mode_badge"], p
        assert p["engaged"][0] and not p["engaged"][1], p
        # 6 cm to the operator's right: world -y at yaw 0
        assert p["arrived"], p
        np.testing.assert_allclose(p["moved"], [0.0, -0.06, 0.0], atol=0.01, err_msg=f"{scheme}: {p}")
        assert p["colours"] > 200, p  # panels, text and the gizmo view, not a blank page
        assert Path(p["png"]).stat().st_size > 10_000
        assert p["released"], p
