"""Run inside a loopback-only network namespace by test_page.py: the sim stack with two teleop
nodes (one over HTTP, one over HTTPS with its self-signed certificate), and headless Chromium
(driven over its DevTools pipe, tests/monitor/viewer_page_child.DevTools) opening each page.

Per scheme: the page loads and connects, shows the desktop fallback (no headset here), a scripted
pose source (the page's test hook) holds the left grip and moves the controller 6 cm to the
operator's right, and the sim's left arm follows; the screenshot is checked for colours. Prints
``RESULT <json>``.
"""

from __future__ import annotations

import base64
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from a2w.host.host import NodeSpec  # noqa: E402
from a2w.teleop.component import TeleopNode  # noqa: E402
from tests.monitor.viewer_page_child import DevTools, colours  # noqa: E402
from tests.teleop.stack import TOKEN, start_stack  # noqa: E402

SCRIPT = """window.a2wTeleop.setPoseSource((t) => {
  const s = Math.min(Math.max(t - 0.5, 0), 2) / 2;  // hold still 0.5 s (engage), then 2 s to +6 cm
  return {left: {tracked: true, pose: [-0.2 + 0.06 * s, 1.0, -0.4, 0, 0, 0, 1], grip: true, trigger: 0},
          right: {tracked: true, pose: [0.2, 1.0, -0.4, 0, 0, 0, 1], grip: false, trigger: 0}};
}); true"""


def evaluate(dt: DevTools, session: str, expr: str) -> object:
    r = dt.call("Runtime.evaluate", {"expression": expr, "returnByValue": True}, session=session)
    return r["result"].get("value")


def wait_for(cond, timeout: float) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return bool(cond())


def main() -> None:
    out = Path(sys.argv[1])
    # a browser with a software GPU beside the sim on two shared cores pauses now and then: a longer
    # dead man here (its own tests are in test_node.py)
    stack = start_stack(out / "ds", teleop={"deadman": 5.0})
    https = stack.host.add(NodeSpec(TeleopNode, "teleop_https", params={
        "use_sim_time": True, "port": 0, "token": TOKEN, "qr": False, "https": True, "cert_dir": str(out / "cert"),
        "deadman": 5.0}))
    result: dict = {"pages": {}}
    try:
        wait_for(lambda: len(stack.probe.snapshot("states")) > 0, 60)
        profile = tempfile.mkdtemp(prefix="chromium-", dir=out)
        argv = ["chromium", "--headless", "--no-sandbox", "--remote-debugging-pipe", f"--user-data-dir={profile}",
                "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--window-size=1280,800",
                "--hide-scrollbars", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-dev-shm-usage",
                "--ignore-certificate-errors",  # the teleop node's own self-signed certificate
                # headless pages count as hidden: their timers would be throttled to ~1 Hz and the
                # dead man would hold the arms (as it does for a page in a background tab)
                "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
                "--disable-backgrounding-occluded-windows",
                "about:blank"]
        dt = DevTools(argv, out / "chromium.log")
        try:
            page = next(t for t in dt.call("Target.getTargets")["targetInfos"] if t["type"] == "page")
            session = dt.call("Target.attachToTarget", {"targetId": page["targetId"], "flatten": True})["sessionId"]
            dt.call("Page.enable", session=session)
            for scheme, node in (("http", stack.teleop), ("https", https)):
                r: dict = {"url": node.server.url("127.0.0.1")}
                result["pages"][scheme] = r
                dt.call("Page.navigate", {"url": r["url"]}, session=session)
                r["owned"] = wait_for(lambda: bool(evaluate(dt, session, "!!(window.a2wTeleop && "
                                                            "window.a2wTeleop.state() && "
                                                            "window.a2wTeleop.state().owned)")), 30)
                r["fallback"] = evaluate(dt, session, "getComputedStyle(document.getElementById('desktop')).display "
                                                      "!== 'none' && !window.a2wTeleop.xr() && "
                                                      "!document.getElementById('xr-none').classList.contains("
                                                      "'hidden')")
                r["mode_badge"] = evaluate(dt, session, "document.getElementById('mode').textContent")
                left0 = stack.tcp_world(0)
                evaluate(dt, session, SCRIPT)
                n0, t0 = evaluate(dt, session, "window.a2wTeleop.sent()"), time.monotonic()
                # the sim may run well below real time on a loaded machine: wait for the arm, not a time
                want = np.array([0.0, -0.06, 0.0])
                r["arrived"] = wait_for(lambda: np.linalg.norm(stack.tcp_world(0) - left0 - want) < 0.01, 40)
                r["rate_hz"] = (evaluate(dt, session, "window.a2wTeleop.sent()") - n0) / (time.monotonic() - t0)
                r["moved"] = (stack.tcp_world(0) - left0).tolist()
                r["engaged"] = list(node.session.engaged())
                r["sent"] = evaluate(dt, session, "window.a2wTeleop.sent()")
                png = out / f"teleop_{scheme}.png"
                png.write_bytes(base64.b64decode(dt.call("Page.captureScreenshot", {"format": "png"},
                                                         session=session)["data"]))
                r["png"], r["colours"] = str(png), colours(png)
                r["text"] = str(evaluate(dt, session, "document.body.innerText"))[:400]
                dt.call("Page.navigate", {"url": "about:blank"}, session=session)  # closes the page's socket
                r["released"] = wait_for(lambda: not node.connected and not node.owned, 10)
                wait_for(lambda: stack.state().mode.value == "hold", 10)
        finally:
            dt.close()
    finally:
        stack.host.stop()
        stack.host.shutdown()
    result["chromium_log"] = (out / "chromium.log").read_text(errors="replace")[-2000:]
    result["moved_norm"] = {k: float(np.linalg.norm(v["moved"])) for k, v in result["pages"].items() if "moved" in v}
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
