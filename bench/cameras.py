"""Camera benchmark: three software-device streams at 640x480x30 through the camera node.

Both phases push the same synthetic frames through librealsense (``rs.software_device``) with a
global-time stamp equal to the push time, so "now - stamp" at the consumer is the latency from
capture (frame handed to librealsense) to the consumer:

* baseline: a bare pyrealsense2 read loop per camera (frame_queue.wait_for_frame + copy of the
  pixels), the least any consumer of the SDK does;
* node: the camera component in the in-process host; latency is taken when the image is
  published (a synchronous tap on each image topic), CPU includes everything the node does per
  frame (capture thread, hand-off, CameraFrame, camera_info, metadata, statistics).

Printed figures are ratios node / baseline measured in the same run (absolute values alongside
for orientation only: the machine is shared). Usage: ``python bench/cameras.py [--seconds 4]``.
"""

from __future__ import annotations

import argparse
import threading
import time
from typing import Any

import numpy as np
import pyrealsense2 as rs

from a2w.cameras import component as camera_component
from a2w.cameras.component import CameraComponent, DriverContext
from a2w.cameras.realsense import source as realsense
from a2w.cameras.realsense.softcam import FrameFeeder, SoftwareCamera, SoftwareDeviceHub
from a2w.cameras.source import CameraConfig
from a2w.host import Host
from a2w.host.host import NodeSpec
from a2w.msgs.cameras import VIEW_NAMES, CameraFrame


def make_cams() -> list[SoftwareCamera]:
    return [SoftwareCamera("900000000001", "d435i"), SoftwareCamera("900000000002", "d405"),
            SoftwareCamera("900000000003", "d405")]


def run_baseline(seconds: float) -> dict[str, Any]:
    cams = make_cams()
    lat: list[float] = []
    lock = threading.Lock()
    stop = threading.Event()
    frames = [0]

    def reader(cam: SoftwareCamera) -> None:
        q = rs.frame_queue(4, keep_frames=True)
        cam.color_sensor.open(cam.color_profile)
        cam.color_sensor.start(q)
        try:
            while not stop.is_set():
                ok, f = q.try_wait_for_frame(100)
                if not ok:
                    continue
                img = np.array(np.asanyarray(f.get_data()), copy=True)
                now = time.time()
                with lock:
                    lat.append(now - f.get_timestamp() / 1e3)
                    frames[0] += 1
                del img
        finally:
            cam.color_sensor.stop()
            cam.color_sensor.close()

    threads = [threading.Thread(target=reader, args=(c,), daemon=True) for c in cams]
    for t in threads:
        t.start()
    time.sleep(0.3)
    return _measure(cams, seconds, lat, frames, lock, stop, threads)


def run_node(seconds: float) -> dict[str, Any]:
    cams = make_cams()
    hub = SoftwareDeviceHub(cams)

    def factory(cfg: CameraConfig, ctx: DriverContext) -> realsense.RealSenseSource:
        ctx.shared["rs_lister"] = hub  # the RealSense driver, on the software devices
        return realsense.make_source(cfg, ctx)

    camera_component.DRIVERS["bench_soft"] = factory
    host = Host(diagnostics_period=0)
    lat: list[float] = []
    frames = [0]
    lock = threading.Lock()

    def tap(msg: CameraFrame) -> None:
        now = time.time()
        with lock:
            lat.append(now - msg.stamp)
            frames[0] += 1

    for v in VIEW_NAMES:
        host.bus.topic(f"/cameras/{v}/color/image_raw", CameraFrame, "bench").taps.append(tap)
    comp = host.add(NodeSpec(CameraComponent, "camera_node", params={
        "driver": "bench_soft", "realsense.serials": [c.serial for c in cams], "frame_timeout": 2.0}))
    host.start()
    time.sleep(0.3)
    try:
        out = _measure(cams, seconds, lat, frames, lock, None, [])
        out["drops"] = sum(c.stats.drops for c in comp.cameras)  # type: ignore[attr-defined]
    finally:
        host.shutdown()
        camera_component.DRIVERS.pop("bench_soft", None)
    return out


def _measure(cams: list[SoftwareCamera], seconds: float, lat: list[float], frames: list[int],
             lock: threading.Lock, stop: threading.Event | None,
             threads: list[threading.Thread]) -> dict[str, Any]:
    feeder = FrameFeeder(cams, fps=30.0, content=False, common_stamp=False)
    feeder.start()
    time.sleep(0.5)  # warm-up
    with lock:
        lat.clear()
        frames[0] = 0
    pushed0 = sum(feeder.numbers.values())
    c0, w0 = time.process_time(), time.monotonic()
    time.sleep(seconds)
    c1, w1 = time.process_time(), time.monotonic()
    with lock:
        got = frames[0]
        lat_s = np.array(lat)
    pushed = sum(feeder.numbers.values()) - pushed0
    feeder.stop()
    if stop is not None:
        stop.set()
        for t in threads:
            t.join(2.0)
    return {
        "frames": got,
        "pushed": pushed,
        "fps_total": got / (w1 - w0),
        "p50_ms": float(np.percentile(lat_s, 50)) * 1e3,
        "p99_ms": float(np.percentile(lat_s, 99)) * 1e3,
        "cpu_ms_per_frame": (c1 - c0) / max(got, 1) * 1e3,
        "cpu_share": (c1 - c0) / (w1 - w0),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=4.0, help="measured time per phase")
    args = ap.parse_args()
    base = run_baseline(args.seconds)
    node = run_node(args.seconds)
    print("camera benchmark: 3 x software-device 640x480x30 RGB8, "
          f"{args.seconds:g} s per phase")
    for name, r in (("bare pyrealsense2 read loop", base), ("camera node (in-process host)", node)):
        print(f"  {name:32s} frames {r['frames']:4d}/{r['pushed']:4d}  "
              f"latency p50 {r['p50_ms']:.3f} ms  p99 {r['p99_ms']:.3f} ms  "
              f"CPU {r['cpu_ms_per_frame']:.3f} ms/frame ({100 * r['cpu_share']:.0f}% of a core)")
    print(f"  node drops (frame-number gaps): {node.get('drops', 0)}")
    print(f"  ratio node/baseline: latency p50 x{node['p50_ms'] / base['p50_ms']:.2f}, "
          f"p99 x{node['p99_ms'] / base['p99_ms']:.2f}, "
          f"CPU per frame x{node['cpu_ms_per_frame'] / base['cpu_ms_per_frame']:.2f}")


if __name__ == "__main__":
    main()
