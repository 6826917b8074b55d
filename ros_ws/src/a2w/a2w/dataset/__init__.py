"""Reading and checking recorded datasets (``a2w dataset info|validate|export-video``).

Reads the LeRobot v3 layout the recorder writes (``a2w.record.layout``) with pyarrow and PyAV
only, so it runs in the main venv; LeRobot's own loader is the real client and is exercised by
the tests in its own venv.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from a2w.record import layout as L

TIME_TOLERANCE = 1e-4  # s; LeRobot's loader queries frames with this tolerance


class DatasetReadError(RuntimeError):
    pass


@dataclass(frozen=True)
class Problem:
    """One broken invariant, located: episode and row (-1 when the whole dataset or episode)."""

    episode: int
    row: int
    message: str

    def __str__(self) -> str:
        where = "dataset" if self.episode < 0 else f"episode {self.episode}" + (
            f" row {self.row}" if self.row >= 0 else "")
        return f"{where}: {self.message}"


class Dataset:
    """A recorded dataset, read-only."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        if not L.is_dataset(self.root):
            raise DatasetReadError(f"{self.root}: no {L.INFO_PATH} (not a dataset)")
        self.info: dict[str, Any] = json.loads((self.root / L.INFO_PATH).read_text())
        self.fps = int(self.info["fps"])
        self.features: dict[str, Any] = self.info["features"]
        self.video_keys = L.video_keys(self.features)
        self.episodes: list[dict[str, Any]] = []
        for p in sorted((self.root / "meta" / "episodes").glob("*/*.parquet")):
            self.episodes.extend(pq.read_table(p).to_pylist())
        self.episodes.sort(key=lambda e: e["episode_index"])
        a2w = self.root / L.A2W_META_PATH
        self.a2w: dict[str, Any] = json.loads(a2w.read_text()) if a2w.exists() else {}

    def episode_meta(self, index: int) -> dict[str, Any]:
        p = self.root / L.a2w_episode_path(index)
        return json.loads(p.read_text()) if p.exists() else {}

    def data(self, ep: dict[str, Any]) -> Any:
        path = self.root / L.DATA_PATH.format(chunk_index=ep["data/chunk_index"],
                                              file_index=ep["data/file_index"])
        table = pq.read_table(path)
        lo, hi = ep["dataset_from_index"], ep["dataset_to_index"]
        idx = table.column("index").to_numpy()
        return table.filter((idx >= lo) & (idx < hi)) if (idx.min() < lo or idx.max() >= hi) else table

    def video_file(self, ep: dict[str, Any], key: str) -> Path:
        return self.root / L.VIDEO_PATH.format(video_key=key, chunk_index=ep[f"videos/{key}/chunk_index"],
                                               file_index=ep[f"videos/{key}/file_index"])

    def frame_times(self, ep: dict[str, Any], key: str) -> np.ndarray:
        """Presentation times (s) of the episode's frames in ``key``'s video, from the packets."""
        import av

        with av.open(str(self.video_file(ep, key))) as c:
            s = c.streams.video[0]
            pts = sorted(p.pts for p in c.demux(s) if p.pts is not None)
            tb = float(s.time_base)
        t = np.asarray(pts, dtype=np.float64) * tb
        lo, hi = ep[f"videos/{key}/from_timestamp"], ep[f"videos/{key}/to_timestamp"]
        return t[(t >= lo - TIME_TOLERANCE) & (t < hi - TIME_TOLERANCE)] - lo

    def frames(self, ep: dict[str, Any], key: str) -> Iterator[np.ndarray]:
        """The episode's decoded frames of ``key``, RGB uint8, in order."""
        import av

        lo, hi = ep[f"videos/{key}/from_timestamp"], ep[f"videos/{key}/to_timestamp"]
        with av.open(str(self.video_file(ep, key))) as c:
            for f in c.decode(video=0):
                if lo - TIME_TOLERANCE <= f.time < hi - TIME_TOLERANCE:
                    yield f.to_ndarray(format="rgb24")


