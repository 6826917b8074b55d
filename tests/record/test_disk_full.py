"""A full disk ends the episode in progress with a clear error and leaves the saved episodes
intact and the dataset openable (issue 15, tests). The dataset lives on a small tmpfs mounted in
a private mount namespace of the test's own child process, so nothing else sees it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from a2w.dataset import Dataset, validate
from a2w.record.writer import DatasetWriter
from tests.record.frames import VIEWS, H, W
from tests.record.support import check_with_own_reader, lerobot_view, write_episodes

HERE = Path(__file__).parent
ROOT = HERE.parents[1]


def _can_mount_private_tmpfs(where: Path) -> str:
    if not shutil.which("unshare"):
        return "no unshare(1)"
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                            f"mount -t tmpfs -o size=64k tmpfs '{where}'"], capture_output=True, text=True)
    return "" if probe.returncode == 0 else f"cannot mount a tmpfs in a private mount namespace: {probe.stderr}"


@pytest.mark.parametrize("size_kb", [300, 520, 700])  # the disk fills while encoding, then while committing
def test_disk_full_ends_the_episode_with_a_clear_error_and_keeps_the_saved_ones(
        tmp_path: Path, size_kb: int, lerobot_python: str) -> None:
    mnt, copy = tmp_path / "mnt", tmp_path / "copy"
    mnt.mkdir()
    why = _can_mount_private_tmpfs(mnt)
    if why:
        pytest.skip(why)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    script = (f"mount -t tmpfs -o size={size_kb}k tmpfs '{mnt}' && "
              f"exec '{sys.executable}' '{HERE / 'disk_full_child.py'}' '{mnt / 'ds'}' '{copy}'")
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    saved = {int(k): v for k, v in report["saved"].items()}
    assert saved, "the tmpfs filled before the first episode; make it larger"
    assert report["failed_at"] == len(saved)
    assert "disk full" in report["error"] and "No space left on device" in report["error"], report["error"]
    assert any("disk full" in line for line in report["log"])
    # the saved episodes are intact and the dataset opens (LeRobot included) and resumes
    assert validate(copy) == []
    check_with_own_reader(copy, saved)
    ds = Dataset(copy)
    assert [e["episode_index"] for e in ds.episodes] == sorted(saved)
    assert not list(copy.rglob("*.a2w-tmp"))
    report_lr, _ = lerobot_view(lerobot_python, copy, tmp_path)
    assert report_lr["num_episodes"] == len(saved)
    with DatasetWriter(copy, VIEWS, W, H) as w:
        assert len(w.episodes) == len(saved)
    write_episodes(copy, [20])
    check_with_own_reader(copy, {**saved, len(saved): 20})
