"""`a2w eval policy-offline`: the noise probe and the open-loop table on recorded episodes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from a2w.evaluation.policy_offline import noise_probe
from a2world.policy.bundle import load_bundle
from tests.policy.stack import tiny_checkpoint
from tests.train.support import write_dataset

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "a2w.cli", "eval", "policy-offline", *args], capture_output=True,
                          text=True, timeout=600, cwd=ROOT)


def test_reports_the_probe_and_the_open_loop_error(tmp_path: Path) -> None:
    ckpt = tiny_checkpoint(tmp_path / "ckpt")
    ds = write_dataset(tmp_path / "ds", lengths=(70, 70), task="pick up the cube")
    proc = _run("--checkpoint", str(ckpt), "--dataset", str(ds), "--clips", "6", "--every", "10", "--steps", "2",
                "--json", str(tmp_path / "out.json"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "noise probe on 6 clips" in proc.stdout and "right after 2.0 s" in proc.stdout, proc.stdout
    report = json.loads((tmp_path / "out.json").read_text())
    assert [r["sigma_action"] for r in report["probe"]] == [0.1, 0.3, 1.0, 3.0, 10.0, 40.0]
    assert report["chunks"] >= 2 and len(report["open_loop"]) == 6
    # the demonstrations move (support.pose), so holding still is off by more than nothing
    assert all(r["hold_mm_median"] > 0 for r in report["open_loop"])


def test_probe_of_a_random_policy_finds_no_use_of_its_observation(tmp_path: Path) -> None:
    bundle = load_bundle(tiny_checkpoint(tmp_path / "ckpt"))
    policy = bundle.policy.eval()
    pc = policy.config
    n, v = 8, 3
    video = torch.randn(n, pc.backbone.latent_channels, v * pc.latent_frames, 4, 4)
    actions = policy.denormalize_actions(torch.randn(n, pc.action_horizon, pc.action_width))
    context = torch.zeros(n, pc.text_tokens, pc.context_dim)
    rows = noise_probe(policy, video, actions, context, (0, 1, 2))
    # a random policy: whatever it reads, the shuffled observation does as well or as badly
    assert all(abs(r.gain) < 0.5 for r in rows)
    assert rows[-1].mse_own != rows[-1].mse_shuffled  # it did see other observations
    # low noise: the estimate is the noisy input itself, close to the target
    assert rows[0].mse_own < 0.1 < rows[-1].mse_own
    with pytest.raises(ValueError, match="at least 2 clips"):
        noise_probe(policy, video[:1], actions[:1], context[:1], (0, 1, 2))


def test_bad_inputs_fail_in_one_line(tmp_path: Path) -> None:
    ckpt = tiny_checkpoint(tmp_path / "ckpt")
    proc = _run("--checkpoint", str(tmp_path / "missing"), "--dataset", str(tmp_path))
    assert proc.returncode == 2 and "a2w eval policy-offline:" in proc.stderr and "Traceback" not in proc.stderr
    proc = _run("--checkpoint", str(ckpt), "--dataset", str(tmp_path / "nope"))
    assert proc.returncode == 2 and "does not exist" in proc.stderr, proc.stderr
    ds = write_dataset(tmp_path / "ds", lengths=(70,), task="an instruction it was never given")
    proc = _run("--checkpoint", str(ckpt), "--dataset", str(ds), "--clips", "4")
    assert proc.returncode == 2 and "an instruction it was never given" in proc.stderr, proc.stderr
    proc = _run("--checkpoint", str(ckpt), "--dataset", str(ds), "--steps", "0")
    assert proc.returncode == 2 and "--steps must be >= 1" in proc.stderr
