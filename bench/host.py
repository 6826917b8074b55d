"""Benchmark the in-process host: three 640x480 RGB streams at 30 fps into one consumer while a
30 Hz timer runs. Prints delivery latency p50/p99, drops and the timer's period error p50/p99,
each also as a ratio to a bare-thread baseline (queue.Queue + sleep loop) measured in the same
run, because these machines are noisy.

    .venv/bin/python bench/host.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import logging
import queue
import threading
import time

import numpy as np

from a2w.clock import PeriodStats, WallClock
from a2w.host import Component, Host, QoS
from a2w.host.host import NodeSpec
from a2w.msgs.cameras import VIEW_NAMES, CameraFrame

FPS = 30.0


def paced(period: float, stop: threading.Event, fn) -> None:
    """Call fn() every period seconds (monotonic grid) until stop is set."""
    nxt = time.monotonic()
    while not stop.is_set():
        nxt += period
        fn()
        delay = nxt - time.monotonic()
        if delay > 0:
            stop.wait(delay)


def make_images() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {v: rng.integers(0, 255, (480, 640, 3), dtype=np.uint8) for v in VIEW_NAMES}


# -- host variant ---------------------------------------------------------------------------
class Cameras(Component):
    """Three capture threads publishing frames, as a camera node does."""

    def __init__(self, node, params):
        super().__init__(node, params)
        images = make_images()
        for view in VIEW_NAMES:
            pub = node.create_publisher(f"/cameras/{view}/color/image_raw", CameraFrame, QoS.sensor())
            n = [0]

            def capture(view=view, pub=pub, n=n) -> None:
                n[0] += 1
                pub.publish(CameraFrame(view, images[view], node.clock.now(), frame_number=n[0]))

            node.start_worker(view, lambda capture=capture: paced(1 / FPS, node.shutdown_event, capture))


class Consumer(Component):
    def __init__(self, node, params):
        super().__init__(node, params)
        self.latency: list[float] = []
        for view in VIEW_NAMES:
            node.create_subscription(f"/cameras/{view}/color/image_raw", CameraFrame, self.on_frame, QoS.sensor())
        self.timer = node.create_timer(1 / FPS, lambda: None)

    def on_frame(self, frame: CameraFrame) -> None:
        self.latency.append(self.node.clock.now() - frame.stamp)
        float(frame.image[::64, ::64].mean())  # touch the data like a real consumer


def run_host(seconds: float) -> dict[str, float]:
    host = Host(diagnostics_period=1.0)
    host.add(NodeSpec(Cameras, "cameras"))
    consumer = host.add(NodeSpec(Consumer, "consumer"))
    host.spin(seconds, install_signal_handlers=False)
    rep = consumer.timer.stats.report()
    drops = sum(s.dropped for n in host.nodes for s in n.subscriptions)
    received = sum(s.received for n in host.nodes for s in n.subscriptions)
    return summary(consumer.latency, drops, received, rep.error_p50, rep.error_p99)


# -- bare baseline --------------------------------------------------------------------------
def run_bare(seconds: float) -> dict[str, float]:
    clock = WallClock()
    images = make_images()
    q: queue.Queue = queue.Queue(maxsize=3)
    stop = threading.Event()
    latency: list[float] = []
    drops = [0]
    produced = [0]
    stats = PeriodStats(1 / FPS)

    def producer(view: str) -> None:
        def capture() -> None:
            produced[0] += 1
            try:
                q.put_nowait((view, images[view], clock.now()))
            except queue.Full:
                drops[0] += 1
        paced(1 / FPS, stop, capture)

    def consumer() -> None:
        while not stop.is_set():
            try:
                _, img, stamp = q.get(timeout=0.1)
            except queue.Empty:
                continue
            latency.append(clock.now() - stamp)
            float(img[::64, ::64].mean())

    def timer() -> None:
        paced(1 / FPS, stop, lambda: stats.tick(clock.now()))

    threads = [threading.Thread(target=producer, args=(v,)) for v in VIEW_NAMES]
    threads += [threading.Thread(target=consumer), threading.Thread(target=timer)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    rep = stats.report()
    return summary(latency, drops[0], produced[0], rep.error_p50, rep.error_p99)


def summary(latency: list[float], drops: int, received: int, err50: float, err99: float) -> dict[str, float]:
    lat = np.asarray(latency) * 1e3
    return {
        "latency_p50_ms": float(np.percentile(lat, 50)),
        "latency_p99_ms": float(np.percentile(lat, 99)),
        "frames": float(len(lat)),
        "dropped": float(drops),
        "drop_rate": drops / max(received, 1),
        "timer_err_p50_ms": err50 * 1e3,
        "timer_err_p99_ms": err99 * 1e3,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    bare = run_bare(args.seconds)
    host = run_host(args.seconds)
    print(f"{'metric':<18}{'host':>10}{'bare':>10}{'host/bare':>11}")
    for k in host:
        ratio = host[k] / bare[k] if bare[k] else float("nan")
        print(f"{k:<18}{host[k]:>10.3f}{bare[k]:>10.3f}{ratio:>11.2f}")


if __name__ == "__main__":
    main()
