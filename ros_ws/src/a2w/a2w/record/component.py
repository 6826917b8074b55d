"""The ``record_node`` component: records the rig's topics into a LeRobot v3 dataset.

Subscribes to the camera images (``<prefix>/<view>/color/image_raw``), ``/arms/state``, the
commanded ``/arms/target``, the policy's ``/policy/chunk`` (when a policy runs) and episode
control: the ``/record/control`` service (``EpisodeControlRequest``) and ``/episode/events``
(``EpisodeEvent``: start, save, discard). Publishes each outcome (started, saved with its row
count, discarded, failed with the reason) as an ``EpisodeEvent`` on ``/record/episodes``.

Rows are assembled on the executor by ``rows.RowGrid`` (a cheap timer at the dataset's rate);
everything that touches the disk runs in one writer worker fed by a bounded queue, so callbacks
never block. A full queue fails the episode loudly ("the recorder cannot keep up"): rows are
never dropped from the middle of an episode.
"""

from __future__ import annotations

import logging
import queue
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from a2w.arms.component import STATE_TOPIC, TARGET_TOPIC
from a2w.host.component import Component, NodeHandle
from a2w.host.params import Params, param
from a2w.host.qos import QoS, Reliability
from a2w.msgs.arms import RigState, RigTarget
from a2w.msgs.cameras import VIEW_NAMES, CameraFrame
from a2w.msgs.episode import (
    EpisodeCommand,
    EpisodeControlRequest,
    EpisodeControlResponse,
    EpisodeEvent,
    EpisodeEventKind,
)
from a2w.msgs.policy import ActionChunk
from a2w.record.encoder import VideoSettings
from a2w.record.rows import RowGrid
from a2w.record.writer import DatasetWriter, EpisodeFailed, Row, RowRefused

CONTROL_SERVICE = "/record/control"
EVENTS_TOPIC = "/episode/events"
OUTCOME_TOPIC = "/record/episodes"
CHUNK_TOPIC = "/policy/chunk"


@dataclass
class RecordNodeParams(Params):
    root: str = param("", "dataset directory (created, or resumed when it holds a dataset)")
    views: list[str] = param(list(VIEW_NAMES), "camera views, one video feature each")
    topic_prefix: str = param("/cameras", "camera topics are <prefix>/<view>/color/image_raw")
    width: int = param(640, "image width of every view (px)", low=2, high=8192)
    height: int = param(480, "image height of every view (px)", low=2, high=8192)
    fps: int = param(30, "rows per second (the dataset's fps)", low=1, high=120)
    delay: float = param(0.2, "a row is assembled this long after its time, when its frames are in (s)",
                         low=0.0, high=2.0)
    robot_type: str = param("a2w_dual_flexiv", "robot_type in meta/info.json")
    crf: int = param(23, "H.264 quality (lower is better and larger)", low=0, high=51)
    preset: str = param("ultrafast", "x264 preset (ultrafast keeps 3x640x480 at 30 fps on 2 cores)",
                        choices=("ultrafast", "superfast", "veryfast", "faster", "fast", "medium"))
    gop: int = param(10, "keyframe interval (frames)", low=1, high=300)
    encoder_queue: int = param(60, "frames queued per camera encoder", low=2, high=10000)
    writer_queue: int = param(120, "rows queued for the writer worker before the episode fails", low=2,
                              high=100000)


