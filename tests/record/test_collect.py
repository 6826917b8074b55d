"""`a2w sim collect` through the full sim stack (sim, cameras, arm node, expert, recorder): the
dataset validates, LeRobot's loader opens it with the frames that were recorded, seeds are kept;
a camera that stops delivering mid-episode is duplicated and flagged in the recorded rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from a2w.cli import main as a2w_main
from a2w.dataset import Dataset, validate
from a2w.host.component import Component, NodeHandle
from a2w.host.host import NodeSpec
from a2w.host.params import Params, param
from a2w.host.qos import QoS, Reliability
from a2w.msgs.cameras import VIEW_NAMES, CameraFrame
from a2w.sim.collect import run_episode
from tests.record.support import lerobot_view

pytestmark = pytest.mark.slow
W, H = 128, 96


def test_sim_collect_saves_episodes_lerobot_opens_frame_for_frame(tmp_path: Path, lerobot_python: str,
                                                                  capsys) -> None:
    out = tmp_path / "lift"
    assert a2w_main(["sim", "collect", "--task", "lift_box", "--episodes", "2", "--out", str(out),
                     "--width", str(W), "--height", str(H), "--seed", "3"]) == 0
    summary = capsys.readouterr().out
    assert "lift_box: 2 episodes saved" in summary and "MB per episode" in summary
    assert validate(out) == []
    ds = Dataset(out)
    assert len(ds.episodes) == 2
    metas = [ds.episode_meta(i) for i in range(2)]
    assert all(m["seed"] >= 3 for m in metas) and len({m["seed"] for m in metas}) == 2
    assert all(m["task"] == "lift the box with both arms" for m in metas)
    for e in ds.episodes:
        t = ds.data(e)
        # the grid sits on the sim cameras' cadence (a frame that came too late under load is a
        # flagged duplicate), and the expert moved the arms
        cams = np.stack(t.column("observation.camera_stamps").to_pylist())
        fresh = ~np.stack(t.column("observation.camera_stalled").to_pylist())
        assert fresh.mean() > 0.9
        assert np.abs(cams - t.column("stamp").to_numpy()[:, None])[fresh].max() < 0.002
        state = np.stack(t.column("observation.state").to_pylist())
        assert np.ptp(state[:, 2]) > 0.05 and np.ptp(state[:, 10]) > 0.05, "the arms did not lift"
    report, frames = lerobot_view(lerobot_python, out, tmp_path)
    assert report["len"] == sum(e["length"] for e in ds.episodes) and report["num_episodes"] == 2
    start = 0
    for e in ds.episodes:
        n = e["length"]
        for k in ds.video_keys:
            ours = np.stack(list(ds.frames(e, k)))
            theirs = frames[k][start:start + n]
            assert ours.shape == theirs.shape == (n, H, W, 3)
            assert np.abs(ours.astype(int) - theirs).max() <= 2, f"LeRobot decoded other frames ({k})"
            assert ours.std() > 5, "rendered frames, not blank ones"
        start += n
    assert a2w_main(["dataset", "info", "--json", str(out)]) == 0
    info = json.loads(capsys.readouterr().out)
    flags = sum(np.stack(ds.data(e).column("observation.camera_stalled").to_pylist()).sum() for e in ds.episodes)
    assert info["episodes"] == 2 and info["stalled_frames"] == flags


@pytest.fixture
def gap() -> tuple[float, float]:
    return (2.0, 2.4)  # s of sim time during which the front camera delivers nothing


class CableGate(Component):
    """Forwards the camera topics to ``/gated/...``, except the front camera's frames stamped inside
    ``gap``: a camera that stops delivering (a pulled cable, a USB reset), not one that freezes."""

    class Params(Params):  # type: ignore[no-redef]
        gap_start: float = param(2.0, "")
        gap_end: float = param(2.4, "")

    def __init__(self, node: NodeHandle, params) -> None:  # noqa: ANN001
        super().__init__(node, params)
        self.dropped: list[float] = []
        for v in VIEW_NAMES:
            pub = node.create_publisher(f"/gated/{v}/color/image_raw", CameraFrame, QoS(Reliability.RELIABLE, 30))
            node.create_subscription(f"/cameras/{v}/color/image_raw", CameraFrame,
                                     lambda f, pub=pub: self._forward(f, pub), QoS(Reliability.BEST_EFFORT, 30))

    def _forward(self, f: CameraFrame, pub) -> None:  # noqa: ANN001
        if f.view == "front" and self.params.gap_start <= f.stamp < self.params.gap_end:
            self.dropped.append(f.stamp)
            return
        pub.publish(f)


def test_a_camera_that_stops_mid_episode_is_duplicated_and_flagged(tmp_path: Path, gap) -> None:
    from dataclasses import dataclass

    CableGate.Params = dataclass(CableGate.Params)
    out = tmp_path / "stall"
    r = run_episode("lift_box", 5, out, W, H, 1.0, record_params={"topic_prefix": "/gated"},
                    extra_nodes=[NodeSpec(CableGate, "gate", params={"use_sim_time": True, "gap_start": gap[0],
                                                                       "gap_end": gap[1]})])
    assert r.saved, r.note
    assert validate(out) == []
    ds = Dataset(out)
    e = ds.episodes[0]
    t = ds.data(e)
    t0 = ds.episode_meta(0)["t0"]
    stalled = np.stack(t.column("observation.camera_stalled").to_pylist())
    cams = np.stack(t.column("observation.camera_stamps").to_pylist()) + t0
    rows_t = t.column("stamp").to_numpy() + t0
    front = list(VIEW_NAMES).index("front")
    in_gap = (rows_t >= gap[0] + 1 / 60) & (rows_t < gap[1] - 1 / 60)
    assert in_gap.sum() >= 10
    assert stalled[in_gap, front].all(), "rows inside the gap must flag the front camera"
    rows = np.flatnonzero(in_gap)
    last_good = max(i for i in range(rows[0]) if not stalled[i, front])
    assert cams[last_good, front] < gap[0]
    # the duplicated frame keeps its own (old) capture stamp and picture; nothing is shifted
    assert (cams[rows, front] == cams[last_good, front]).all()
    frames = np.stack(list(ds.frames(e, "observation.images.front")))
    assert np.abs(frames[rows].astype(int) - frames[last_good]).mean() < 2.0
    after = min(i for i in range(rows[-1], len(rows_t)) if not stalled[i, front])
    assert cams[after, front] >= gap[1] and abs(cams[after, front] - rows_t[after]) < 0.002, \
        "the camera's next frame lands on its own row"
    fresh = ~stalled
    assert (np.abs(cams - rows_t[:, None])[fresh] < 0.002).all(), "every fresh frame sits on its row"
    assert ds.episode_meta(0)["stalled_frames"]["front"] == stalled[:, front].sum() >= in_gap.sum()
