"""Open a recorded dataset with LeRobot's own loader and report what it sees (runs in the LeRobot
venv, build/lerobot-venv, Python 3.12: ``python tests/record/lerobot_check.py ROOT OUT.json``).

It checks nothing itself: it reports the loader's view (lengths, features, per-row timestamps and
indices, every row's decoded frames as uint8 in an .npz beside OUT.json) and the pytest side
compares that with what was recorded. Any exception is the loader refusing the dataset. Several
``ROOT OUT.json`` pairs share one process (importing torch and LeRobot takes seconds).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def main(root: str, out: str) -> None:
    from lerobot.datasets.lerobot_dataset import CODEBASE_VERSION, LeRobotDataset

    ds = LeRobotDataset("a2w/recorded", root=root, video_backend="pyav", return_uint8=True)
    report: dict = {
        "codebase_version": CODEBASE_VERSION,
        "len": len(ds),
        "num_episodes": ds.num_episodes,
        "fps": ds.fps,
        "features": {k: {"dtype": v["dtype"], "shape": list(v["shape"])} for k, v in ds.features.items()},
        "video_keys": list(ds.meta.video_keys),
        "tasks": list(ds.meta.tasks.index) if ds.meta.tasks is not None else [],
        "rows": [],
    }
    frames: dict[str, list[np.ndarray]] = {k: [] for k in ds.meta.video_keys}
    for i in range(len(ds)):
        item = ds[i]
        report["rows"].append({
            "index": int(item["index"]), "episode_index": int(item["episode_index"]),
            "frame_index": int(item["frame_index"]), "timestamp": float(item["timestamp"]),
            "task": item["task"], "state": item["observation.state"].tolist(),
            "action": item["action"].tolist(),
            "camera_stalled": [bool(x) for x in item["observation.camera_stalled"]],
            "camera_stamps": item["observation.camera_stamps"].tolist(),
        })
        for k in ds.meta.video_keys:
            frames[k].append(item[k].permute(1, 2, 0).numpy().astype(np.uint8))
    np.savez(Path(out).with_suffix(".npz"), **{k: np.stack(v) for k, v in frames.items() if v})
    Path(out).write_text(json.dumps(report))


if __name__ == "__main__":
    args = sys.argv[1:]
    for i in range(0, len(args), 2):
        main(args[i], args[i + 1])
