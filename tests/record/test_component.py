"""record_node on the in-process host: episode control through /record/control and
/episode/events (start, re-record, discard, save, refusals), outcomes on /record/episodes, and
what it records: one frame per camera per row, the arm state beside it."""

from __future__ import annotations

import queue
from pathlib import Path

import numpy as np
import pytest

from a2w.host import Component, Host, QoS
from a2w.host.host import NodeSpec
from a2w.msgs.arms import ArmState, ControlMode, RigState
from a2w.msgs.cameras import VIEW_NAMES, CameraFrame
from a2w.msgs.common import Pose
from a2w.msgs.episode import EpisodeCommand, EpisodeControlRequest, EpisodeEvent, EpisodeEventKind
from a2w.record.component import CONTROL_SERVICE, EVENTS_TOPIC, OUTCOME_TOPIC, RecordNode
from a2w.record.writer import DatasetWriter
from tests.record.frames import H, W, frame
from tests.record.support import assert_frames_match
from tests.support import wait_until


class FakeCameras(Component):
    """Three cameras at 30 fps stamped on their own cadence, and the arm state at 100 Hz."""

    def __init__(self, node, params) -> None:  # noqa: ANN001
        super().__init__(node, params)
        self.i = 0
        self.t0 = None
        self.pubs = {v: node.create_publisher(f"/cameras/{v}/color/image_raw", CameraFrame, QoS.reliable(5))
                     for v in VIEW_NAMES}
        self.state = node.create_publisher("/arms/state", RigState, QoS.reliable(5))
        node.create_timer(1 / 30, self._frames)
        node.create_timer(0.01, self._state)

    def _frames(self) -> None:
        # a camera captures on its own 30 fps cadence and stamps each frame with its capture time;
        # a tick that comes late (a loaded machine) captures the slot it is in, the skipped ones are lost
        now = self.node.clock.now()
        if self.t0 is None:
            self.t0 = now
        i = int(np.floor((now - self.t0) * 30 + 1e-6))
        if self.i and i <= self.i - 1:
            return
        t = self.t0 + i / 30
        for k, v in enumerate(VIEW_NAMES):
            self.pubs[v].publish(CameraFrame(v, frame(0, i, k), t, frame_number=i))
        self.i = i + 1

    def _state(self) -> None:
        t = self.node.clock.now()
        arm = ArmState(Pose(np.array([0.3, 0.0, 0.2]), np.array([0, 0, 0, 1.0])), np.zeros(7), np.zeros(7),
                       np.zeros(6), 0.5, t)
        self.state.publish(RigState(arm, arm, ControlMode.TELEOP, t))


@pytest.fixture
def rig(tmp_path: Path):
    host = Host(diagnostics_period=0)
    host.add(NodeSpec(FakeCameras, "cameras"))
    rec = host.add(NodeSpec(RecordNode, "record_node", params={"root": str(tmp_path / "ds"), "width": W,
                                                                 "height": H}))
    outcomes: queue.Queue = queue.Queue()
    host.bus.topic(OUTCOME_TOPIC, EpisodeEvent, "test").taps.append(outcomes.put)
    events = host.bus.topic(EVENTS_TOPIC, EpisodeEvent, "test")
    client = host.nodes[-1].create_client(CONTROL_SERVICE, EpisodeControlRequest)
    host.start()
    try:
        yield host, rec, client, events, outcomes, tmp_path / "ds"
    finally:
        host.stop()
        host.shutdown()


def _next(outcomes: queue.Queue) -> EpisodeEvent:
    return outcomes.get(timeout=30)


def test_episode_control_by_service_and_topic_with_refusals(rig) -> None:
    host, rec, client, events, outcomes, root = rig
    assert not client.call(EpisodeControlRequest(EpisodeCommand.SAVE)).success  # nothing recording
    r = client.call(EpisodeControlRequest(EpisodeCommand.START, "stack the cups", 4))
    assert r.success and r.episode_index == 0
    assert (ev := _next(outcomes)).kind is EpisodeEventKind.START and ev.episode_index == 0
    again = client.call(EpisodeControlRequest(EpisodeCommand.START, "another", 5))
    assert not again.success and "recording" in again.message
    assert wait_until(lambda: rec.grid is not None and rec.grid.stats.rows >= 10, 20.0)
    # re-record: the take is discarded and a new one starts with the same task
    assert client.call(EpisodeControlRequest(EpisodeCommand.RERECORD)).success
    assert _next(outcomes).kind is EpisodeEventKind.DISCARD
    assert (ev := _next(outcomes)).kind is EpisodeEventKind.START and ev.episode_index == 0
    assert ev.task == "stack the cups"
    assert wait_until(lambda: rec.grid is not None and rec.grid.stats.rows >= 30, 20.0)
    # save and the next start through /episode/events, as a headset button would
    events.publish(EpisodeEvent(EpisodeEventKind.SAVE, 0.0), False)
    assert (ev := _next(outcomes)).kind is EpisodeEventKind.SAVE and ev.episode_index == 0, ev
    events.publish(EpisodeEvent(EpisodeEventKind.START, 0.0, task="wipe the table"), False)
    assert (ev := _next(outcomes)).kind is EpisodeEventKind.START and ev.episode_index == 1
    events.publish(EpisodeEvent(EpisodeEventKind.DISCARD, 0.0), False)
    assert _next(outcomes).kind is EpisodeEventKind.DISCARD
    host.stop()
    host.shutdown()
    with DatasetWriter(root, VIEW_NAMES, W, H) as w:  # the recorder released the dataset
        assert [e.task for e in w.episodes] == ["stack the cups"]
    from a2w.dataset import Dataset, validate

    assert validate(root) == []
    ds = Dataset(root)
    [ep] = ds.episodes
    assert ds.episode_meta(0)["seed"] == 4  # the re-recorded take keeps the episode's seed
    t = ds.data(ep)
    fresh = ~np.stack(t.column("observation.camera_stalled").to_pylist())
    cams = np.stack(t.column("observation.camera_stamps").to_pylist())
    assert fresh.any(axis=0).all()
    assert np.abs(cams - t.column("stamp").to_numpy()[:, None])[fresh].max() < 1e-6
    # every recorded frame is the one its stamp says (frame number n was stamped t0 + n / 30)
    for k, v in enumerate(VIEW_NAMES):
        decoded = np.stack(list(ds.frames(ep, f"observation.images.{v}")))
        cam0 = host.components["/cameras"].t0
        n = np.rint((cams[:, k] + ds.episode_meta(0)["t0"] - cam0) * 30).astype(int)
        assert_frames_match(decoded, 0, n.tolist(), k, v)


def test_saving_an_episode_without_rows_says_which_input_is_missing(tmp_path: Path) -> None:
    host = Host(diagnostics_period=0)
    host.add(NodeSpec(RecordNode, "record_node", params={"root": str(tmp_path / "ds"), "width": W, "height": H,
                                                          "topic_prefix": "/nothing_here"}))
    client = host.nodes[-1].create_client(CONTROL_SERVICE, EpisodeControlRequest)
    host.start()
    try:
        assert client.call(EpisodeControlRequest(EpisodeCommand.START, "pick", 1)).success
        r = client.call(EpisodeControlRequest(EpisodeCommand.SAVE))
        assert not r.success and "no frame from" in r.message and "/nothing_here/<view>" in r.message
        assert client.call(EpisodeControlRequest(EpisodeCommand.START, "pick", 2)).success  # idle again
    finally:
        host.stop()
        host.shutdown()
