"""Writing episodes into a LeRobot v3.0 dataset so that a crash never loses a saved one.

An episode is recorded into a staging directory (``.staging/episode_NNNNNN/``): the encoders write
its MP4s there while it runs, and ``save`` writes its data parquet there. Committing then moves
the finished files into the dataset in an order that keeps the dataset openable after a crash
between any two steps (each move is an fsync'd rename, see ``durable``):

1. the data parquet and the MP4s, into their final names: nothing refers to them yet;
2. ``meta/a2w/episodes/episode_NNNNNN.json`` (our metadata and the episode's log);
3. ``meta/tasks.parquet``, rewritten with the new task added (a superset is harmless);
4. ``meta/episodes/chunk-CCC/file-FFF.parquet``: the episode exists from here on;
5. ``meta/stats.json``, then ``meta/info.json``: LeRobot's loader counts the episode from here on.

A step that fails (a full disk) undoes the ones before it, so ``save`` either returns (saved and
counted) or raises (not in the dataset).

``DatasetWriter`` opening an existing dataset takes the contiguous run of episodes whose step 4
happened as the saved ones, deletes whatever a crash left past them (staging, temporary files,
files of a half-committed episode) and rewrites the step-5 files from the saved episodes, so the
next run appends right after the last saved episode.
"""

from __future__ import annotations

import errno
import fcntl
import io
import json
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from a2w.record import layout as L
from a2w.record.durable import TMP_SUFFIX, atomic_write, durable_move, fsync_dir, make_dirs
from a2w.record.encoder import EncoderError, QueueStats, VideoEncoder, VideoSettings

log = logging.getLogger(__name__)

A2W_FORMAT = 1  # version of our meta/a2w/ files
NO_POLICY = -1  # policy.chunk_id and policy.latency when no policy produced the row's action


class DatasetError(RuntimeError):
    """The dataset cannot be opened for writing (incompatible, locked, unreadable)."""


class RowRefused(ValueError):
    """A row that must not enter the dataset (non-finite values, wrong shapes)."""


class EpisodeFailed(RuntimeError):
    """The episode ended with an error (disk full, encoder failure); it was not saved."""


@dataclass
class Row:
    """One row of the 30 Hz grid: one frame per camera and the arms around the same time.

    ``state`` and ``target``: (16,) per arm ``[x, y, z, qx, qy, qz, qw, gripper_open]`` in the arm's
    base frame, measured and commanded. ``camera_stamps``: the capture stamp of each view's frame
    (a duplicated frame keeps its own, older stamp); ``camera_stalled`` says which views were
    duplicated. ``stamp`` is the row's nominal time on the grid.
    """

    images: Mapping[str, np.ndarray]
    state: np.ndarray
    joints: np.ndarray
    target: np.ndarray
    camera_stamps: np.ndarray
    camera_stalled: np.ndarray
    state_stamp: float
    stamp: float
    chunk_id: int = NO_POLICY
    latency: float = float(NO_POLICY)


@dataclass
class EpisodeSummary:
    episode_index: int
    length: int
    task: str
    seconds: float
    bytes: int
    stalled_frames: dict[str, int]
    refused_rows: int
    encoder: dict[str, dict[str, float]]


def _fixed(values: np.ndarray, dtype: pa.DataType) -> pa.Array:
    n = values.shape[1]
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1), type=dtype), n)


class _Stats:
    """Running min/max/mean/std of one feature (per element; per channel for images)."""

    def __init__(self) -> None:
        self.n = 0
        self.s: np.ndarray | None = None
        self.ss: np.ndarray | None = None
        self.lo: np.ndarray | None = None
        self.hi: np.ndarray | None = None

    def add(self, x: np.ndarray) -> None:  # x: (N, D)
        x = x.astype(np.float64)
        s, ss, lo, hi = x.sum(0), (x * x).sum(0), x.min(0), x.max(0)
        if self.s is None:
            self.s, self.ss, self.lo, self.hi = s, ss, lo, hi
        else:
            self.s, self.ss = self.s + s, self.ss + ss
            self.lo, self.hi = np.minimum(self.lo, lo), np.maximum(self.hi, hi)
        self.n += x.shape[0]

    def as_dict(self) -> dict[str, Any]:
        mean = self.s / self.n
        std = np.sqrt(np.maximum(self.ss / self.n - mean * mean, 0.0))
        return {"min": self.lo.tolist(), "max": self.hi.tolist(), "mean": mean.tolist(),
                "std": std.tolist(), "count": [self.n]}


