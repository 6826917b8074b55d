"""The ``monitor_node`` component: subscribes to what the rig publishes and shows it in Rerun.

Subscribes (each only when its stream is chosen in ``streams``; a topic nobody publishes is
simply quiet, so it runs beside the policy, beside teleop, or alone):

* ``cameras``: ``<topic_prefix>/<view>/color/image_raw``; ``predicted``:
  ``<predicted_prefix>/<view>/color/image_raw``: the policy's predicted video (``/policy/predicted``,
  the default) or the shadow's re-prediction (``/shadow/predicted``); ``diff`` needs both;
* ``policy``: ``/policy/chunk``; ``diagnostics``: ``/diagnostics`` (every node's, the cameras' and
  the policy's inference latency among them);
* ``arms``: ``/arms/state``, ``/arms/target``, ``/arms/status`` (latched); ``sim``: ``/sim/status``
  (latched), ``/sim/faults``; ``episode``: ``/episode/events``.

Callbacks only queue the message with the node's time; one worker turns them into Rerun log
calls (``a2w.monitor.log.MonitorLog``: JPEG encoding and frame differences are CPU work that must
not hold the executor). A full queue drops the newest message and counts it: the monitor never
slows the rig.

Outputs: an ``.rrd`` of the session (``rrd``; ``{time}`` in it becomes the start time, empty =
none) and, with ``serve``, the web viewer and its gRPC proxy bound to ``bind`` (127.0.0.1 by
default) on ``web_port`` / ``grpc_port``; the address is logged at start and in diagnostics, and both
again at shutdown.
"""

from __future__ import annotations

import logging
import queue
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rerun as rr

from a2w.arms.component import STATE_TOPIC as ARMS_STATE_TOPIC
from a2w.arms.component import STATUS_TOPIC as ARMS_STATUS_TOPIC
from a2w.arms.component import TARGET_TOPIC as ARMS_TARGET_TOPIC
from a2w.host.component import Component, NodeHandle
from a2w.host.params import Params, param
from a2w.host.qos import QoS, Reliability
from a2w.monitor.log import STREAMS, MonitorLog, blueprint
from a2w.monitor.viewer import ViewerServer
from a2w.msgs.arms import ArmsStatus, RigState, RigTarget
from a2w.msgs.cameras import VIEW_NAMES, CameraFrame
from a2w.msgs.diagnostics import DiagnosticStatus
from a2w.msgs.episode import EpisodeEvent
from a2w.msgs.policy import ActionChunk
from a2w.msgs.shadow import ShadowReport
from a2w.msgs.sim import FaultEvent, SimStatus
from a2w.policy.topics import CHUNK_TOPIC as POLICY_CHUNK_TOPIC
from a2w.policy.topics import PREDICTED_PREFIX
from a2w.record.component import EVENTS_TOPIC
from a2w.shadow.component import PREDICTED_PREFIX as SHADOW_PREDICTED_PREFIX
from a2w.shadow.component import REPORT_TOPIC as SHADOW_REPORT_TOPIC
from a2w.sim.component import FAULT_TOPIC as SIM_FAULT_TOPIC
from a2w.sim.component import STATUS_TOPIC as SIM_STATUS_TOPIC

DIAGNOSTICS_TOPIC = "/diagnostics"
APPLICATION_ID = "a2w_monitor"
_STOP = object()


@dataclass
class MonitorNodeParams(Params):
    views: list[str] = param(list(VIEW_NAMES), "camera views shown")
    topic_prefix: str = param("/cameras", "camera topics are <prefix>/<view>/color/image_raw")
    predicted_prefix: str = param(PREDICTED_PREFIX, "predicted frames are <prefix>/<view>/color/image_raw: the "
                                  f"policy's plan ({PREDICTED_PREFIX}) or the shadow's re-prediction "
                                  f"({SHADOW_PREDICTED_PREFIX})")
    streams: list[str] = param(list(STREAMS), f"what to show, any of {list(STREAMS)}")
    rrd: str = param("recordings/monitor/{time}.rrd",
                     "the session's .rrd ({time} = start time YYYYmmdd-HHMMSS; empty = none)")
    serve: bool = param(True, "serve the web viewer (the rerun-sdk wheel's, offline)")
    bind: str = param("127.0.0.1", "address the web viewer and its gRPC proxy listen on")
    web_port: int = param(9090, "HTTP port of the web viewer page", low=1, high=65535)
    grpc_port: int = param(9876, "gRPC port the viewer page reads the data from", low=1, high=65535)
    server_memory_limit: str = param("512MiB", "data the viewer's server keeps for late viewers (oldest "
                                               "dropped first)")
    max_image_rate: float = param(10.0, "camera frames logged per second and view at most (0 = all)",
                                  low=0.0, high=120.0)
    jpeg_quality: int = param(80, "JPEG quality of logged images (0 = raw RGB)", low=0, high=100)
    image_width: int = param(320, "images are shown and compared scaled down to this width (0 = as received)",
                             low=0, high=8192)
    max_state_rate: float = param(30.0, "arm states and targets logged per second at most (0 = all)",
                                  low=0.0, high=1000.0)
    pair_tolerance: float = param(0.05, "a prediction and a real frame this close (s) are compared",
                                  low=0.0, high=1.0)
    history: float = param(2.0, "seconds of real frames kept to compare predictions that arrive late (a chunk's "
                                "horizon: the policy may decode its video after the cameras passed it)",
                           low=0.0, high=10.0)
    queue_size: int = param(300, "messages waiting for the logging worker before new ones are dropped",
                            low=1, high=100000)


