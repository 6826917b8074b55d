"""`a2w eval policy`: the closed loop through the sim stack, its report, and the training-seed guard."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av
import pytest

from a2w.evaluation.policy import wilson_interval
from a2w.evaluation.report import write_report
from tests.policy.stack import tiny_checkpoint
from tests.record.support import write_episodes

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("k, n, lo, hi", [(0, 20, 0.0, 0.161), (20, 20, 0.839, 1.0), (16, 20, 0.584, 0.919),
                                          (1, 2, 0.095, 0.905)])
def test_wilson_interval_matches_the_textbook_values(k: int, n: int, lo: float, hi: float) -> None:
    got = wilson_interval(k, n)
    assert got == pytest.approx((lo, hi), abs=1e-3)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def _eval(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "a2w.cli", "eval", "policy", *args], capture_output=True,
                          text=True, timeout=600, cwd=ROOT)


def _not_json(word: str) -> None:
    raise ValueError(f"{word} is not JSON")


def test_reports_write_non_finite_numbers_as_null(tmp_path: Path) -> None:
    payload = {"a": float("nan"), "b": [1.5, float("inf"), {"c": -float("inf")}], "d": (2, "x"), "e": None}
    write_report(tmp_path / "r" / "report.json", payload)
    got = json.loads((tmp_path / "r" / "report.json").read_text(), parse_constant=_not_json)
    assert got == {"a": None, "b": [1.5, None, {"c": None}], "d": [2, "x"], "e": None}


def test_eval_runs_episodes_through_the_stack_and_reports(tmp_path: Path) -> None:
    ckpt = tiny_checkpoint(tmp_path / "ckpt")
    proc = _eval("--checkpoint", str(ckpt), "--task", "pick_cube", "--episodes", "1", "--seed-start", "500",
                 "--timeout", "3", "--video-dir", str(tmp_path / "videos"), "--json", str(tmp_path / "eval.json"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "success 0/1 = 0% (95 % CI 0%-79%)" in proc.stdout, proc.stdout
    report = json.loads((tmp_path / "eval.json").read_text(), parse_constant=_not_json)
    ep = report["episodes"][0]
    assert ep["time_to_success"] is None and report["summary"]["time_to_success_median_s"] is None
    assert report["summary"]["seeds"] == [500] and ep["success"] is False and ep["chunks"] >= 1
    assert ep["sampling_seed"] == 500  # the policy node's noise differs from episode to episode
    assert ep["sim_s"] >= 3.0 and "timed out" in ep["note"]
    with av.open(ep["video"]) as c:
        frames = sum(1 for _ in c.decode(video=0))
    assert frames >= 30  # about 30 per sim second of the three views side by side


def test_eval_refuses_seeds_from_the_training_data(tmp_path: Path) -> None:
    ds = tmp_path / "train"
    write_episodes(ds, [5, 5, 5])  # lift_box demonstrations with seeds 0, 1, 2
    proc = _eval("--checkpoint", str(tmp_path), "--task", "lift_box", "--episodes", "3", "--seed-start", "2",
                 "--train-dataset", str(ds))
    assert proc.returncode == 2 and "seeds [2] of lift_box are in the training data" in proc.stderr, proc.stderr
    proc = _eval("--checkpoint", str(tmp_path / "missing"), "--task", "lift_box", "--seed-start", "9")
    assert proc.returncode == 2 and "not a checkpoint directory" in proc.stderr
    proc = _eval("--checkpoint", str(tmp_path), "--task", "lift_box", "--seed-start", "9", "--horizon", "0")
    assert proc.returncode == 2 and "--horizon must be >= 1" in proc.stderr
