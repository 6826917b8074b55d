"""Training data from LeRobot v3 datasets: the recorder's layout, or any v3 dataset with its features.

Needed features: one ``observation.images.<view>`` video per requested view, ``observation.state``
(16: per arm x y z qx qy qz qw gripper_open) and either ``action.target`` (16, the commanded pose
due one row later, as the recorder writes it) or ``action`` (14-D A2World deltas). Frames are
decoded with PyAV and resized as the policy engine resizes camera images
(``a2world.policy.engine.resize_view``, INTER_AREA), one frame per 30 Hz row.

Action chunks follow ``a2w.actions.compose_chunk``: for an observation at row t, step i is due one
period after row t+i, and step 0 moves from the measured pose at t. So the chunk is
``encode_dual([state_t, target_t, ..., target_{t+H-1}])``. A dataset without ``action.target``
falls back to its recorded deltas ``action[t+1 .. t+H]`` (the recorder's row k+1 action is
target_k -> target_{k+1}; its first step then starts from the previous target, not the measured pose).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa

from a2w.actions import encode_dual
from a2w.dataset import Dataset, DatasetReadError
from a2w.msgs.cameras import VIEW_IDS, VIEW_NAMES
from a2w.record import layout as L

log = logging.getLogger(__name__)

STATE_DIM, ACTION_DIM = 16, 14


MOTION_THRESHOLD_M = 0.005  # above the controller's settling jitter, below any deliberate motion


class TrainDataError(ValueError):
    """A dataset that cannot be trained on, said in one line."""


@dataclass(frozen=True)
class DataConfig:
    image_size: tuple[int, int] = (64, 64)  # (H, W) the models see
    views: tuple[str, ...] = VIEW_NAMES
    max_episodes: int | None = None  # per dataset, the first ones (None: all)
    clip_stride: int = 3  # rows between consecutive policy samples (training clips' first frames)
    # Draw weight of policy clips that start before the arms first move. There the policy takes its
    # first decision (which arm, where to) from the cameras alone, and such clips are a few per episode.
    rest_weight: float = 1.0

    def __post_init__(self) -> None:
        h, w = self.image_size
        if h < 16 or w < 16 or h % 16 or w % 16:
            raise ValueError(f"data.image_size must be multiples of 16 (tokenizer 8 × patch 2), got {self.image_size}")
        unknown = [v for v in self.views if v not in VIEW_IDS]
        if not self.views or unknown or len(set(self.views)) != len(self.views):
            raise ValueError(f"data.views must be distinct names among {list(VIEW_NAMES)}, got {list(self.views)}")
        if self.max_episodes is not None and self.max_episodes < 1:
            raise ValueError(f"data.max_episodes must be >= 1 or null, got {self.max_episodes}")
        if self.clip_stride < 1:
            raise ValueError(f"data.clip_stride must be >= 1, got {self.clip_stride}")
        if not (math.isfinite(self.rest_weight) and self.rest_weight > 0):
            raise ValueError(f"data.rest_weight must be a finite number > 0, got {self.rest_weight}")

    @property
    def view_ids(self) -> tuple[int, ...]:
        return tuple(VIEW_IDS[v] for v in self.views)


@dataclass
class Episode:
    dataset: str
    index: int
    instruction: str
    seed: int | None
    frames: dict[str, np.ndarray]  # view -> (N, H, W, 3) uint8 at the training size
    state: np.ndarray  # (N, 16)
    target: np.ndarray | None  # (N, 16), None when the dataset has no action.target
    action: np.ndarray | None  # (N, 14) recorded deltas, None when absent
    meta: dict = field(default_factory=dict)

    @property
    def length(self) -> int:
        return len(self.state)

    def action_chunk(self, start: int, horizon: int) -> np.ndarray:
        """(horizon, 14) deltas for an observation at row ``start`` (module docstring)."""
        if self.target is not None:
            poses = np.concatenate([self.state[start:start + 1], self.target[start:start + horizon]])
            return encode_dual(poses.reshape(-1, 2, 8)).astype(np.float32)
        assert self.action is not None
        return self.action[start + 1:start + 1 + horizon].astype(np.float32)

    def last_start(self, horizon: int) -> int:
        """Last row that has a full chunk (and a frame ``horizon`` rows later)."""
        return self.length - 1 - horizon

    def motion_onset(self, threshold: float = MOTION_THRESHOLD_M) -> int:
        """First row where a TCP is more than ``threshold`` m from where it was at row 0 (the length
        when the arms never move)."""
        tcp = self.state.reshape(len(self.state), 2, 8)[:, :, :3]
        moved = np.linalg.norm(tcp - tcp[:1], axis=-1).max(axis=1) > threshold
        return int(np.argmax(moved)) if moved.any() else self.length


def _column(table: pa.Table, key: str, width: int) -> np.ndarray:
    col = table.column(key).combine_chunks()
    flat = col.flatten().to_numpy(zero_copy_only=False) if pa.types.is_fixed_size_list(col.type) else \
        np.stack(col.to_pylist())
    return np.asarray(flat, dtype=np.float64).reshape(table.num_rows, width)


def open_dataset(root: str | Path) -> Dataset:
    root = Path(root)
    if not root.exists():
        raise TrainDataError(f"dataset {root} does not exist")
    try:
        return Dataset(root)
    except (DatasetReadError, OSError, ValueError, KeyError) as exc:
        raise TrainDataError(f"dataset {root}: {str(exc).splitlines()[0]}") from None


def check_features(ds: Dataset, cfg: DataConfig, need_actions: bool) -> None:
    """TrainDataError naming every missing or mis-shaped feature."""
    f = ds.features
    problems = []
    for v in cfg.views:
        key = L.image_key(v)
        if key not in f or f[key].get("dtype") != "video":
            problems.append(f"no video feature {key}")
    if need_actions:
        def width(key: str) -> int | None:
            return int(f[key]["shape"][0]) if key in f and f[key].get("shape") else None

        if width(L.STATE_KEY) != STATE_DIM:
            problems.append(f"{L.STATE_KEY} must be {STATE_DIM}-D (x y z qx qy qz qw gripper per arm), "
                            f"got {width(L.STATE_KEY)}")
        tw, aw = width(L.TARGET_KEY), width(L.ACTION_KEY)
        if tw != STATE_DIM and aw != ACTION_DIM:
            problems.append(f"needs {L.TARGET_KEY} ({STATE_DIM}-D) or {L.ACTION_KEY} ({ACTION_DIM}-D A2World deltas), "
                            f"got {tw} and {aw}")
    if ds.fps != 30:
        problems.append(f"fps {ds.fps}; the models' 30 Hz action grid needs 30")
    if problems:
        raise TrainDataError(f"dataset {ds.root}: features do not match: {'; '.join(problems)}")


def fingerprint(ds: Dataset, episodes: Sequence[int]) -> str:
    """Changes when the dataset's content does (episodes appended or rewritten)."""
    h = hashlib.sha256((ds.root / L.INFO_PATH).read_bytes())
    h.update(json.dumps([ds.episodes[i] for i in episodes], sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def load_episodes(root: str | Path, cfg: DataConfig, need_actions: bool = True) -> tuple[list[Episode], str]:
    """Decoded, resized episodes of one dataset and its fingerprint."""
    from a2world.policy.engine import resize_view

    ds = open_dataset(root)
    if not ds.episodes:
        raise TrainDataError(f"dataset {ds.root} has no episodes")
    check_features(ds, cfg, need_actions)
    chosen = list(range(len(ds.episodes)))[: cfg.max_episodes]
    h, w = cfg.image_size
    out: list[Episode] = []
    for i in chosen:
        ep = ds.episodes[i]
        table = ds.data(ep)
        n = table.num_rows
        frames: dict[str, np.ndarray] = {}
        where = f"dataset {ds.root} episode {ep['episode_index']}"
        for v in cfg.views:
            key = L.image_key(v)
            try:
                seq = [resize_view(fr, (h, w)) for fr in ds.frames(ep, key)]
            except Exception as exc:  # noqa: BLE001 - any decoder error is a broken video
                raise TrainDataError(f"{where}: {key} unreadable: {exc}") from None
            if len(seq) != n:
                raise TrainDataError(f"{where}: {key} has {len(seq)} frames for {n} rows "
                                     "(run `a2w dataset validate`)")
            frames[v] = np.stack(seq)
        cols = set(table.column_names)
        state = _column(table, L.STATE_KEY, STATE_DIM) if need_actions else np.zeros((n, STATE_DIM))
        target = _column(table, L.TARGET_KEY, STATE_DIM) if need_actions and L.TARGET_KEY in cols else None
        action = _column(table, L.ACTION_KEY, ACTION_DIM) if need_actions and L.ACTION_KEY in cols else None
        for name, arr in (("state", state), ("target", target), ("action", action)):
            if arr is not None and not np.isfinite(arr).all():
                raise TrainDataError(f"dataset {ds.root} episode {ep['episode_index']}: {name} is not finite")
        tasks = ep.get("tasks") or []
        meta = ds.episode_meta(ep["episode_index"])
        out.append(Episode(str(ds.root), int(ep["episode_index"]), str(tasks[0]) if tasks else "",
                           meta.get("seed"), frames, state, target, action, meta))
    log.info("dataset %s: %d episodes, %d rows, views %s at %dx%d", ds.root, len(out),
             sum(e.length for e in out), list(cfg.views), w, h)
    return out, fingerprint(ds, chosen)
