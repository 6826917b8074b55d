"""`a2w shadow calibrate`: recorded episodes replayed through the shadow's windows, thresholds stored
where the node reads them, and clear refusals."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from a2w.shadow.alarm import Thresholds
from a2w.shadow.calibrate import calibrate, episode_windows
from a2w.shadow.motion import actions_10hz
from tests.record.support import write_episodes
from tests.shadow.support import tiny_worldmodel

ROOT = Path(__file__).resolve().parents[2]


def test_episode_windows_follow_the_nodes_keyframes_and_actions() -> None:
    n = 150
    rng = np.random.default_rng(0)
    state = np.zeros((n, 16))
    state[:, [6, 14]] = 1.0  # unit quaternions
    state[:, [0, 8]] = np.cumsum(rng.normal(0, 1e-3, (n, 2)), axis=0)
    frames = {"front": np.arange(n)[:, None, None, None] * np.ones((1, 16, 16, 3), np.uint8)}
    wins = episode_windows(frames, state)
    assert [w.index for w in wins] == [0, 1]  # 150 rows: two full 61-row windows
    assert [k.frames["front"][0, 0, 0] for k in wins[1].keys] == list(range(60, 121, 3))
    assert np.allclose(wins[1].actions, actions_10hz(state[60:121].reshape(-1, 2, 8)))
    # overlapping: a window every 5 keyframes (15 rows), each still 61 rows, the history moving on by 5
    over = episode_windows(frames, state, stride=5)
    assert [w.keys[0].frames["front"][0, 0, 0] for w in over] == [0, 15, 30, 45, 60, 75]
    assert all(w.advance == 5 and len(w.keys) == 21 for w in over)
    assert np.allclose(over[3].actions, actions_10hz(state[45:106].reshape(-1, 2, 8)))


def _calibrate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "a2w.cli", "shadow", "calibrate", *args], capture_output=True,
                          text=True, timeout=600, cwd=ROOT)


def test_calibrate_writes_the_thresholds_the_node_reads(tmp_path: Path) -> None:
    ckpt = tiny_worldmodel(tmp_path / "wm")
    ds = tmp_path / "nominal"
    write_episodes(ds, [130] * 4)
    proc = _calibrate("--checkpoint", str(ckpt), "--dataset", str(ds), "--warn-alpha", "0.2", "--alarm-alpha", "0.12",
                      "--steps", "1", "--views", "front")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # 130 rows = 44 keyframes: windows start at keyframes 0, 5, .., 20 (the node's default stride)
    assert "20 windows of 4 episodes" in proc.stdout, proc.stdout
    t = Thresholds.load(ckpt / "shadow_thresholds.json")
    assert 0 < t.warn <= t.alarm and t.n == 20 and (t.warn_alpha, t.alarm_alpha) == (0.2, 0.12)
    assert json.loads((ckpt / "shadow_thresholds.json").read_text())["n"] == 20


@pytest.mark.parametrize("extra, words", [
    (["--warn-alpha", "0.01"], "cannot give a false-alarm rate of 0.01"),
    (["--warn-alpha", "1.5"], "alpha must be in (0, 1)"),
])
def test_calibrate_refuses_what_cannot_be_calibrated(tmp_path: Path, extra: list, words: str) -> None:
    ckpt = tiny_worldmodel(tmp_path / "wm")
    ds = tmp_path / "nominal"
    write_episodes(ds, [70])
    proc = _calibrate("--checkpoint", str(ckpt), "--dataset", str(ds), "--steps", "1", "--views", "front", *extra)
    assert proc.returncode == 2 and words in proc.stderr, proc.stderr
    proc = _calibrate("--checkpoint", str(ckpt), "--dataset", str(tmp_path / "none"), "--steps", "1")
    assert proc.returncode == 2 and "none" in proc.stderr, proc.stderr


@pytest.mark.parametrize("warn_alpha, alarm_alpha, words", [
    (0.1, 0.02, "of 0.02: need at least 49"),   # the default ALARM rate from a few episodes
    (0.01, 0.2, "of 0.01: need at least 99"),
    (0.2, 1.0, "alpha must be in (0, 1)"),
])
def test_too_few_windows_fail_before_any_is_scored(warn_alpha: float, alarm_alpha: float, words: str) -> None:
    frames = {"front": np.zeros((150, 8, 8, 3), np.uint8)}
    state = np.tile(np.array([0.4, 0, 0.3, 1, 0, 0, 0, 1.0]), (150, 2))
    made = []

    def factory():  # noqa: ANN202 - never reached: scoring a window takes seconds on a real model
        made.append(1)
        raise AssertionError("a predictor was built")

    with pytest.raises(ValueError, match=re.escape(words)):
        calibrate(factory, [(frames, state)] * 10, warn_alpha, alarm_alpha)  # 20 windows
    assert not made
