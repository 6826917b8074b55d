"""Benchmark the live monitor (a2w.monitor).

1. The library per message, 640x480 camera-like frames (smooth shading, a moving object, sensor
   noise): a real frame as raw RGB and as JPEG, a predicted frame with its difference, a chunk, an
   arm state, a diagnostic; each as µs per message and as a ratio to the baseline, one bare
   ``cv2.imencode`` JPEG of the same frame measured in the same run; and bytes per frame in the .rrd.
2. The node on the in-process host beside a rig workload (three 640x480 views at 30 fps, arm
   state at 100 Hz, a chunk with 20 predicted frames per view every second) for ``--seconds``:
   CPU seconds per second with and without the monitor (the same workload, same run), messages
   dropped by its queue, and the .rrd's MB per minute.

    .venv/bin/python bench/monitor.py [--seconds 20] [--jpeg-quality 80] [--max-image-rate 10] [--image-width 320]
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import rerun as rr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from a2w.host import Component, Host, QoS  # noqa: E402
from a2w.host.host import NodeSpec  # noqa: E402
from a2w.monitor.component import MonitorNode  # noqa: E402
from a2w.monitor.log import MonitorLog  # noqa: E402
from a2w.msgs.arms import RigState  # noqa: E402
from a2w.msgs.cameras import VIEW_NAMES, CameraFrame  # noqa: E402
from a2w.msgs.diagnostics import DiagnosticStatus  # noqa: E402
from a2w.msgs.policy import ActionChunk  # noqa: E402
from a2w.policy.topics import CHUNK_TOPIC as POLICY_CHUNK_TOPIC  # noqa: E402
from a2w.policy.topics import predicted_topic  # noqa: E402
from tests.monitor.support import chunk, rig_state  # noqa: E402

W, H = 640, 480
POOL = 30
log = logging.getLogger("bench.monitor")


def make_pool(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W]
    base = np.stack([(xx * 0.3) % 255, (yy * 0.4) % 255, np.full_like(xx, 120)], -1).astype(np.float32)
    frames = []
    for i in range(POOL):
        img = base.copy()
        cx, cy = 100 + i * 12, 200 + 40 * np.sin(i / 5)
        img[(xx - cx) ** 2 + (yy - cy) ** 2 < 45 ** 2] = (230, 200, 60)
        img += rng.normal(0, 3, img.shape)
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    return frames


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def per_message(pool: list[np.ndarray], quality: int, width: int, n: int = 150) -> None:
    t0 = time.perf_counter()
    for i in range(n):
        cv2.imencode(".jpg", cv2.cvtColor(pool[i % POOL], cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    base = (time.perf_counter() - t0) / n
    log.info("baseline: one cv2 JPEG (q%d) of a 640x480 frame: %.0f µs", quality, base * 1e6)
    with tempfile.TemporaryDirectory() as d:
        rows = []
        for name, q in (("real frame, raw RGB", 0), (f"real frame, JPEG q{quality}", quality)):
            path = Path(d) / f"{q}.rrd"
            rec = rr.RecordingStream("bench")
            rec.set_sinks(rr.FileSink(path))
            m = MonitorLog(rec, ["front"], max_image_rate=0, jpeg_quality=q, image_width=width)
            t0 = time.perf_counter()
            for i in range(n):
                m.camera_frame(CameraFrame("front", pool[i % POOL], 1.0 + i / 30), 0.0)
            dt = (time.perf_counter() - t0) / n
            rec.flush()
            rec.disconnect()
            rows.append((name, dt, path.stat().st_size / n))
        rec = rr.RecordingStream("bench")
        rec.set_sinks(rr.FileSink(Path(d) / "p.rrd"))
        m = MonitorLog(rec, ["front"], max_image_rate=0, jpeg_quality=quality, image_width=width)
        m.camera_frame(CameraFrame("front", pool[0], 0.99), 0.0)
        t0 = time.perf_counter()
        for i in range(n):  # each prediction falls due at once: logged, paired and its diff logged
            m.predicted_frame(CameraFrame("front", pool[(i + 3) % POOL], 0.99), 0.0)
        rows.append(("predicted frame + diff", (time.perf_counter() - t0) / n, float("nan")))
        ck, st = chunk(2.0), rig_state(2.0)
        diag = DiagnosticStatus("/policy_node", 0, "ok", {f"v{k}": str(k * 1.5) for k in range(10)}, 2.0)
        for name, fn in (("chunk (20 steps)", lambda: m.chunk(ck, 1.9)), ("arm state", lambda: m.rig_state(st, 2.0)),
                         ("diagnostic (10 values)", lambda: m.diagnostic(diag, 2.0))):
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            rows.append((name, (time.perf_counter() - t0) / n, float("nan")))
        rec.flush()
        rec.disconnect()
    log.info("%-26s %10s %8s %12s   (images scaled to width %s)", "message", "µs", "x base", "rrd bytes",
             width or "as received")
    for name, dt, size in rows:
        log.info("%-26s %10.0f %8.2f %12s", name, dt * 1e6, dt / base, "-" if size != size else f"{size:.0f}")


class Workload(Component):
    """Three views at 30 fps, arm state at 100 Hz, a chunk and 20 predicted frames per view each second."""

    def __init__(self, node, params) -> None:  # noqa: ANN001
        super().__init__(node, params)
        self.pool = make_pool(1)
        self.i = 0
        self.cams = {v: node.create_publisher(f"/cameras/{v}/color/image_raw", CameraFrame, QoS.reliable(5))
                     for v in VIEW_NAMES}
        self.pred = {v: node.create_publisher(predicted_topic(v), CameraFrame, QoS.reliable(40)) for v in VIEW_NAMES}
        self.state = node.create_publisher("/arms/state", RigState, QoS.reliable(5))
        self.chunks = node.create_publisher(POLICY_CHUNK_TOPIC, ActionChunk, QoS.reliable(5))
        node.create_timer(1 / 30, self._frames)
        node.create_timer(0.01, lambda: self.state.publish(rig_state(self.node.clock.now())))
        node.create_timer(1.0, self._chunk)

    def _frames(self) -> None:
        t = self.node.clock.now()
        self.i += 1
        for v in VIEW_NAMES:
            self.cams[v].publish(CameraFrame(v, self.pool[self.i % POOL], t))

    def _chunk(self) -> None:
        t = self.node.clock.now()
        self.chunks.publish(chunk(t + 0.1))
        for v in VIEW_NAMES:
            for i in range(20):
                self.pred[v].publish(CameraFrame(v, self.pool[(self.i + i) % POOL], t + 0.1 * (i + 1)))


def node_run(seconds: float, monitor: dict | None) -> tuple[float, MonitorNode | None]:
    host = Host(diagnostics_period=1.0)
    host.add(NodeSpec(Workload, "rig"))
    mon = host.add(NodeSpec(MonitorNode, "monitor_node", params=monitor)) if monitor is not None else None
    c0, t0 = cpu_s(), time.monotonic()
    host.start()
    time.sleep(seconds)
    host.stop()
    host.shutdown()
    return (cpu_s() - c0) / (time.monotonic() - t0), mon


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--jpeg-quality", type=int, default=80)
    ap.add_argument("--max-image-rate", type=float, default=10.0)
    ap.add_argument("--image-width", type=int, default=320, help="0 = as received (640)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("a2w").setLevel(logging.WARNING)
    per_message(make_pool(), args.jpeg_quality, args.image_width)
    with tempfile.TemporaryDirectory() as d:
        base, _ = node_run(args.seconds, None)
        rrd = Path(d) / "session.rrd"
        cpu, mon = node_run(args.seconds, {"rrd": str(rrd), "serve": False, "jpeg_quality": args.jpeg_quality,
                                           "max_image_rate": args.max_image_rate, "image_width": args.image_width})
        assert mon is not None
        log.info("rig workload alone: %.2f CPU s/s; with the monitor: %.2f CPU s/s (x%.2f, +%.2f of a core)",
                 base, cpu, cpu / base, cpu - base)
        log.info("monitor: %d logged, %d dropped by its queue, %d skipped, %d unpaired predictions; "
                 ".rrd %.1f MB per minute", sum(mon.lib.logged.values()), mon.dropped, sum(mon.lib.skipped.values()),
                 mon.lib.unpaired, rrd.stat().st_size / 1e6 * 60 / args.seconds)


if __name__ == "__main__":
    main()
