"""The dataset on disk: stock LeRobot v3.0, one data file and one MP4 per camera per episode.

LeRobot's own writer packs many episodes into each file and rewrites them; we give every episode
its own files (``file_index`` = episode number within its chunk), which LeRobot reads unchanged
and which a crash can never tear: a committed file is never opened for writing again.

Our own metadata (seeds, capture-stamp statistics, stalls, encoder back-pressure, refused rows,
the episode log) lives under ``meta/a2w/``: LeRobot ignores it and drops unknown ``info.json`` keys
when it rewrites that file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000  # files per chunk directory (LeRobot's default)
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
A2W_META_PATH = "meta/a2w/dataset.json"
A2W_EPISODE_PATH = "meta/a2w/episodes/episode_{episode_index:06d}.json"
STAGING_DIR = ".staging"  # in-progress episodes; removed whole on the next open

IMAGE_PREFIX = "observation.images."
STATE_KEY = "observation.state"
JOINTS_KEY = "observation.joint_positions"
ACTION_KEY = "action"
TARGET_KEY = "action.target"
CAM_STAMPS_KEY = "observation.camera_stamps"
CAM_STALLED_KEY = "observation.camera_stalled"
STATE_STAMP_KEY = "observation.state_stamp"
NOMINAL_STAMP_KEY = "stamp"
CHUNK_ID_KEY = "policy.chunk_id"
LATENCY_KEY = "policy.latency"
# Stamp columns (camera_stamps, state_stamp, stamp) are seconds since the episode's first row,
# whose absolute stamp is "t0" in meta/a2w/episodes/episode_NNNNNN.json.
DEFAULT_KEYS = ("timestamp", "frame_index", "episode_index", "index", "task_index")

ARMS = ("left", "right")
POSE8 = ("x", "y", "z", "qx", "qy", "qz", "qw", "gripper_open")
DELTA7 = ("dx", "dy", "dz", "droll", "dpitch", "dyaw", "gripper_open")


def chunk_file(episode_index: int) -> dict[str, int]:
    return {"chunk_index": episode_index // CHUNKS_SIZE, "file_index": episode_index % CHUNKS_SIZE}


def data_path(episode_index: int) -> str:
    return DATA_PATH.format(**chunk_file(episode_index))


def video_path(episode_index: int, key: str) -> str:
    return VIDEO_PATH.format(video_key=key, **chunk_file(episode_index))


def episodes_path(episode_index: int) -> str:
    return EPISODES_PATH.format(**chunk_file(episode_index))


def a2w_episode_path(episode_index: int) -> str:
    return A2W_EPISODE_PATH.format(episode_index=episode_index)


def image_key(view: str) -> str:
    return IMAGE_PREFIX + view


def _f(dtype: str, names: Sequence[str] | None, n: int | None = None) -> dict[str, Any]:
    shape = [n if n is not None else len(names or ())]
    return {"dtype": dtype, "shape": shape, "names": list(names) if names is not None else None}


def build_features(views: Sequence[str], width: int, height: int, fps: int, codec: str,
                   joints_per_arm: int = 7) -> dict[str, dict[str, Any]]:
    """The rig's features, in LeRobot's ``info.json`` form (see the README's recorder section)."""
    feats: dict[str, dict[str, Any]] = {}
    for v in views:
        feats[image_key(v)] = {
            "dtype": "video", "shape": [height, width, 3], "names": ["height", "width", "channels"],
            "info": {"video.height": height, "video.width": width, "video.codec": codec,
                     "video.pix_fmt": "yuv420p", "video.is_depth_map": False, "video.fps": fps,
                     "video.channels": 3, "has_audio": False},
        }
    feats[STATE_KEY] = _f("float32", [f"{a}_{n}" for a in ARMS for n in POSE8])
    feats[JOINTS_KEY] = _f("float32", [f"{a}_joint{j + 1}" for a in ARMS for j in range(joints_per_arm)])
    feats[ACTION_KEY] = _f("float32", [f"{a}_{n}" for a in ARMS for n in DELTA7])
    feats[TARGET_KEY] = _f("float32", [f"{a}_{n}" for a in ARMS for n in POSE8])
    feats[CAM_STAMPS_KEY] = _f("float64", list(views))
    feats[CAM_STALLED_KEY] = _f("bool", list(views))
    feats[STATE_STAMP_KEY] = _f("float64", None, 1)
    feats[NOMINAL_STAMP_KEY] = _f("float64", None, 1)
    feats[CHUNK_ID_KEY] = _f("int64", None, 1)
    feats[LATENCY_KEY] = _f("float32", None, 1)
    feats["timestamp"] = _f("float32", None, 1)
    for k in ("frame_index", "episode_index", "index", "task_index"):
        feats[k] = _f("int64", None, 1)
    return feats


def video_keys(features: dict[str, dict[str, Any]]) -> list[str]:
    return [k for k, f in features.items() if f["dtype"] == "video"]


def build_info(features: dict[str, dict[str, Any]], fps: int, robot_type: str, total_episodes: int,
               total_frames: int, total_tasks: int) -> dict[str, Any]:
    return {
        "codebase_version": CODEBASE_VERSION, "robot_type": robot_type, "fps": fps,
        "total_episodes": total_episodes, "total_frames": total_frames, "total_tasks": total_tasks,
        "chunks_size": CHUNKS_SIZE, "data_files_size_in_mb": 100, "video_files_size_in_mb": 200,
        "data_path": DATA_PATH, "video_path": VIDEO_PATH,
        "splits": {"train": f"0:{total_episodes}"} if total_episodes else {},
        "features": features,
    }


def is_dataset(root: Path) -> bool:
    return (root / INFO_PATH).is_file()
