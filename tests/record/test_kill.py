"""Crash durability (issue 15 item 4): the recorder process is killed with SIGKILL at random
moments while recording and encoding, and at every step of a commit. After each kill every
episode it reported saved is in the dataset frame for frame, the dataset validates and LeRobot's
loader opens it, and the next run resumes right after the last saved episode."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from a2w.dataset import Dataset, validate
from tests.record.frames import VIEWS
from tests.record.support import assert_frames_match, check_with_own_reader, lerobot_views

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
COMMIT_STEPS = ("encoding", "encoded", "files", "a2w", "tasks", "episode", "info")
RANDOM_KILLS = 6


def _child(root: Path, progress: Path, *args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return subprocess.Popen([sys.executable, str(HERE / "record_child.py"), str(root), str(progress), *args],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _saved(progress: Path) -> dict[int, int]:
    if not progress.exists():
        return {}
    return {int(a): int(b) for a, b in (line.split() for line in progress.read_text().splitlines())}


def test_sigkill_at_any_moment_loses_at_most_the_episode_in_progress(tmp_path: Path, lerobot_python: str) -> None:
    root, progress = tmp_path / "ds", tmp_path / "progress.txt"
    rng = random.Random(15)
    kills: list[tuple[str, str]] = [("step", s) for s in COMMIT_STEPS] + [("time", "")] * RANDOM_KILLS
    rng.shuffle(kills)
    snapshots: list[Path] = []
    reported: dict[int, int] = {}
    for k, (kind, step) in enumerate(kills):
        before = len(Dataset(root).episodes) if root.exists() else 0
        if kind == "step":
            proc = _child(root, progress, "--kill-at", step)
            _, err = proc.communicate(timeout=120)
        else:
            proc = _child(root, progress)
            time.sleep(rng.uniform(1.0, 4.0))  # the child imports for about a second, then records
            proc.send_signal(signal.SIGKILL)
            _, err = proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL, f"kill {k} ({kind} {step}): exit {proc.returncode}\n{err}"
        reported.update(_saved(progress))
        # everything the recorder reported saved is there, frame by frame, before any repair
        assert validate(root) == [], f"kill {k} ({kind} {step})"
        check_with_own_reader(root, reported)
        ds = Dataset(root)
        committed = {e["episode_index"]: e["length"] for e in ds.episodes}
        if kind == "step":
            # a kill before step "episode" loses the episode in progress; from there on it is saved
            gained = len(committed) - before
            assert gained == (1 if COMMIT_STEPS.index(step) >= COMMIT_STEPS.index("episode") else 0), \
                f"kill at {step}: {gained} episodes gained"
        if committed:  # LeRobot cannot open a dataset without episodes (nor one its own writer made)
            snap = tmp_path / f"snap{k:02d}"
            shutil.copytree(root, snap)
            snapshots.append(snap)
    assert len(kills) >= 10 and len(snapshots) >= 8
    # the next run resumes after the last saved episode and appends
    had = len(Dataset(root).episodes)
    proc = _child(root, progress, "--episodes", "2")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    reported.update(_saved(progress))
    ds = Dataset(root)
    assert [e["episode_index"] for e in ds.episodes] == list(range(had + 2))
    assert ds.info["total_episodes"] == had + 2
    assert not (root / ".staging").exists() and not list(root.rglob("*.a2w-tmp"))
    assert validate(root) == []
    check_with_own_reader(root, {e["episode_index"]: e["length"] for e in ds.episodes})
    assert set(reported) <= {e["episode_index"] for e in ds.episodes}

    # LeRobot's own loader opens every state the kills left, and the final one, frame for frame
    views = lerobot_views(lerobot_python, snapshots + [root], tmp_path)
    for snap, (report, frames) in zip(snapshots + [root], views):
        meta = Dataset(snap)
        counted = meta.episodes[:meta.info["total_episodes"]]
        assert report["num_episodes"] == len(counted) and report["len"] == sum(e["length"] for e in counted)
        start = 0
        for e in counted:
            i, n = e["episode_index"], e["length"]
            rows = report["rows"][start:start + n]
            assert [r["episode_index"] for r in rows] == [i] * n
            np.testing.assert_allclose([r["timestamp"] for r in rows], np.arange(n) / 30, atol=1e-6)
            for v_i, v in enumerate(VIEWS):
                assert_frames_match(frames[f"observation.images.{v}"][start:start + n], i, list(range(n)), v_i,
                                    f"LeRobot {snap.name} episode {i} {v}")
            start += n
