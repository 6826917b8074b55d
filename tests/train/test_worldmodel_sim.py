"""`a2w train worldmodel-sim`: A2World-sim fine-tuned from a trained A2World run on a tiny dataset. The
loss falls, the output directory is what WorldModelRollout and the shadow load, and each clip's cached
history is exactly what the inference path feeds the net for the same episode prefix."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from a2w.cli import main as a2w_main
from a2w.shadow.predictor import Keyframe, ShadowPredictor, Window, load_rollout
from a2w.train.data import DataConfig, load_episodes
from a2w.train.sim_history import executed_actions, node_rows
from a2world.checkpoint import load_checkpoint
from a2world.config import tiny_config
from a2world.dit import build_dit
from a2world.rollout import RolloutConfig, WorldModelRollout
from a2world.sampler import SamplerConfig
from a2world.tokenizer import WanTokenizer
from a2world.train.run import TrainError
from a2world.train.worldmodel import fold_action_normalisation, unfold_action_normalisation
from a2world.train.worldmodel_sim import history_latents_per_view, sim_config, sim_from_pretrained
from tests.train.conftest import write_config

SIM_CONFIG = {
    "data": {"image_size": [16, 16], "clip_stride": 4},
    "model": {},
    "loop": {"steps": 20, "batch_size": 4, "lr": 2e-3, "warmup_steps": 0, "min_lr_ratio": 1.0,
             "log_every": 5, "checkpoint_every": 20, "threads": 1},
}


def _csv(path: Path) -> list[dict[str, float]]:
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]


@pytest.fixture(scope="module")
def sim_run(tmp_path_factory: pytest.TempPathFactory, tiny_dataset: Path, worldmodel_run: Path) -> Path:
    root = tmp_path_factory.mktemp("wmsim")
    cfg = {**SIM_CONFIG, "model": {**SIM_CONFIG["model"], "init": str(worldmodel_run)},
           "latent_cache": str(root / "cache")}
    out = root / "run"
    assert a2w_main(["train", "worldmodel-sim", "--dataset", str(tiny_dataset), "--config",
                     str(write_config(root / "sim.yaml", cfg)), "--out", str(out), "--no-progress"]) == 0
    return out


def test_sim_run_loss_falls_and_exports_what_the_rollout_and_the_shadow_load(sim_run: Path,
                                                                             worldmodel_run: Path) -> None:
    evals = _csv(sim_run / "eval.csv")
    assert [e["step"] for e in evals] == [0, 20]
    assert evals[-1]["loss"] < 0.99 * evals[0]["loss"], evals
    # it starts where the pretrained run ended (fresh history modules, every other weight carried over),
    # far below where that run started from scratch
    pre = _csv(worldmodel_run / "eval.csv")
    assert evals[0]["loss"] < 0.6 * pre[0]["loss"], (evals, pre)
    net = load_checkpoint(sim_run)  # strict: every key, shape and the config
    assert net.config.variant == "sim" and net.config.use_history
    pre = load_checkpoint(worldmodel_run)
    assert (net.config.model_channels, net.config.state_t, net.config.action_chunk) == \
        (pre.config.model_channels, pre.config.state_t, pre.config.action_chunk)
    # the pretrained run's tokenizer: the same weights and configuration
    a, b = (load_file(str(d / "tokenizer.safetensors")) for d in (sim_run, worldmodel_run))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert WanTokenizer.from_checkpoint(sim_run / "tokenizer.safetensors", dtype=None).vae.config == \
        WanTokenizer.from_checkpoint(worldmodel_run / "tokenizer.safetensors", dtype=None).vae.config
    tok = WanTokenizer.from_checkpoint(sim_run / "tokenizer.safetensors", dtype=None)
    rollout = WorldModelRollout(net, tok, RolloutConfig(sampler=SamplerConfig(num_steps=2)))
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (16, 16, 3), dtype=np.uint8) for _ in range(3)]
    actions = 0.01 * rng.standard_normal((2 * net.config.action_chunk, 14)).astype(np.float32)
    video = rollout.run(images, [0, 1, 2], actions)  # two chunks: the second one sees its history
    assert video.shape == (3, 1 + 2 * net.config.action_chunk, 16, 16, 3) and video.dtype == np.uint8
    shadow = load_rollout(sim_run, (16, 16), steps=1, seed=0)
    assert shadow.net.config.variant == "sim"


def test_training_history_equals_the_history_inference_feeds_the_net(sim_run: Path, tiny_dataset: Path) -> None:
    """The cached history of a clip at row s equals what WorldModelRollout.predict_chunk feeds the net when
    the shadow has seen the episode's real frames and executed actions up to s, window by window."""
    caches = [load_file(str(p)) for p in (sim_run.parent / "cache").glob("latents-*.safetensors")]
    (hist,) = [c for c in caches if "history_latent" in c]
    episodes, _ = load_episodes(tiny_dataset, DataConfig(image_size=(16, 16)))
    net = load_checkpoint(sim_run)
    k = net.config.action_chunk
    samples = [(e, s) for e in episodes for s in range(0, e.last_start(3 * k) + 1, 4)]
    assert len(samples) == hist["history_latent"].shape[0]
    tok = WanTokenizer.from_checkpoint(sim_run / "tokenizer.safetensors", dtype=None)
    rollout = WorldModelRollout(net, tok, RolloutConfig(sampler=SamplerConfig(num_steps=1)))
    seen: list = []
    forward = net.forward

    def spy(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - records the history the net is given
        seen.append(args[5])
        return forward(*args, **kwargs)

    net.forward = spy  # type: ignore[method-assign]
    views = ("left_wrist", "right_wrist", "front")
    checked = 0
    for i, (e, s) in enumerate(samples):
        if i % 3 and i != len(samples) - 1:
            continue
        rows = node_rows(s)
        shadow = ShadowPredictor(rollout, views, [0, 1, 2])
        key = lambda r: Keyframe(r / 30.0, {v: e.frames[v][r] for v in views})  # noqa: E731
        shadow.history = None
        first = True
        for a in range(0, len(rows) - 1, k):  # the real past in windows of up to one chunk
            win_rows = rows[a:a + k + 1]
            win = Window(a, [key(r) for r in win_rows], executed_actions(e.state, int(win_rows[0]), len(win_rows) - 1))
            shadow.extend(win)
            first = False
        if first:
            from a2world.history import HistoryBuffer

            shadow.history = HistoryBuffer([e.frames[v][s] for v in views])
        chunk = executed_actions(e.state, s, k)
        seen.clear()
        rollout.predict_chunk([e.frames[v][s] for v in views], [0, 1, 2], chunk, shadow.history, 0)
        fed = seen[0]
        assert torch.equal(fed.latent[0].float().cpu(), hist["history_latent"][i]), (e.index, s)
        assert torch.equal(fed.state[0].float().cpu(), hist["history_state"][i]), (e.index, s)
        assert np.array_equal(hist["actions"][i].numpy(), chunk)
        checked += 1
    assert checked >= 4
    # the later clips' history is not the start frame repeated: the arc-length choice mattered
    assert not torch.equal(hist["history_state"][0], hist["history_state"][-1])


def test_sim_net_starts_from_the_pretrained_weights_and_folding_inverts_unfolding() -> None:
    torch.manual_seed(0)
    pre = build_dit(tiny_config("pretrained", model_channels=32, num_blocks=1, num_heads=1, state_t=2,
                                action_chunk=4))
    sim, fresh = sim_from_pretrained(pre, sim_config(pre.config, 8), seed=0)
    assert {k.split(".")[0] for k in fresh} == {"history_tokenizer", "mem_to_k", "mem_to_v", "vpb"}
    p, s = pre.state_dict(), sim.state_dict()
    assert torch.equal(s["blocks.0.cross_biased_attn.core.out_proj.weight"],
                       p["blocks.0.cross_attn.output_proj.weight"])
    assert torch.equal(s["blocks.0.cross_biased_attn.core.k_proj.weight"], p["blocks.0.cross_attn.k_proj.weight"])
    assert all(torch.equal(s[k], p[k]) for k in p if k in s)
    assert not sim.config.quirks.vpb_batch_mixing
    mean, std = 0.01 * torch.randn(14), 0.001 + 0.01 * torch.rand(14)
    before = {k: v.clone() for k, v in sim.state_dict().items()}
    unfold_action_normalisation(sim, mean, std)
    assert not torch.equal(sim.action_embedder_B_D_agi.fc1.weight, before["action_embedder_B_D_agi.fc1.weight"])
    fold_action_normalisation(sim, mean, std)
    for k, v in sim.state_dict().items():
        assert torch.allclose(v, before[k], atol=1e-6), k
    with pytest.raises(TrainError, match="pretrained"):
        sim_config(sim.config)


@pytest.mark.parametrize("history,ok", [(20, True), (8, True), (6, False), (5, False)])
def test_history_lengths_whose_views_do_not_split_are_refused(history: int, ok: bool) -> None:
    if ok:
        assert history_latents_per_view(3, history, 4, True) >= 2
    else:
        with pytest.raises(TrainError, match="history_length"):
            history_latents_per_view(3, history, 4, True)


def test_sim_job_config_errors_fail_in_one_line(tmp_path: Path, tiny_dataset: Path, tokenizer_run: Path,
                                                capsys) -> None:
    cfg = write_config(tmp_path / "c.yaml", {**SIM_CONFIG, "model": {"history_length": 20}})
    code = a2w_main(["train", "worldmodel-sim", "--dataset", str(tiny_dataset), "--config", str(cfg),
                     "--out", str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "model.init" in err, err
    bad = write_config(tmp_path / "d.yaml", {**SIM_CONFIG, "model": {"init": str(tokenizer_run)}})
    code = a2w_main(["train", "worldmodel-sim", "--dataset", str(tiny_dataset), "--config", str(bad),
                     "--out", str(tmp_path / "o2"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "model.init" in err, err


def test_sim_resume_equals_uninterrupted(tmp_path: Path, tiny_dataset: Path, worldmodel_run: Path,
                                         sim_run: Path) -> None:
    cfg = {**SIM_CONFIG, "model": {"init": str(worldmodel_run)}, "latent_cache": str(sim_run.parent / "cache"),
           "loop": {**SIM_CONFIG["loop"], "steps": 3, "checkpoint_every": 2}}
    path = write_config(tmp_path / "c.yaml", cfg)

    def train(out: Path, *extra: str) -> int:
        return a2w_main(["train", "worldmodel-sim", "--dataset", str(tiny_dataset), "--config", str(path),
                         "--out", str(out), "--no-progress", *extra])

    assert train(tmp_path / "straight") == 0
    assert train(tmp_path / "broken", "--stop-at", "1") == 0
    assert not (tmp_path / "broken" / "model.safetensors").exists()
    assert train(tmp_path / "broken", "--resume") == 0
    a, b = (load_file(str(tmp_path / d / "model.safetensors")) for d in ("straight", "broken"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [r["loss"] for r in _csv(tmp_path / "straight" / "metrics.csv")] == \
        [r["loss"] for r in _csv(tmp_path / "broken" / "metrics.csv")]