def validate(root: Path | str) -> list[Problem]:
    """Our invariants: one frame per camera per row, timestamps on the grid and monotone, video
    length = rows, no NaN, contiguous indices. Returns every problem found (empty: valid)."""
    try:
        ds = Dataset(root)
    except (DatasetReadError, OSError, ValueError, KeyError) as exc:
        return [Problem(-1, -1, str(exc))]
    problems: list[Problem] = []
    if ds.info.get("codebase_version") != L.CODEBASE_VERSION:
        problems.append(Problem(-1, -1, f"codebase_version {ds.info.get('codebase_version')!r}"))
    indices = [e["episode_index"] for e in ds.episodes]
    if indices != list(range(len(indices))):
        problems.append(Problem(-1, -1, f"episode indices are not 0..{len(indices) - 1}: {indices}"))
    if ds.info.get("total_episodes", 0) > len(ds.episodes):
        problems.append(Problem(-1, -1, f"info.json counts {ds.info['total_episodes']} episodes, "
                                        f"{len(ds.episodes)} have metadata"))
    numeric = [k for k, f in ds.features.items() if f["dtype"] in ("float32", "float64")]
    expected_first = 0
    for ep in ds.episodes:
        e, n = ep["episode_index"], ep["length"]
        try:
            t = ds.data(ep)
        except (OSError, ValueError) as exc:
            problems.append(Problem(e, -1, f"data file unreadable: {exc}"))
            continue
        if t.num_rows != n:
            problems.append(Problem(e, -1, f"{t.num_rows} data rows, metadata says {n}"))
        if ep["dataset_from_index"] != expected_first:
            problems.append(Problem(e, -1, f"dataset_from_index {ep['dataset_from_index']}, "
                                           f"expected {expected_first}"))
        expected_first = ep["dataset_to_index"]
        fi = t.column("frame_index").to_numpy()
        bad = np.flatnonzero(fi != np.arange(t.num_rows))
        if bad.size:
            problems.append(Problem(e, int(bad[0]), f"frame_index {fi[bad[0]]}, expected {bad[0]}"))
        ts = t.column("timestamp").to_numpy().astype(np.float64)
        off = np.abs(ts - np.arange(t.num_rows) / ds.fps)
        if off.size and off.max() > TIME_TOLERANCE:
            r = int(np.argmax(off))
            problems.append(Problem(e, r, f"timestamp {ts[r]:.6f} is not on the {ds.fps} fps grid"))
        if L.NOMINAL_STAMP_KEY in t.column_names:
            st = t.column(L.NOMINAL_STAMP_KEY).to_numpy()
            back = np.flatnonzero(np.diff(st) <= 0)
            if back.size:
                problems.append(Problem(e, int(back[0]) + 1, "row stamps are not increasing"))
        for k in numeric:
            if k not in t.column_names:
                problems.append(Problem(e, -1, f"feature {k} has no column"))
                continue
            col = t.column(k).combine_chunks()
            arr = (col.flatten().to_numpy(zero_copy_only=False) if pa.types.is_fixed_size_list(col.type)
                   else col.to_numpy(zero_copy_only=False)).reshape(t.num_rows, -1)
            nan = np.flatnonzero(~np.isfinite(arr.astype(np.float64)).all(axis=1))
            if nan.size:
                problems.append(Problem(e, int(nan[0]), f"{k} is not finite: {arr[nan[0]].tolist()}"))
        if L.CAM_STALLED_KEY in t.column_names:
            width = ds.features[L.CAM_STALLED_KEY]["shape"][0]
            if t.column(L.CAM_STALLED_KEY).type.list_size != width:
                problems.append(Problem(e, -1, "camera_stalled does not have one flag per camera"))
        for key in ds.video_keys:
            try:
                times = ds.frame_times(ep, key)
            except Exception as exc:  # noqa: BLE001 - any decoder error is a broken video
                problems.append(Problem(e, -1, f"{key}: video unreadable: {exc}"))
                continue
            if len(times) != n:
                problems.append(Problem(e, min(len(times), n), f"{key}: {len(times)} frames for {n} rows "
                                                               "(one frame per camera per row)"))
                continue
            off = np.abs(times - np.arange(n) / ds.fps)
            if off.size and off.max() > TIME_TOLERANCE:
                r = int(np.argmax(off))
                problems.append(Problem(e, r, f"{key}: frame at {times[r]:.6f} s, expected {r / ds.fps:.6f} s "
                                              f"(tolerance {TIME_TOLERANCE} s)"))
    return problems


def summary(root: Path | str) -> dict[str, Any]:
    ds = Dataset(root)
    size = sum(p.stat().st_size for p in ds.root.rglob("*") if p.is_file())
    lengths = [e["length"] for e in ds.episodes]
    metas = [ds.episode_meta(e["episode_index"]) for e in ds.episodes]
    stalled = sum(sum(m.get("stalled_frames", {}).values()) for m in metas)
    return {
        "root": str(ds.root), "codebase_version": ds.info.get("codebase_version"), "fps": ds.fps,
        "robot_type": ds.info.get("robot_type"), "episodes": len(ds.episodes), "frames": sum(lengths),
        "seconds": sum(lengths) / ds.fps, "tasks": sorted({t for e in ds.episodes for t in e["tasks"]}),
        "cameras": [k[len(L.IMAGE_PREFIX):] for k in ds.video_keys],
        "image_size": ds.features[ds.video_keys[0]]["shape"][:2] if ds.video_keys else None,
        "bytes": size, "bytes_per_episode": size / len(ds.episodes) if ds.episodes else math.nan,
        "stalled_frames": stalled, "refused_rows": sum(m.get("refused_rows", 0) for m in metas),
        "encoder_waits": sum(m.get("encoder_waits", 0) for m in metas),
        "seeds": [m.get("seed") for m in metas],
    }
