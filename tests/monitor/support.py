"""Helpers of the monitor tests: read an .rrd back with Rerun's own reader, build messages."""

from __future__ import annotations

import collections
import socket
from pathlib import Path
from typing import Any

import numpy as np
from rerun.chunk import RrdReader

from a2w.host import Component, QoS
from a2w.msgs.arms import ArmState, ArmTarget, ControlMode, RigState, RigTarget
from a2w.msgs.cameras import VIEW_NAMES, CameraFrame
from a2w.msgs.common import Pose
from a2w.msgs.policy import ActionChunk
from a2w.policy.topics import CHUNK_TOPIC as POLICY_CHUNK_TOPIC
from a2w.policy.topics import predicted_topic

H, W = 24, 32


def read_rrd(path: str | Path) -> dict[str, list[tuple[float | None, dict[str, Any]]]]:
    """Entity path -> rows (stamp in seconds on the ``stamp`` timeline or None, {component: value}),
    read with ``rerun.chunk.RrdReader`` (the file must be a complete recording)."""
    out: dict[str, list] = collections.defaultdict(list)
    reader = RrdReader(path)
    assert reader.recordings(), f"{path}: no recording in the file"
    for chunk in reader.stream().to_chunks():
        rb = chunk.to_record_batch()
        names = rb.schema.names
        # durations (sim time) and timestamps (wall time) as integer nanoseconds -> seconds
        stamps = ([None if v is None else v / 1e9 for v in rb.column("stamp").cast("int64").to_pylist()]
                  if "stamp" in names else [None] * rb.num_rows)
        comps = [n for n in names if ":" in n]
        cols = {n: rb.column(n).to_pylist() for n in comps}
        for i in range(rb.num_rows):
            out[chunk.entity_path].append((stamps[i], {n: cols[n][i] for n in comps}))
    for rows in out.values():
        rows.sort(key=lambda r: (r[0] is None, r[0] or 0.0))
    return dict(out)


def scalars(rows: list[tuple[float | None, dict[str, Any]]]) -> list[tuple[float, float]]:
    """(stamp, value) of a Scalars entity's rows."""
    return [(s, v["Scalars:scalars"][0]) for s, v in rows if v.get("Scalars:scalars")]


def image(view: str, stamp: float, value: int = 0, h: int = H, w: int = W) -> CameraFrame:
    return CameraFrame(view, np.full((h, w, 3), value, np.uint8), stamp)


def pose(x: float = 0.3) -> Pose:
    return Pose(np.array([x, 0.0, 0.2]), np.array([0.0, 0.0, 0.0, 1.0]))


def rig_state(t: float) -> RigState:
    arm = ArmState(pose(), np.zeros(7), np.zeros(7), np.zeros(6), 0.5, t)
    return RigState(arm, arm, ControlMode.TELEOP, t)


def rig_target(t: float) -> RigTarget:
    return RigTarget(ArmTarget(pose(0.31), 0.4), ArmTarget(pose(0.32), 0.6), t, ControlMode.TELEOP)


def chunk(t0: float, n: int = 20, seq: int = 0) -> ActionChunk:
    targets = np.zeros((n, 2, 8))
    targets[:, :, 0] = np.linspace(0.3, 0.4, n)[:, None]
    targets[:, :, 6] = 1.0
    targets[:, :, 7] = 0.5
    return ActionChunk(np.zeros((n, 14), np.float32), targets, t0 + 0.1 * np.arange(n), seq, t0 - 0.2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> list[str]:
    """Local addresses listening on TCP ``port`` (from /proc/net/tcp{,6}), e.g. ['127.0.0.1']."""
    out = []
    for name, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            addr, p = f[1].split(":")
            if int(p, 16) != port or f[3] != "0A":  # 0A = LISTEN
                continue
            raw = bytes.fromhex(addr)
            if v6:
                words = [raw[i:i + 4][::-1] for i in range(0, 16, 4)]
                out.append(socket.inet_ntop(socket.AF_INET6, b"".join(words)))
            else:
                out.append(socket.inet_ntoa(raw[::-1]))
    return out


class FakeRig(Component):
    """Cameras at 30 fps and arm state and targets at 50 Hz (teleop); with ``policy``, a chunk and its
    20 predicted frames per view every second, all at once, predicting the next 2 s."""

    def __init__(self, node, params, policy: bool = False) -> None:  # noqa: ANN001
        super().__init__(node, params)
        self.policy = policy
        self.i = 0
        self.cams = {v: node.create_publisher(f"/cameras/{v}/color/image_raw", CameraFrame, QoS.reliable(5))
                     for v in VIEW_NAMES}
        self.state = node.create_publisher("/arms/state", RigState, QoS.reliable(5))
        self.target = node.create_publisher("/arms/target", RigTarget, QoS.reliable(5))
        if policy:
            self.chunks = node.create_publisher(POLICY_CHUNK_TOPIC, ActionChunk, QoS.reliable(5))
            self.pred = {v: node.create_publisher(predicted_topic(v), CameraFrame, QoS.reliable(40))
                         for v in VIEW_NAMES}
            node.create_timer(1.0, self._chunk)
        node.create_timer(1 / 30, self._frames)
        node.create_timer(0.02, self._arms)

    def _frames(self) -> None:
        t = self.node.clock.now()
        self.i += 1
        for k, v in enumerate(VIEW_NAMES):
            self.cams[v].publish(image(v, t, (self.i * 7 + k * 40) % 256))

    def _arms(self) -> None:
        t = self.node.clock.now()
        self.state.publish(rig_state(t))
        self.target.publish(rig_target(t))

    def _chunk(self) -> None:
        t = self.node.clock.now()
        self.chunks.publish(chunk(t + 0.1))
        for v in VIEW_NAMES:
            for i in range(20):
                self.pred[v].publish(image(v, t + 0.1 * (i + 1), 128))


class PolicyRig(FakeRig):
    def __init__(self, node, params) -> None:  # noqa: ANN001
        super().__init__(node, params, policy=True)