def aggregate_stats(per_episode: Sequence[Mapping[str, Mapping[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Dataset stats from per-episode stats (count-weighted mean, pooled variance)."""
    out: dict[str, dict[str, Any]] = {}
    keys = sorted({k for st in per_episode for k in st})
    for k in keys:
        parts = [st[k] for st in per_episode if k in st]
        n = np.array([p["count"][0] for p in parts], dtype=np.float64)
        means = [np.asarray(p["mean"], dtype=np.float64) for p in parts]
        stds = [np.asarray(p["std"], dtype=np.float64) for p in parts]
        total = n.sum()
        mean = sum(ni * m for ni, m in zip(n, means)) / total
        var = sum(ni * (s * s + m * m) for ni, s, m in zip(n, stds, means)) / total - mean * mean
        out[k] = {"min": np.min([np.asarray(p["min"]) for p in parts], axis=0).tolist(),
                  "max": np.max([np.asarray(p["max"]) for p in parts], axis=0).tolist(),
                  "mean": mean.tolist(), "std": np.sqrt(np.maximum(var, 0.0)).tolist(),
                  "count": [int(total)]}
    return out


class EpisodeWriter:
    """One episode being recorded. Get it from ``DatasetWriter.begin_episode``."""

    IMAGE_STATS_EVERY = 10  # rows between image-stat samples (LeRobot also subsamples)

    def __init__(self, dataset: "DatasetWriter", episode_index: int, task: str, seed: int | None,
                 extra: Mapping[str, Any] | None) -> None:
        self.dataset = dataset
        self.episode_index = episode_index
        self.task = task
        self.seed = seed
        self.extra = dict(extra or {})
        self.staging = dataset.root / L.STAGING_DIR / f"episode_{episode_index:06d}"
        self.state = "recording"
        self.error = ""
        self.log_lines: list[str] = []
        self.log_suppressed = 0
        self.refused = 0
        self.stalled = {v: 0 for v in dataset.views}
        self.started_wall = time.time()
        self.t0: float | None = None  # stamp of the first row; stored stamps are relative to it
        self._cols: dict[str, list] = {k: [] for k in (
            L.STATE_KEY, L.JOINTS_KEY, L.TARGET_KEY, L.CAM_STAMPS_KEY, L.CAM_STALLED_KEY,
            L.STATE_STAMP_KEY, L.NOMINAL_STAMP_KEY, L.CHUNK_ID_KEY, L.LATENCY_KEY)}
        self._img_stats = {v: _Stats() for v in dataset.views}
        if self.staging.exists():
            shutil.rmtree(self.staging)
        make_dirs(self.staging)
        self._encoders = {
            v: VideoEncoder(self.staging / f"{v}.mp4", dataset.width, dataset.height, dataset.fps,
                            dataset.video, name=f"episode {episode_index} {v}")
            for v in dataset.views}
        for enc in self._encoders.values():
            enc.start()

    @property
    def length(self) -> int:
        return len(self._cols[L.STATE_KEY])

    MAX_LOG_LINES = 200  # a camera at the wrong size refuses every row: keep the log readable

    def note(self, level: int, message: str) -> None:
        """Log ``message`` and keep it in the episode's log (``meta/a2w/episodes/``); past
        ``MAX_LOG_LINES`` only a count of the further messages is kept."""
        if len(self.log_lines) < self.MAX_LOG_LINES:
            self.log_lines.append(f"{logging.getLevelName(level)}: {message}")
            log.log(level, "episode %d: %s", self.episode_index, message)
        else:
            self.log_suppressed += 1
            if self.log_suppressed in (1, 100) or self.log_suppressed % 10000 == 0:
                log.log(level, "episode %d: %s (%d further messages not kept in the episode log)",
                        self.episode_index, message, self.log_suppressed)

    def encoder_stats(self) -> dict[str, QueueStats]:
        return {v: e.stats for v, e in self._encoders.items()}

    def _check(self, row: Row) -> None:
        views = self.dataset.views
        shapes = {"state": (row.state, (16,)), "joints": (row.joints, (2 * self.dataset.joints_per_arm,)),
                  "target": (row.target, (16,)), "camera_stamps": (row.camera_stamps, (len(views),))}
        for name, (arr, shape) in shapes.items():
            a = np.asarray(arr)
            if a.shape != shape:
                raise RowRefused(f"{name}: shape {a.shape}, expected {shape}")
            bad = ~np.isfinite(a.astype(np.float64))
            if bad.any():
                raise RowRefused(f"{name} has non-finite values at {np.flatnonzero(bad).tolist()}: "
                                 f"{a[bad].tolist()}")
        for name, x in (("state_stamp", row.state_stamp), ("stamp", row.stamp), ("latency", row.latency)):
            if not math.isfinite(float(x)):
                raise RowRefused(f"{name} is not finite: {x!r}")
        if np.asarray(row.camera_stalled).shape != (len(views),):
            raise RowRefused(f"camera_stalled: shape {np.asarray(row.camera_stalled).shape}")
        for v in views:
            img = row.images.get(v)
            if img is None:
                raise RowRefused(f"no frame for view {v!r}: every row has exactly one frame per camera")
            if img.dtype != np.uint8 or img.shape != (self.dataset.height, self.dataset.width, 3):
                raise RowRefused(f"view {v}: image {img.dtype} {img.shape}, expected uint8 "
                                 f"({self.dataset.height}, {self.dataset.width}, 3)")

    def add_row(self, row: Row) -> None:
        """Append one row. ``RowRefused`` (the row is not written, and the refusal is in the
        episode's log) or ``EpisodeFailed`` (the episode is over and deleted)."""
        if self.state != "recording":
            raise EpisodeFailed(f"episode {self.episode_index} is {self.state}, not recording")
        try:
            self._check(row)
        except RowRefused as exc:
            self.refused += 1
            self.note(logging.ERROR, f"row at t={row.stamp!r} refused ({self.length} rows so far): {exc}")
            raise
        index = self.length
        try:
            for v in self.dataset.views:
                self._encoders[v].put(index, np.ascontiguousarray(row.images[v]))
        except EncoderError as exc:
            self._fail(f"video encoding failed at row {index}: {exc}")
        c = self._cols
        c[L.STATE_KEY].append(np.asarray(row.state, dtype=np.float32))
        c[L.JOINTS_KEY].append(np.asarray(row.joints, dtype=np.float32))
        c[L.TARGET_KEY].append(np.asarray(row.target, dtype=np.float64))
        if self.t0 is None:
            self.t0 = float(row.stamp)
        # Stamps are stored relative to the episode's first row (t0 in meta/a2w): LeRobot's loader
        # hands float columns out as float32, which would round wall-clock stamps to minutes.
        c[L.CAM_STAMPS_KEY].append(np.asarray(row.camera_stamps, dtype=np.float64) - self.t0)
        stalled = np.asarray(row.camera_stalled, dtype=bool)
        c[L.CAM_STALLED_KEY].append(stalled)
        c[L.STATE_STAMP_KEY].append(float(row.state_stamp) - self.t0)
        c[L.NOMINAL_STAMP_KEY].append(float(row.stamp) - self.t0)
        c[L.CHUNK_ID_KEY].append(int(row.chunk_id))
        c[L.LATENCY_KEY].append(float(row.latency))
        for v, s in zip(self.dataset.views, stalled):
            self.stalled[v] += int(s)
        if index % self.IMAGE_STATS_EVERY == 0:
            for v in self.dataset.views:
                px = row.images[v][::8, ::8].reshape(-1, 3) / 255.0
                self._img_stats[v].add(px)

    def _fail(self, message: str) -> None:
        cause = message
        if "No space left" in message or "ENOSPC" in message or f"Errno {errno.ENOSPC}" in message:
            cause = f"disk full: {message}"
        self.error = cause
        self.note(logging.ERROR, f"episode ended: {cause}")
        self._abort()
        self.state = "failed"
        self.dataset._episode_closed(self)
        raise EpisodeFailed(f"episode {self.episode_index} not saved: {cause}")

    def _abort(self) -> None:
        for enc in self._encoders.values():
            enc.abort()
        self.remove_staging()

    def remove_staging(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
        try:
            self.staging.parent.rmdir()  # .staging itself, once no episode is in it
        except OSError:
            pass

    def discard(self, reason: str = "") -> None:
        if self.state != "recording":
            return
        self.note(logging.INFO, f"discarded after {self.length} rows" + (f": {reason}" if reason else ""))
        self._abort()
        self.state = "discarded"
        self.dataset._episode_closed(self)

    def save(self) -> EpisodeSummary:
        """Finish encoding and commit the episode; ``EpisodeFailed`` leaves the dataset as it was."""
        if self.state != "recording":
            raise EpisodeFailed(f"episode {self.episode_index} is {self.state}, cannot save")
        n = self.length
        if n == 0:
            self.discard("no rows")
            raise EpisodeFailed(f"episode {self.episode_index} has no rows; nothing saved")
        try:
            self.dataset._hook("encoding")  # the encoders still hold queued frames here
            for v, enc in self._encoders.items():
                frames = enc.finish()
                if frames != n:
                    raise EncoderError(f"{v}: {frames} frames encoded for {n} rows")
            self.dataset._hook("encoded")
            data = self._table()
            buf = io.BytesIO()
            pq.write_table(data, buf, compression="snappy")
            staged = self.staging / "data.parquet"
            with open(staged, "wb") as f:
                f.write(buf.getvalue())
                f.flush()
                os.fsync(f.fileno())
            return self.dataset._commit(self, data)
        except (OSError, EncoderError) as exc:
            self.dataset._rescan()  # a commit cut short may have got as far as step 4
            self._fail(f"saving failed: {exc}")
            raise AssertionError("unreachable") from exc

    def _actions(self) -> np.ndarray:
        from a2w.actions import encode_dual

        targets = np.stack(self._cols[L.TARGET_KEY]).reshape(-1, 2, 8)
        start = np.asarray(self._cols[L.STATE_KEY][0], dtype=np.float64).reshape(1, 2, 8)
        # Row t's action is the motion from the previous commanded pose to this row's commanded pose;
        # row 0's starts from the measured pose (the arm's state when recording began).
        return encode_dual(np.concatenate([start, targets], axis=0)).astype(np.float32)

    def _table(self) -> pa.Table:
        c = self._cols
        n = self.length
        first = self.dataset.total_frames
        actions = self._actions()
        cols: dict[str, pa.Array] = {
            L.STATE_KEY: _fixed(np.stack(c[L.STATE_KEY]), pa.float32()),
            L.JOINTS_KEY: _fixed(np.stack(c[L.JOINTS_KEY]), pa.float32()),
            L.ACTION_KEY: _fixed(actions, pa.float32()),
            L.TARGET_KEY: _fixed(np.stack(c[L.TARGET_KEY]).astype(np.float32), pa.float32()),
            L.CAM_STAMPS_KEY: _fixed(np.stack(c[L.CAM_STAMPS_KEY]), pa.float64()),
            L.CAM_STALLED_KEY: _fixed(np.stack(c[L.CAM_STALLED_KEY]), pa.bool_()),
            L.STATE_STAMP_KEY: pa.array(c[L.STATE_STAMP_KEY], pa.float64()),
            L.NOMINAL_STAMP_KEY: pa.array(c[L.NOMINAL_STAMP_KEY], pa.float64()),
            L.CHUNK_ID_KEY: pa.array(c[L.CHUNK_ID_KEY], pa.int64()),
            L.LATENCY_KEY: pa.array(c[L.LATENCY_KEY], pa.float32()),
            "timestamp": pa.array(np.arange(n, dtype=np.float32) / np.float32(self.dataset.fps), pa.float32()),
            "frame_index": pa.array(np.arange(n), pa.int64()),
            "episode_index": pa.array(np.full(n, self.episode_index), pa.int64()),
            "index": pa.array(np.arange(first, first + n), pa.int64()),
            "task_index": pa.array(np.full(n, self.dataset.task_index(self.task)), pa.int64()),
        }
        return pa.table(cols)

    def stats(self, table: pa.Table) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for name in table.column_names:
            col = table.column(name).combine_chunks()
            if pa.types.is_fixed_size_list(col.type):
                arr = col.flatten().to_numpy(zero_copy_only=False).reshape(len(col), -1)
            else:
                arr = col.to_numpy(zero_copy_only=False).reshape(-1, 1)
            st = _Stats()
            st.add(arr.astype(np.float64))
            out[name] = st.as_dict()
        for v, st in self._img_stats.items():
            d = st.as_dict()
            out[L.image_key(v)] = {k: (np.asarray(val).reshape(-1, 1, 1).tolist() if k != "count" else val)
                                   for k, val in d.items()}
        return out


@dataclass
class _Saved:
    index: int
    length: int
    task: str
    stats: dict[str, Any] = field(default_factory=dict)


class DatasetWriter:
    """Creates or resumes a dataset at ``root`` and writes episodes into it, one at a time.

    ``commit_hook(step)`` is called between the steps of a save ("encoding", "encoded", "files",
    "a2w", "tasks", "episode", "info") so a caller can follow it; a test kills the process there.
    """

    def __init__(self, root: Path | str, views: Sequence[str], width: int, height: int, fps: int = 30,
                 robot_type: str = "a2w_dual_flexiv", video: VideoSettings | None = None,
                 joints_per_arm: int = 7, commit_hook: Callable[[str], None] | None = None) -> None:
        self.root = Path(root)
        self.views = tuple(views)
        self.width, self.height, self.fps = int(width), int(height), int(fps)
        if self.width % 2 or self.height % 2:
            raise DatasetError(f"image size {self.width}x{self.height} must be even (H.264 4:2:0)")
        self.robot_type = robot_type
        self.video = video or VideoSettings()
        self.joints_per_arm = joints_per_arm
        self.commit_hook = commit_hook
        self.features = L.build_features(self.views, self.width, self.height, self.fps,
                                         "h264", joints_per_arm)
        self.episodes: list[_Saved] = []
        self.tasks: dict[str, int] = {}
        self.current: EpisodeWriter | None = None
        self.recovered: list[str] = []  # what opening repaired, for the log and tests
        self.broken = ""  # why no further episode can be written (set by a failed save's rescan)
        make_dirs(self.root)
        self._lock_fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            raise DatasetError(f"{self.root}: another recorder has this dataset open") from None
        try:
            if L.is_dataset(self.root):
                self._resume()
            else:
                self._write_meta()
        except BaseException:
            self.close()  # release the lock: the caller may open it again with other settings
            raise

    # -- opening ---------------------------------------------------------------------------------

    def _resume(self) -> None:
        info = json.loads((self.root / L.INFO_PATH).read_text())
        if info.get("codebase_version") != L.CODEBASE_VERSION:
            raise DatasetError(f"{self.root}: codebase_version {info.get('codebase_version')!r}, "
                               f"this recorder writes {L.CODEBASE_VERSION}")
        if info.get("fps") != self.fps:
            raise DatasetError(f"{self.root}: recorded at {info.get('fps')} fps, not {self.fps}")
        theirs = {k: (f["dtype"], list(f["shape"])) for k, f in info.get("features", {}).items()}
        ours = {k: (f["dtype"], list(f["shape"])) for k, f in self.features.items()}
        if theirs != ours:
            diff = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
            raise DatasetError(f"{self.root}: features differ from this recorder's ({diff}); "
                               "record into a new directory")
        tasks_file = self.root / L.TASKS_PATH
        known_tasks: dict[str, int] = {}
        if tasks_file.exists():
            t = pq.read_table(tasks_file)
            names = t.column("task").to_pylist() if "task" in t.column_names else \
                t.column("__index_level_0__").to_pylist()
            known_tasks = dict(zip(names, t.column("task_index").to_pylist()))
        index = 0
        while True:
            ep_meta = self.root / L.episodes_path(index)
            ours_meta = self.root / L.a2w_episode_path(index)
            files = [self.root / L.data_path(index)] + [
                self.root / L.video_path(index, L.image_key(v)) for v in self.views]
            if not (ep_meta.exists() and ours_meta.exists() and all(f.exists() for f in files)):
                break
            row = pq.read_table(ep_meta).to_pylist()[0]
            extra = json.loads(ours_meta.read_text())
            task = row["tasks"][0]
            self.episodes.append(_Saved(index, int(row["length"]), task, extra.get("stats", {})))
            index += 1
        for t in {e.task for e in self.episodes}:
            if t not in known_tasks:
                known_tasks[t] = max(known_tasks.values(), default=-1) + 1
        self.tasks = known_tasks
        self._clean_after(index)
        if (info.get("total_episodes") != len(self.episodes)
                or info.get("total_frames") != self.total_frames or self.recovered):
            self.recovered.append(f"meta/info.json: {info.get('total_episodes')} -> {len(self.episodes)} "
                                  "episodes")
            self._write_meta()
        for r in self.recovered:
            log.warning("%s: recovered after an interrupted run: %s", self.root, r)

    def _rescan(self) -> None:
        """Re-read the saved episodes after a failed commit (the same repair as opening); if even
        that fails (the disk is still full), refuse further episodes until the dataset is reopened."""
        self.episodes, self.recovered = [], []
        try:
            self._resume()
        except (OSError, ValueError) as exc:
            self.broken = f"the dataset could not be re-read after a failed save ({exc}); reopen it"
            log.error("%s: %s", self.root, self.broken)

    def _clean_after(self, first: int) -> None:
        """Delete what an interrupted run left: staging, temporary files, episodes >= ``first``."""
        staging = self.root / L.STAGING_DIR
        if staging.exists():
            for p in sorted(staging.iterdir()):
                self.recovered.append(f"dropped unsaved {p.name}")
            shutil.rmtree(staging)
        for p in self.root.rglob(f"*{TMP_SUFFIX}"):
            self.recovered.append(f"removed temporary {p.relative_to(self.root)}")
            p.unlink()
        patterns = ["data/*/*.parquet", "meta/episodes/*/*.parquet", "meta/a2w/episodes/*.json"]
        patterns += [f"videos/{L.image_key(v)}/*/*.mp4" for v in self.views]
        for pat in patterns:
            for p in self.root.glob(pat):
                if self._index_of(p) >= first:
                    self.recovered.append(f"removed {p.relative_to(self.root)} of an unsaved episode")
                    p.unlink()
                    fsync_dir(p.parent)

    @staticmethod
    def _index_of(p: Path) -> int:
        if p.suffix == ".json":
            return int(p.stem.split("_")[-1])
        chunk = int(p.parent.name.split("-")[-1])
        return chunk * L.CHUNKS_SIZE + int(p.stem.split("-")[-1])

    # -- metadata ----------------------------------------------------------------------------------

    @property
    def total_frames(self) -> int:
        return sum(e.length for e in self.episodes)

    def task_index(self, task: str) -> int:
        if task not in self.tasks:
            self.tasks[task] = max(self.tasks.values(), default=-1) + 1
        return self.tasks[task]

    def _tasks_bytes(self) -> bytes:
        names = sorted(self.tasks, key=self.tasks.get)
        table = pa.table({"task_index": pa.array([self.tasks[t] for t in names], pa.int64()),
                          "task": pa.array(names, pa.string())})
        # pandas metadata makes "task" the index when read with pandas, as LeRobot's own
        # tasks.parquet does (written here without pandas, which .venv does not have)
        buf = io.BytesIO()
        pq.write_table(table.replace_schema_metadata({b"pandas": json.dumps({
            "index_columns": ["task"], "column_indexes": [],
            "columns": [{"name": "task_index", "field_name": "task_index", "pandas_type": "int64",
                         "numpy_type": "int64", "metadata": None},
                        {"name": "task", "field_name": "task", "pandas_type": "unicode",
                         "numpy_type": "object", "metadata": None}],
            "pandas_version": "2.2.3"}).encode()}), buf)
        return buf.getvalue()

    def _write_meta(self) -> None:
        info = L.build_info(self.features, self.fps, self.robot_type, len(self.episodes),
                            self.total_frames, len(self.tasks))
        atomic_write(self.root / L.A2W_META_PATH, json.dumps({
            "format": A2W_FORMAT, "views": list(self.views), "width": self.width, "height": self.height,
            "fps": self.fps, "video": self.video.__dict__, "layout": "one data file and one video "
            "file per camera per episode; episodes staged under .staging and committed atomically",
        }, indent=2).encode())
        atomic_write(self.root / L.TASKS_PATH, self._tasks_bytes())
        stats = aggregate_stats([e.stats for e in self.episodes if e.stats])
        if stats:
            atomic_write(self.root / L.STATS_PATH, json.dumps(stats).encode())
        # info.json last: LeRobot counts episodes by it, so it never names one whose files are not
        # all in place (a save that fails before this line is rolled back, see _commit)
        atomic_write(self.root / L.INFO_PATH, json.dumps(info, indent=4).encode())

    # -- episodes ----------------------------------------------------------------------------------

    def begin_episode(self, task: str, seed: int | None = None,
                      extra: Mapping[str, Any] | None = None) -> EpisodeWriter:
        if self.current is not None:
            raise EpisodeFailed(f"episode {self.current.episode_index} is still recording")
        if self.broken:
            raise DatasetError(f"{self.root}: {self.broken}")
        if not isinstance(task, str) or not task.strip():
            raise ValueError("task: every episode needs its task instruction")
        self.current = EpisodeWriter(self, len(self.episodes), task, seed, extra)
        return self.current

    def _episode_closed(self, ep: EpisodeWriter) -> None:
        if self.current is ep:
            self.current = None

    def _hook(self, step: str) -> None:
        if self.commit_hook is not None:
            self.commit_hook(step)

    def _commit(self, ep: EpisodeWriter, table: pa.Table) -> EpisodeSummary:
        """Steps 1-5 of the module docstring. If a step fails (a full disk), what the earlier steps
        put in place is removed again: ``save`` then either returned (the episode is saved and
        counted in info.json) or raised (it is not in the dataset). Only a crash can stop between
        the two, and opening the dataset resolves that (step 4 done: saved; otherwise: dropped)."""
        placed: list[Path] = []
        counted = len(self.episodes)
        try:
            return self._commit_steps(ep, table, placed)
        except BaseException:
            if not placed:  # info.json already counts the episode: it is saved, nothing to undo
                raise
            del self.episodes[counted:]
            for p in reversed(placed):
                try:
                    p.unlink(missing_ok=True)
                    fsync_dir(p.parent)
                except OSError as exc:  # the next open removes it
                    log.error("%s: could not roll back %s: %s", self.root, p, exc)
            raise

    def _commit_steps(self, ep: EpisodeWriter, table: pa.Table, placed: list[Path]) -> EpisodeSummary:
        i, n = ep.episode_index, ep.length
        first = self.total_frames
        size = 0
        # 1. the episode's own files, under their final names (nothing refers to them yet)
        placed.append(self.root / L.data_path(i))
        durable_move(ep.staging / "data.parquet", placed[-1])
        size += placed[-1].stat().st_size
        for v in self.views:
            dst = self.root / L.video_path(i, L.image_key(v))
            placed.append(dst)
            durable_move(ep.staging / f"{v}.mp4", dst)
            size += dst.stat().st_size
        self._hook("files")
        # 2. our metadata and the episode's log
        stats = ep.stats(table)
        enc = {v: {"high_water": s.high_water, "queue_size": self.video.queue_size, "waits": s.waits,
                   "wait_s": round(s.wait_s, 6), "max_wait_s": round(s.max_wait_s, 6),
                   "encode_s": round(s.encode_s, 6)} for v, s in ep.encoder_stats().items()}
        cam = table.column(L.CAM_STAMPS_KEY).combine_chunks().flatten().to_numpy().reshape(n, -1)
        nominal = table.column(L.NOMINAL_STAMP_KEY).to_numpy()
        ours = {
            "format": A2W_FORMAT, "episode_index": i, "task": ep.task, "seed": ep.seed, "length": n,
            "started_wall": ep.started_wall, "saved_wall": time.time(),
            "t0": ep.t0, "first_stamp": ep.t0 + float(nominal[0]), "last_stamp": ep.t0 + float(nominal[-1]),
            "stalled_frames": ep.stalled, "refused_rows": ep.refused, "encoder": enc,
            "encoder_waits": sum(s["waits"] for s in enc.values()),
            "camera_offset_ms": {v: {"max_abs": float(np.max(np.abs(cam[:, k] - nominal)) * 1e3)}
                                 for k, v in enumerate(self.views)},
            "extra": ep.extra, "log": ep.log_lines, "log_suppressed": ep.log_suppressed, "stats": stats,
        }
        placed.append(self.root / L.a2w_episode_path(i))
        atomic_write(placed[-1], json.dumps(ours, indent=1).encode())
        self._hook("a2w")
        # 3. tasks (a superset of what the saved episodes use)
        self.task_index(ep.task)
        atomic_write(self.root / L.TASKS_PATH, self._tasks_bytes())
        self._hook("tasks")
        # 4. the episode's LeRobot metadata: from here on the episode exists
        cf = L.chunk_file(i)
        row: dict[str, Any] = {
            "episode_index": i, "tasks": [ep.task], "length": n,
            "data/chunk_index": cf["chunk_index"], "data/file_index": cf["file_index"],
            "dataset_from_index": first, "dataset_to_index": first + n,
        }
        for v in self.views:
            k = L.image_key(v)
            row.update({f"videos/{k}/chunk_index": cf["chunk_index"], f"videos/{k}/file_index": cf["file_index"],
                        f"videos/{k}/from_timestamp": 0.0, f"videos/{k}/to_timestamp": n / self.fps})
        row.update({"meta/episodes/chunk_index": cf["chunk_index"], "meta/episodes/file_index": cf["file_index"]})
        schema = pa.schema([(k, pa.list_(pa.string()) if k == "tasks" else
                             pa.float64() if k.endswith("_timestamp") else pa.int64()) for k in row])
        buf = io.BytesIO()
        pq.write_table(pa.Table.from_pylist([row], schema=schema), buf)
        placed.append(self.root / L.episodes_path(i))
        atomic_write(placed[-1], buf.getvalue())
        self._hook("episode")
        # 5. LeRobot's totals and stats: its loader counts the episode from here on
        self.episodes.append(_Saved(i, n, ep.task, stats))
        self._write_meta()
        placed.clear()  # committed: from here on nothing is rolled back
        self._hook("info")
        ep.remove_staging()
        ep.state = "saved"
        self._episode_closed(ep)
        summary = EpisodeSummary(i, n, ep.task, n / self.fps, size, dict(ep.stalled), ep.refused,
                                 enc)
        log.info("episode %d saved: %d rows (%.1f s), %.1f MB, task %r", i, n, n / self.fps,
                 size / 1e6, ep.task)
        return summary

    def close(self) -> None:
        if self.current is not None:
            self.current.discard("the recorder closed")
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def __enter__(self) -> "DatasetWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
