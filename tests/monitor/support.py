"""Helpers of the monitor tests: read an .rrd back with Rerun's own reader, build messages."""

from __future__ import annotations

import collections
import socket
from pathlib import Path
from typing import Any

import numpy as np
from rerun.chunk import RrdReader

from a2w.msgs.arms import ArmState, ArmTarget, ControlMode, RigState, RigTarget
from a2w.msgs.cameras import CameraFrame
from a2w.msgs.common import Pose
from a2w.msgs.policy import ActionChunk

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