class RecordNode(Component):
    Params = RecordNodeParams

    def __init__(self, node: NodeHandle, params: RecordNodeParams) -> None:
        super().__init__(node, params)
        if not params.root:
            raise ValueError(f"{node.name}: parameter root: the dataset directory is required")
        self.writer = DatasetWriter(
            Path(params.root), params.views, params.width, params.height, params.fps, params.robot_type,
            VideoSettings(crf=params.crf, preset=params.preset, gop=params.gop, queue_size=params.encoder_queue))
        for r in self.writer.recovered:
            self.log.warning("dataset %s: recovered after an interrupted run: %s", params.root, r)
        self.grid: RowGrid | None = None
        self.task = ""
        self.seed = -1
        self.episode = -1  # index of the episode in progress (-1: idle)
        self.saved = len(self.writer.episodes)
        self.failed = 0
        self.refused = 0
        self.backlog_high = 0
        self._saves_pending = 0
        self.last_outcome = ""
        self._state: RigState | None = None
        self._work: queue.Queue = queue.Queue(maxsize=params.writer_queue)
        self._dead = False  # the episode in progress failed; its rows are ignored until the next start
        self._pub = node.create_publisher(OUTCOME_TOPIC, EpisodeEvent, QoS.reliable(20))
        image_qos = QoS(Reliability.BEST_EFFORT, 30)
        for v in params.views:
            node.create_subscription(f"{params.topic_prefix}/{v}/color/image_raw", CameraFrame,
                                     self._on_frame, image_qos)
        node.create_subscription(STATE_TOPIC, RigState, self._on_state, QoS(Reliability.BEST_EFFORT, 50))
        node.create_subscription(TARGET_TOPIC, RigTarget, self._on_target, QoS.reliable(50))
        node.create_subscription(CHUNK_TOPIC, ActionChunk, self._on_chunk, QoS.reliable(5))
        node.create_subscription(EVENTS_TOPIC, EpisodeEvent, self._on_event, QoS.reliable(20))
        node.create_service(CONTROL_SERVICE, EpisodeControlRequest, self._on_control)
        node.create_timer(1.0 / params.fps, self._tick)
        node.start_worker("writer", self._writer_loop)

    # -- inputs ----------------------------------------------------------------------------------

    def _on_frame(self, frame: CameraFrame) -> None:
        if self.grid is not None:
            self.grid.add_frame(frame)

    def _on_state(self, state: RigState) -> None:
        self._state = state
        if self.grid is not None:
            self.grid.add_state(state)

    def _on_target(self, target: RigTarget) -> None:
        if self.grid is not None:
            self.grid.add_target(target)

    def _on_chunk(self, chunk: ActionChunk) -> None:
        if self.grid is not None:
            self.grid.add_chunk(chunk, self.node.clock.now())

    def _on_event(self, ev: EpisodeEvent) -> None:
        cmd = {EpisodeEventKind.START: EpisodeCommand.START, EpisodeEventKind.SAVE: EpisodeCommand.SAVE,
               EpisodeEventKind.DISCARD: EpisodeCommand.DISCARD}.get(ev.kind)
        if cmd is None:
            return  # MARK: annotations are not episode control
        try:
            req = EpisodeControlRequest(cmd, ev.task, -1)
        except ValueError as exc:
            self.log.error("ignored %s on %s: %s", ev.kind.value, EVENTS_TOPIC, exc)
            return
        resp = self._on_control(req)
        if not resp.success:
            self.log.error("%s on %s refused: %s", ev.kind.value, EVENTS_TOPIC, resp.message)

    def _on_control(self, req: EpisodeControlRequest) -> EpisodeControlResponse:
        if req.command is EpisodeCommand.START:
            if self.episode >= 0:
                return EpisodeControlResponse(False, f"episode {self.episode} is recording; save or discard it "
                                                     "first", self.episode)
            return self._start(req.task, req.seed)
        if self.episode < 0:
            return EpisodeControlResponse(False, f"no episode is recording ({req.command.value} ignored)")
        index = self.episode
        if req.command is EpisodeCommand.SAVE:
            if self.grid is not None and not self._dead:
                for row in self.grid.flush(self.node.clock.now()):  # the tail whose frames are in
                    self._submit(("row", row))
                if self.grid.stats.rows == 0:
                    why = self._why_no_rows()
                    self._submit(("discard", why))
                    self._stop_recording()
                    return EpisodeControlResponse(False, f"episode {index}: nothing to save: {why}", index)
            self._saves_pending += 1
            self._submit(("save", self._grid_report()))
            self._stop_recording()
            return EpisodeControlResponse(True, f"episode {index}: saving", index)
        self._submit(("discard", req.command.value))
        self._stop_recording()
        if req.command is EpisodeCommand.RERECORD:  # same task, and same seed unless a new one is given
            return self._start(self.task, req.seed if req.seed >= 0 else self.seed)
        return EpisodeControlResponse(True, f"episode {index}: discarded", index)

    def _start(self, task: str, seed: int) -> EpisodeControlResponse:
        p = self.params
        self.task, self.seed = task, seed
        # provisional: the writer numbers episodes after the saved ones, and a save still in the
        # writer's queue may fail; the START event on /record/episodes carries the real index
        self.episode = self.saved + self._saves_pending
        self.grid = RowGrid(p.views, self.node.clock.now(), p.fps, p.delay)
        self._dead = False
        self._submit(("begin", task, None if seed < 0 else seed))
        return EpisodeControlResponse(True, f"episode {self.episode}: recording {task!r}", self.episode)

    def _why_no_rows(self) -> str:
        g = self.grid
        assert g is not None
        silent = [v for v in g.views if not g.frames[v] and v not in g.last]
        if silent:
            return (f"no frame from {silent} on {self.params.topic_prefix}/<view>/color/image_raw "
                    "since the episode started")
        if g.stats.no_state:
            return f"no arm state on {STATE_TOPIC}"
        return "no row was due yet"

    def _grid_report(self) -> dict[str, object]:
        g = self.grid
        if g is None:
            return {}
        return {"rows": g.stats.rows, "stalled": dict(g.stats.stalled), "late_frames": dict(g.stats.late),
                "wide_sets": g.stats.wide_sets, "delay_s": g.delay}

    def _stop_recording(self) -> None:
        self.grid = None
        self.episode = -1

    # -- the grid --------------------------------------------------------------------------------

    def _tick(self) -> None:
        if self.grid is None or self._dead:
            return
        for row in self.grid.due(self.node.clock.now()):
            self._submit(("row", row))

    def _submit(self, item: tuple) -> None:
        try:
            self._work.put_nowait(item)
        except queue.Full:
            if item[0] == "row" and not self._dead:
                self._dead = True
                self.log.error("episode %d: the recorder cannot keep up: %d rows wait for the writer; "
                               "the episode fails", self.episode, self._work.qsize())
                self._work.put(("fail", f"the writer fell {self._work.qsize()} rows behind"))
            elif item[0] != "row":
                self._work.put(item)  # control must get through; the worker drains rows quickly
        self.backlog_high = max(self.backlog_high, self._work.qsize())

    # -- the writer worker -----------------------------------------------------------------------

    def _writer_loop(self) -> None:
        ep = None
        stop = self.node.shutdown_event
        while not stop.is_set() or not self._work.empty():
            try:
                item = self._work.get(timeout=0.1)
            except queue.Empty:
                continue
            kind = item[0]
            try:
                if kind == "begin":
                    if ep is not None:
                        ep.discard("a new episode started")
                    ep = self.writer.begin_episode(item[1], seed=item[2])
                    self._post(EpisodeEventKind.START, ep.episode_index, item[1], "recording")
                elif kind == "row" and ep is not None:
                    self._add(ep, item[1])
                elif kind == "save" and ep is not None:
                    self.node.post(self._save_done)
                    ep.extra["grid"] = item[1]
                    s, ep = ep.save(), None
                    self._post(EpisodeEventKind.SAVE, s.episode_index, s.task,
                               f"saved {s.length} rows ({s.seconds:.1f} s, {s.bytes / 1e6:.1f} MB; stalled "
                               f"frames {s.stalled_frames}; refused rows {s.refused_rows})", saved=True)
                elif kind == "discard" and ep is not None:
                    index = ep.episode_index
                    ep.discard(item[1])
                    ep = None
                    self._post(EpisodeEventKind.DISCARD, index, self.task, f"discarded ({item[1]})")
                elif kind == "fail" and ep is not None:
                    index = ep.episode_index
                    ep.note(logging.ERROR, item[1])
                    ep.discard(item[1])
                    ep = None
                    self._post(EpisodeEventKind.DISCARD, index, self.task, f"failed: {item[1]}", failed=True)
            except EpisodeFailed as exc:
                index = ep.episode_index if ep is not None else -1
                ep = None
                self._post(EpisodeEventKind.DISCARD, index, self.task, f"failed: {exc}", failed=True)
        if ep is not None:
            ep.discard("the recorder stopped")
        self.writer.close()  # releases the dataset's lock for the next recorder

    def _save_done(self) -> None:
        self._saves_pending -= 1

    def _add(self, ep: Any, row: Row) -> None:
        try:
            ep.add_row(row)
        except RowRefused as exc:
            message = str(exc)  # exc is unbound once the except block ends
            self.node.post(lambda: self._count_refused(message))

    def _count_refused(self, message: str) -> None:
        self.refused += 1
        if self.refused in (1, 10, 100) or self.refused % 1000 == 0:  # one bad setting refuses every row
            self.log.error("episode %d: row refused (%d so far): %s", self.episode, self.refused, message)

    def _post(self, kind: EpisodeEventKind, index: int, task: str, note: str, saved: bool = False,
              failed: bool = False) -> None:
        def done() -> None:
            if saved:
                self.saved += 1
            if failed:
                self.failed += 1
                self._dead = True
                self.log.error("episode %d: %s", index, note)
            else:
                self.log.info("episode %d: %s", index, note)
            self._publish(kind, index, task, note)
        self.node.post(done)

    def _publish(self, kind: EpisodeEventKind, index: int, task: str, note: str) -> None:
        self.last_outcome = f"episode {index}: {note}"
        self._pub.publish(EpisodeEvent(kind, self.node.clock.now(), index, task, note))

    def diagnostics(self) -> dict[str, object]:
        d: dict[str, object] = {
            "episode": self.episode, "saved": self.saved, "failed": self.failed, "refused_rows": self.refused,
            "writer_backlog": self._work.qsize(), "writer_backlog_high": self.backlog_high,
            "last": self.last_outcome,
        }
        ep = self.writer.current
        if ep is not None:
            for v, s in ep.encoder_stats().items():
                d[f"encoder_{v}_high_water"] = s.high_water
                d[f"encoder_{v}_waits"] = s.waits
        if self.grid is not None:
            d["rows"] = self.grid.stats.rows
            d["stalled"] = sum(self.grid.stats.stalled.values())
            d["late_frames"] = sum(self.grid.stats.late.values())
        return d

    def shutdown(self) -> None:
        if self.episode >= 0:
            self._submit(("discard", "the recorder stopped"))
            self._stop_recording()