class MonitorNode(Component):
    Params = MonitorNodeParams

    def __init__(self, node: NodeHandle, params: MonitorNodeParams) -> None:
        super().__init__(node, params)
        p = params
        bad = sorted(set(p.streams) - set(STREAMS))
        if bad:
            raise ValueError(f"{node.name}: parameter streams: unknown {bad}; known: {list(STREAMS)}")
        if not p.views or len(set(p.views)) != len(p.views) or not all(p.views):
            raise ValueError(f"{node.name}: parameter views: distinct non-empty view names needed, got {p.views}")
        if not p.rrd and not p.serve:
            raise ValueError(f"{node.name}: nothing to do: rrd is empty and serve is false")
        self.dropped = 0
        self.errors = 0
        self.rrd_path = ""
        self.server: ViewerServer | None = None
        self.rec = rr.RecordingStream(APPLICATION_ID, make_default=False, make_thread_default=False)
        sinks: list[Any] = []
        if p.rrd:
            path = Path(p.rrd.replace("{time}", time.strftime("%Y%m%d-%H%M%S")))
            path.parent.mkdir(parents=True, exist_ok=True)
            self.rrd_path = str(path)
            sinks.append(rr.FileSink(path))
        self.viewer_state = "off"
        if p.serve:
            server = ViewerServer(p.bind, p.web_port, p.grpc_port, p.server_memory_limit)
            server.start()
            # Wait here (at construction, not in a callback) for the viewer: a gRPC sink whose
            # server never came up would hold every flush and the .rrd's footer at shutdown.
            if server.wait_ready():
                self.server = server
                self.viewer_state = server.web_url
                sinks.append(rr.GrpcSink(server.grpc_url))
            else:
                why = server.output().strip()[-400:]
                server.stop()
                self.viewer_state = f"could not start on {p.bind}:{p.web_port}/{p.grpc_port}"
                if not sinks:
                    raise RuntimeError(f"{node.name}: the web viewer {self.viewer_state} and rrd is empty: {why}")
                self.log.error("monitor: the web viewer %s (writing the .rrd only): %s", self.viewer_state, why)
        self.rec.set_sinks(*sinks, default_blueprint=blueprint(p.views, p.streams))
        self.viewer_restarts = 0
        self._restart_at = 0.0
        self.lib = MonitorLog(self.rec, p.views, max_image_rate=p.max_image_rate, jpeg_quality=p.jpeg_quality,
                              pair_tolerance=p.pair_tolerance, history=p.history, image_width=p.image_width,
                              max_state_rate=p.max_state_rate)
        self._queue: queue.Queue = queue.Queue(maxsize=p.queue_size)
        if self.rrd_path:
            self.log.info("monitor: writing %s", self.rrd_path)

        on = set(p.streams)
        images = QoS(Reliability.BEST_EFFORT, 5)
        prefix = p.topic_prefix.rstrip("/")
        for v in p.views:
            if on & {"cameras", "diff"}:
                node.create_subscription(f"{prefix}/{v}/color/image_raw", CameraFrame,
                                         self._forward("camera_frame"), images)
            if on & {"predicted", "diff"}:
                # a chunk's 20 predictions arrive together: room for two chunks per view. Best
                # effort matches a publisher of either reliability (a reliable reader would not
                # connect to a best-effort writer)
                node.create_subscription(f"{p.predicted_prefix.rstrip('/')}/{v}/color/image_raw", CameraFrame,
                                         self._forward("predicted_frame"),
                                         QoS(Reliability.BEST_EFFORT, 40))
        subs: list[tuple[str, str, type, str, QoS]] = [
            ("policy", POLICY_CHUNK_TOPIC, ActionChunk, "chunk", QoS.reliable(5)),
            ("shadow", SHADOW_REPORT_TOPIC, ShadowReport, "shadow_report", QoS.reliable(20)),
            ("diagnostics", DIAGNOSTICS_TOPIC, DiagnosticStatus, "diagnostic", QoS.reliable(50)),
            ("arms", ARMS_STATE_TOPIC, RigState, "rig_state", QoS(Reliability.BEST_EFFORT, 10)),
            ("arms", ARMS_TARGET_TOPIC, RigTarget, "rig_target", QoS(Reliability.BEST_EFFORT, 20)),
            ("arms", ARMS_STATUS_TOPIC, ArmsStatus, "arms_status", QoS.latched_state()),
            ("sim", SIM_STATUS_TOPIC, SimStatus, "sim_status", QoS.latched_state()),
            ("sim", SIM_FAULT_TOPIC, FaultEvent, "fault_event", QoS.reliable(20)),
            ("episode", EVENTS_TOPIC, EpisodeEvent, "episode_event", QoS.reliable(20)),
        ]
        for stream, topic, msg_type, kind, qos in subs:
            if stream in on:
                node.create_subscription(topic, msg_type, self._forward(kind), qos)
        if self.server is not None:
            node.create_timer(1.0, self._watch_server)
        self._worker = node.start_worker("rerun_logger", self._work)

    # -- executor side ------------------------------------------------------------------------

    def _forward(self, kind: str) -> Any:
        def cb(msg: Any) -> None:
            try:
                self._queue.put_nowait((kind, msg, self.node.clock.now()))
            except queue.Full:
                self.dropped += 1
        return cb

    def _watch_server(self) -> None:
        # A viewer that died (crashed, killed) is started again on the same ports, at most every
        # 10 s: the SDK's gRPC sink reconnects to it, and a sink left without a server would hold
        # the flushes at shutdown.
        assert self.server is not None
        rc = self.server.poll()
        now = time.monotonic()
        if rc is None or now < self._restart_at:
            return
        self.viewer_restarts += 1
        self._restart_at = now + 10.0
        n = self.viewer_restarts
        if n in (1, 10, 100) or n % 1000 == 0:
            self.log.error("monitor: the web viewer exited with code %s; restarting it (%d so far): %s", rc, n,
                           self.server.output().strip()[-400:])
        self.server.start()

    # -- the worker ---------------------------------------------------------------------------

    def _work(self) -> None:
        while not self.node.shutdown_event.is_set():
            try:
                item = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            if item is _STOP:
                break
            kind, msg, now = item
            try:
                self.lib.handle(kind, msg, now)
            except Exception:  # Rerun itself failing must not end the worker: count and go on
                self.errors += 1
                if self.errors in (1, 10, 100) or self.errors % 1000 == 0:
                    logging.getLogger(__name__).exception("monitor: logging a %s failed (%d so far)", kind,
                                                          self.errors)

    # -- reporting and shutdown ---------------------------------------------------------------

    def diagnostics(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "logged": sum(self.lib.logged.values()),
            "skipped": sum(self.lib.skipped.values()),
            "dropped": self.dropped,
            "unpaired_predictions": self.lib.unpaired,
            "errors": self.errors,
            "queue": self._queue.qsize(),
        }
        for key, n in sorted(self.lib.skipped.items()):
            out[f"skipped.{key}"] = n
        if self.rrd_path:
            out["rrd"] = self.rrd_path
        if self.server is not None and self.server.poll() is not None:
            out["viewer"] = "exited, restarting"
        else:
            out["viewer"] = self.viewer_state
        if self.viewer_restarts:
            out["viewer_restarts"] = self.viewer_restarts
        return out

    def shutdown(self) -> None:
        try:
            self._queue.put_nowait(_STOP)
        except queue.Full:
            pass
        # the worker logs to the recording: let it finish its message before the sinks close
        if self._worker.ident is not None:
            self._worker.join(5.0)
        # A viewer that is gone (or never started) fails the flush of its gRPC sink: bound the wait,
        # and close the sinks regardless, so the .rrd gets its footer.
        try:
            self.rec.flush(timeout_sec=3.0)
        except Exception as exc:  # noqa: BLE001 - rerun raises RuntimeError, and a wait may time out
            self.log.warning("monitor: flushing to the viewer failed at shutdown (%s); the .rrd is complete", exc)
        try:
            self.rec.disconnect()
        finally:
            if self.server is not None:
                self.server.stop()
        # Last, so a run's log ends saying where its session is (the live viewer goes with the run).
        self.log.info("monitor: session %s%s; the live viewer was %s", self.rrd_path or "not recorded (rrd empty)",
                      f" (replay: rerun {self.rrd_path})" if self.rrd_path else "",
                      f"at {self.viewer_state}" if self.server is not None else self.viewer_state)
