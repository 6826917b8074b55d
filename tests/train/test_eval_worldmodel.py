"""`a2w eval worldmodel`: rollouts of a tiny random A2World(-sim) against recorded episodes, the model row
beside the copy-the-last-frame baseline, the baseline's numbers exactly those of the recorded frames, and
episodes of the training data refused."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from a2w.cli import main as a2w_main
from a2w.evaluation.worldmodel import psnr
from a2w.msgs.cameras import VIEW_NAMES
from a2w.record.writer import DatasetWriter, Row
from a2w.shadow.scores import ssim
from a2w.train.data import DataConfig, load_episodes
from a2world.checkpoint import save_checkpoint
from a2world.config import tiny_config
from a2world.dit import build_dit
from a2world.tokenizer import WanTokenizer
from tests.train.support import write_dataset


def _checkpoint(root: Path, variant: str) -> Path:
    """A tiny random world model (0.4 s chunks: 4 actions, 2 latent frames) and a tiny tokenizer."""
    import torch

    torch.manual_seed(0)
    net = build_dit(tiny_config(variant, model_channels=32, num_blocks=1, num_heads=1, state_t=2, action_chunk=4))
    save_checkpoint(net.eval(), root)
    WanTokenizer.tiny(dim=4).save(root / "tokenizer.safetensors")
    return root


def _static_dataset(root: Path, n: int = 40) -> Path:
    """Arms that never move in front of a fixed picture: the last frame is the future."""
    q = Rotation.from_euler("xyz", [np.pi, 0, 0]).as_quat()
    pose = np.array([0.4, -0.2, 0.3, *q, 1.0, 0.4, 0.2, 0.3, *q, 1.0])
    images = {}
    for k, v in enumerate(VIEW_NAMES):  # flat areas: the video codec gives back the same frame every time
        img = np.full((32, 32, 3), 40 + 60 * k, np.uint8)
        img[:, 16:] = (230, 200 - 50 * k, 60)
        images[v] = img
    with DatasetWriter(root, VIEW_NAMES, 32, 32) as w:
        ep = w.begin_episode("lift the box with both arms", seed=7)
        for r in range(n):
            t = 1.7e9 + r / 30.0
            ep.add_row(Row(images, pose, np.zeros(14), pose, np.array([t] * 3), np.zeros(3, bool), t, t))
        ep.save()
    return root


def _eval(checkpoint: Path, dataset: Path, out: Path, *extra: str) -> int:
    return a2w_main(["eval", "worldmodel", "--checkpoint", str(checkpoint), "--dataset", str(dataset),
                     "--image-size", "16", "16", "--steps", "1", "--json", str(out), *extra])


def test_psnr_matches_hand_computed_values() -> None:
    a = np.zeros((4, 4, 3), np.uint8)
    assert psnr(a, np.full_like(a, 10)) == pytest.approx(10 * math.log10(255**2 / 100))  # MSE 100: 28.13 dB
    b = a.copy()
    b[0, 0, 0] = 255  # one value off by 255 in 48: MSE 255²/48
    assert psnr(a, b) == pytest.approx(10 * math.log10(48))
    assert psnr(a, a) == math.inf
    with pytest.raises(ValueError):
        psnr(a, np.zeros((4, 5, 3), np.uint8))


@pytest.mark.parametrize("variant", ["sim", "pretrained"])
def test_eval_prints_both_rows_and_the_exact_copy_last_frame_baseline(tmp_path: Path, capsys, variant: str) -> None:
    ck = _checkpoint(tmp_path / "ck", variant)
    ds = write_dataset(tmp_path / "ds", lengths=(40,))
    out = tmp_path / "eval.json"
    # 0.8 s is two chunks: the second one conditioned on the first one's frames (and history)
    assert _eval(ck, ds, out, "--horizons", "0.4", "0.8", "--start-every", "0.4") == 0
    text = capsys.readouterr().out
    table = text[text.index("horizon"):]
    name = {"sim": "A2World-sim ", "pretrained": "A2World "}[variant]
    assert table.count("copy-last-frame") == 2 and table.count(name) == 2, table
    result = json.loads(out.read_text())
    assert [r["row"] for r in result["rows"]] == ["model", "copy-last-frame"] * 2
    assert [s["row"] for s in result["starts"]] == [0, 12]  # 24 rows per rollout, 40-row episode
    (ep,), _ = load_episodes(ds, DataConfig(image_size=(16, 16)))
    for r in result["rows"]:
        f = round(10 * r["horizon_s"])
        for v in VIEW_NAMES:
            got = r["views"][v]
            assert got["frames"] == 2 and 0 < got["ssim"] <= 1 and got["psnr"] > 0
            if r["row"] != "copy-last-frame":
                continue
            held = np.stack([ep.frames[v][s] for s in (0, 12)])
            real = np.stack([ep.frames[v][s + 3 * f] for s in (0, 12)])
            assert got["psnr"] == pytest.approx(psnr(held, real), abs=1e-9)
            assert got["ssim"] == pytest.approx(np.mean([ssim(a, b) for a, b in zip(held, real)]), abs=1e-12)


def test_a_static_scene_gives_the_baseline_infinite_psnr(tmp_path: Path, capsys) -> None:
    ck = _checkpoint(tmp_path / "ck", "sim")
    ds = _static_dataset(tmp_path / "static")
    out = tmp_path / "eval.json"
    assert _eval(ck, ds, out, "--horizons", "0.4") == 0
    text = capsys.readouterr().out
    result = json.loads(out.read_text())
    model, base = result["rows"]
    for v in VIEW_NAMES:
        assert base["views"][v]["psnr_inf"] and base["views"][v]["psnr"] is None and base["views"][v]["mse"] == 0
        assert base["views"][v]["ssim"] == 1.0
        assert not model["views"][v]["psnr_inf"]  # a random model does not reproduce the frame
    assert "inf dB / 1.000" in text


def test_training_episodes_and_bad_horizons_are_refused_in_one_line(tmp_path: Path, capsys) -> None:
    ck = _checkpoint(tmp_path / "ck", "sim")
    ds = write_dataset(tmp_path / "ds", lengths=(40,))
    for extra, needle in [(["--train-dataset", str(ds)], "not held out"),
                          (["--horizons", "0.45"], "0.1 s frame"),
                          (["--horizons", "4"], "long enough"),
                          (["--episodes", "3"], "--episodes")]:
        assert _eval(ck, ds, tmp_path / "e.json", *extra) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and needle in err, (extra, err)
    # a run directory's own datasets are refused without being named
    (ck / "train_config.yaml").write_text(f"datasets: [{ds}]\ndata: {{image_size: [16, 16]}}\n")
    assert a2w_main(["eval", "worldmodel", "--checkpoint", str(ck), "--dataset", str(ds), "--steps", "1",
                     "--horizons", "0.4"]) == 2
    assert "not held out" in capsys.readouterr().err
    # and so are those of the run it was fine-tuned from (an A2World-sim run's model.init)
    sim = _checkpoint(tmp_path / "sim", "sim")
    (sim / "train_config.yaml").write_text(f"datasets: []\nmodel: {{init: {ck}}}\n")
    assert _eval(sim, ds, tmp_path / "e.json", "--horizons", "0.4") == 2
    assert "not held out" in capsys.readouterr().err


@pytest.mark.slow
def test_eval_on_a_held_out_sim_episode(tmp_path: Path, capsys) -> None:
    """Held-out episodes from the sim (seed 0, below the training datasets' 1000-1029), default horizons."""
    ds = tmp_path / "held_out"
    assert a2w_main(["sim", "collect", "--task", "lift_box", "--episodes", "1", "--out", str(ds),
                     "--width", "64", "--height", "48", "--seed", "0"]) == 0
    (ep,), _ = load_episodes(ds, DataConfig(image_size=(16, 16)))
    assert ep.seed is not None and ep.seed < 1000
    ck = _checkpoint(tmp_path / "ck", "sim")
    capsys.readouterr()
    assert _eval(ck, ds, tmp_path / "e.json") == 0  # horizons 1 2 4 s: 3, 5 and 10 chunks of 0.4 s
    table = capsys.readouterr().out
    result = json.loads((tmp_path / "e.json").read_text())
    assert result["horizons_s"] == [1.0, 2.0, 4.0] and len(result["rows"]) == 6
    assert table.count("copy-last-frame") == 3
