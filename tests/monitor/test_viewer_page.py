"""The monitor's web viewer page loads in headless Chromium (Debian's ``chromium``) and renders:
the screenshot is the started viewer, not a blank page or its loading screen.

Chromium and the monitor run together in a fresh network namespace with only loopback up, so the
browser cannot reach anything but the monitor (it tries: the viewer's welcome page fetches
examples from the internet).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.monitor.viewer_page_child import MIN_COLOURS

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("viewer_page_child.py")


def _unavailable() -> str | None:
    if shutil.which("chromium") is None:
        return "Debian's chromium is not installed (scripts/setup.sh installs it)"
    probe = subprocess.run(["unshare", "--net", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot create a network namespace: {probe.stderr.strip()}"
    return None


def test_web_viewer_page_renders_in_headless_chromium(tmp_path):
    why = _unavailable()
    if why:
        pytest.skip(why)
    python = sys.executable
    proc = subprocess.run(["unshare", "--net", "bash", "-c", 'ip link set lo up && exec "$@"', "_", python,
                           str(CHILD), str(tmp_path)], capture_output=True, text=True, timeout=300, cwd=ROOT,
                          start_new_session=True)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    r = json.loads(lines[-1][len("RESULT "):])
    assert "Loading" not in r["text"], r
    assert r["colours"] >= MIN_COLOURS, r
    assert r["logged"] > 0
    assert Path(r["png"]).stat().st_size > 20_000
