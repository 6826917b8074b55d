"""Run inside a loopback-only network namespace by test_viewer_page.py: monitor_node serving
beside a fake rig with a policy, then headless Chromium opens the web viewer page and screenshots
it. Prints ``RESULT <json>``: the screenshot's path, how many distinct colours it has, the page's
text and what Chromium said.

Chromium is driven over ``--remote-debugging-pipe`` (DevTools protocol on fds 3 and 4): no
debugging port is opened, and nothing but the page's own loopback traffic leaves the browser.
``--screenshot`` alone cannot be used: it shoots when the page's load event fires, before the
viewer's WebAssembly has started.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from a2w.host import Host  # noqa: E402
from a2w.host.host import NodeSpec  # noqa: E402
from a2w.monitor.component import MonitorNode  # noqa: E402
from tests.monitor.support import PolicyRig, free_port, listening  # noqa: E402
from tests.support import wait_until  # noqa: E402

# The viewer's loading screen (a line of text on a dark page) has ~300 colours with anti-aliasing,
# the started viewer (panels, icons, text) over 1500 before any data arrives.
MIN_COLOURS = 1000


class DevTools:
    """A minimal DevTools client over Chromium's debugging pipe (NUL-terminated JSON)."""

    def __init__(self, argv: list[str], log_path: Path) -> None:
        to_chrome_r, self._w = os.pipe()
        self._r, from_chrome_w = os.pipe()
        # Chromium reads commands on fd 3 and writes replies on fd 4
        def fds() -> None:
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                     pass_fds=(3, 4), preexec_fn=fds)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._id = 0

    def call(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 60.0) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            while b"\0" in self._buf:
                raw, self._buf = self._buf.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self._id:
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return reply["result"]
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise RuntimeError(f"{method}: chromium closed the pipe")
            self._buf += chunk
        raise TimeoutError(method)

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=10)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()


def colours(png: Path) -> int:
    img = cv2.imread(str(png))
    return int(len(np.unique(img.reshape(-1, 3), axis=0)))


def main() -> None:
    out = Path(sys.argv[1])
    web, grpc = free_port(), free_port()
    host = Host(diagnostics_period=0.5)
    host.add(NodeSpec(PolicyRig, "rig"))
    mon = host.add(NodeSpec(MonitorNode, "monitor_node",
                            params={"rrd": str(out / "session.rrd"), "web_port": web, "grpc_port": grpc}))
    host.start()
    result: dict = {}
    try:
        if not wait_until(lambda: bool(listening(web)) and bool(listening(grpc)), timeout=30):
            raise RuntimeError(f"the viewer did not start: {mon.server.output()}")
        profile = tempfile.mkdtemp(prefix="chromium-", dir=out)
        argv = ["chromium", "--headless", "--no-sandbox", "--remote-debugging-pipe", f"--user-data-dir={profile}",
                "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--window-size=1280,800",
                "--hide-scrollbars", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-dev-shm-usage", "about:blank"]
        dt = DevTools(argv, out / "chromium.log")
        try:
            page = next(t for t in dt.call("Target.getTargets")["targetInfos"] if t["type"] == "page")
            session = dt.call("Target.attachToTarget", {"targetId": page["targetId"], "flatten": True})["sessionId"]
            dt.call("Page.enable", session=session)
            dt.call("Page.navigate", {"url": mon.server.web_url}, session=session)
            # the viewer compiles its WebAssembly and then paints; shoot until the loader is gone
            deadline = time.monotonic() + 120
            shots = 0
            min_shots = int(os.environ.get("MONITOR_MIN_SHOTS", "1"))  # more, for a look at the data arriving
            while True:
                time.sleep(3)
                shots += 1
                png = out / "viewer.png"
                data = dt.call("Page.captureScreenshot", {"format": "png"}, session=session)["data"]
                png.write_bytes(base64.b64decode(data))
                text = dt.call("Runtime.evaluate", {"expression": "document.body ? document.body.innerText : ''",
                                                    "returnByValue": True}, session=session)["result"].get("value", "")
                n = colours(png)
                loaded = "Loading" not in text and n >= MIN_COLOURS and shots >= min_shots
                if loaded or time.monotonic() > deadline:
                    break
            result = {"png": str(png), "colours": n, "text": text[:500], "shots": shots,
                      "logged": sum(mon.lib.logged.values())}
        finally:
            dt.close()
    finally:
        host.stop()
        host.shutdown()
    result["chromium_log"] = (out / "chromium.log").read_text(errors="replace")[-3000:]
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
