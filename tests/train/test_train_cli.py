"""`a2w train tokenizer|policy` on a tiny recorded dataset: the loss falls on fixed samples, the run
directory holds what a policy node loads, --resume continues exactly, bad inputs fail in one line."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from a2w.actions import decode_dual
from a2w.cli import main as a2w_main
from a2w.msgs.common import Pose
from a2w.train.data import DataConfig, load_episodes
from a2world.checkpoint import load_checkpoint
from a2world.dit import build_dit
from a2world.policy.checkpoint import load_policy, save_policy
from a2world.text_embeddings import TextEmbeddingCache
from a2world.tokenizer import WanTokenizer
from a2world.train.text import HASHED_ENCODER, hashed_text_cache, position_code
from a2world.train.worldmodel import (
    WorldModelConfig,
    WorldModelLossModule,
    WorldModelObjective,
    fold_action_normalisation,
)
from tests.train.conftest import TOKENIZER_CONFIG, WORLDMODEL_CONFIG, write_config
from tests.train.support import write_dataset


def _csv(path: Path) -> list[dict[str, float]]:
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]


def _train(job: str, dataset: Path, config: Path, out: Path, *extra: str) -> int:
    return a2w_main(["train", job, "--dataset", str(dataset), "--config", str(config), "--out", str(out),
                     "--no-progress", *extra])


def test_tokenizer_run_loss_falls_and_exports_a_calibrated_tokenizer(tokenizer_run: Path) -> None:
    evals = _csv(tokenizer_run / "eval.csv")
    assert [e["step"] for e in evals] == [0, 6, 12]
    assert evals[-1]["loss"] < 0.9 * evals[0]["loss"], evals
    assert evals[-1]["psnr"] > evals[0]["psnr"] + 1.0
    rows = _csv(tokenizer_run / "metrics.csv")
    assert [r["step"] for r in rows] == list(range(1, 13))
    assert all(r["samples_per_s"] > 0 and r["lr"] > 0 for r in rows)
    resolved = yaml.safe_load((tokenizer_run / "train_config.yaml").read_text())
    assert resolved["tokenizer"]["dim"] == 4 and resolved["loop"]["steps"] == 12
    assert resolved["loop"]["lr"] == TOKENIZER_CONFIG["loop"]["lr"] and resolved["tokenizer"]["kl_weight"] == 1e-4
    assert (tokenizer_run / "checkpoints" / "step_0000006" / "tokenizer.safetensors").is_file()
    tok = WanTokenizer.from_checkpoint(tokenizer_run / "tokenizer.safetensors", dtype=None)
    assert tok.vae.config.dim == 4
    # the latent statistics were measured on the data, not the release's constants
    assert tok.vae.config.latent_mean != WanTokenizer.tiny(dim=4).vae.config.latent_mean


def test_policy_run_loss_falls_and_writes_a_loadable_checkpoint(tmp_path: Path, tiny_dataset: Path,
                                                                policy_config: dict, caplog) -> None:
    cfg = dict(policy_config, loop={**policy_config["loop"], "steps": 20, "checkpoint_every": 20})
    out = tmp_path / "run"
    with caplog.at_level(logging.INFO, logger="a2w.train.cli"):
        assert _train("policy", tiny_dataset, write_config(tmp_path / "p.yaml", cfg), out) == 0
    # encoding the latent cache (tens of minutes on a real dataset) reports its progress to the end
    counts = [r.getMessage() for r in caplog.records if "clips encoded" in r.getMessage()]
    assert counts and counts[-1].split()[2].split("/")[0] == counts[-1].split()[2].split("/")[1], counts
    evals = _csv(out / "eval.csv")
    assert [e["step"] for e in evals] == [0, 20]
    assert evals[-1]["loss"] < 0.8 * evals[0]["loss"], evals
    for name in ("model.safetensors", "config.json", "tokenizer.safetensors", "text_embeddings.safetensors",
                 "runtime.json", "train_config.yaml", "metrics.csv"):
        assert (out / name).is_file(), name
    # the names and formats the policy node loads (a2world.policy.bundle)
    policy = load_policy(out)
    text = TextEmbeddingCache.load(out / "text_embeddings.safetensors")
    tok = WanTokenizer.from_checkpoint(out / "tokenizer.safetensors", dtype=None)
    assert tok.latent_channels == policy.config.backbone.latent_channels
    assert (text.max_length, text.dim) == (policy.config.text_tokens, policy.config.context_dim)
    runtime = json.loads((out / "runtime.json").read_text())
    assert runtime == {"image_size": [16, 16], "view_ids": [0, 1, 2], "instruction": "lift the box with both arms"}
    # the sim tasks' instructions are embedded too, deterministically
    assert {"lift the box with both arms", "pick up the cube"} <= set(text.instructions)
    assert policy.config.action_horizon == 12
    assert float(policy.action_std.min()) > 0
    # the second run on the same data and tokenizer reads the latent cache instead of encoding
    caches = list(Path(policy_config["latent_cache"]).glob("latents-*.safetensors"))
    assert len(caches) == 1
    stamp = caches[0].stat().st_mtime_ns
    assert _train("policy", tiny_dataset, write_config(tmp_path / "p.yaml", cfg), tmp_path / "run2") == 0
    assert caches[0].stat().st_mtime_ns == stamp
    assert len(list(Path(policy_config["latent_cache"]).glob("latents-*.safetensors"))) == 1


def test_adding_a_dataset_encodes_only_the_new_one(tmp_path: Path, tiny_dataset: Path, policy_config: dict,
                                                  caplog) -> None:
    cache = Path(policy_config["latent_cache"])
    cfg = write_config(tmp_path / "p.yaml", dict(policy_config, loop={**policy_config["loop"], "steps": 2}))
    assert _train("policy", tiny_dataset, cfg, tmp_path / "one") == 0
    (first,) = cache.glob("latents-*.safetensors")
    stamp = first.stat().st_mtime_ns
    other = write_dataset(tmp_path / "other", lengths=(36,), task="pick up the cube")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="a2w.train.cli"):
        assert a2w_main(["train", "policy", "--dataset", str(tiny_dataset), "--dataset", str(other), "--config",
                         str(cfg), "--out", str(tmp_path / "two"), "--no-progress"]) == 0
    files = sorted(cache.glob("latents-*.safetensors"))
    assert len(files) == 2 and first in files and first.stat().st_mtime_ns == stamp
    encoded = {r.getMessage().rsplit("(", 1)[1] for r in caplog.records if "clips encoded" in r.getMessage()}
    assert encoded == {f"{other})"}
    # both datasets' clips train, each with its own instruction
    assert any("from 3 episodes (2 instructions)" in r.getMessage() for r in caplog.records)


def test_worldmodel_run_loss_falls_and_exports_an_a2world_checkpoint(worldmodel_run: Path) -> None:
    evals = _csv(worldmodel_run / "eval.csv")
    assert [e["step"] for e in evals] == [0, 20]
    assert evals[-1]["loss"] < 0.8 * evals[0]["loss"], evals
    net = load_checkpoint(worldmodel_run)  # strict: every key, shape and the config
    assert net.config.variant == "pretrained" and net.config.action_chunk == 4
    assert (worldmodel_run / "tokenizer.safetensors").is_file()


def test_policy_starts_from_the_trained_world_model(tmp_path: Path, tiny_dataset: Path, policy_config: dict,
                                                    worldmodel_run: Path, caplog) -> None:
    """Paper §3.3: the policy's video path is the world model's, then trained on."""
    wm = WORLDMODEL_CONFIG["model"]
    cfg = dict(policy_config, model={**wm, "init": str(worldmodel_run)},
               loop={**policy_config["loop"], "steps": 1, "lr": 1e-4})
    out = tmp_path / "run"
    with caplog.at_level("INFO", logger="a2world.train.policy"):
        assert _train("policy", tiny_dataset, write_config(tmp_path / "p.yaml", cfg), out) == 0
    assert "initialised from A2World" in caplog.text
    world = load_file(str(worldmodel_run / "model.safetensors"))
    policy = load_file(str(out / "model.safetensors"))
    shared = [k for k in policy if k.startswith("blocks.0.self_attn.") and k in world]
    assert shared
    for k in shared:  # one small step away from the world model's weights
        assert (policy[k] - world[k]).abs().max() < 1e-3, k


def test_a_policy_checkpoint_as_init_is_fine_tuned_as_it_is(tmp_path: Path, tiny_dataset: Path,
                                                            policy_config: dict, caplog, capsys) -> None:
    """A shipped policy continued on new data: every weight and its action statistics carry over (a
    fresh head or re-measured statistics would throw away what it learned)."""
    first = tmp_path / "first"
    cfg = dict(policy_config, loop={**policy_config["loop"], "steps": 2})
    assert _train("policy", tiny_dataset, write_config(tmp_path / "p.yaml", cfg), first) == 0
    source = load_policy(first)
    with torch.no_grad():  # statistics the data would not give, to see that they are kept
        source.set_action_stats(source.action_mean + 0.5, source.action_std * 3)
    save_policy(source, first)
    cont = dict(cfg, model={**cfg["model"], "init": str(first)},
                loop={**cfg["loop"], "steps": 1, "lr": 1e-5, "warmup_steps": 1})
    out = tmp_path / "continued"
    with caplog.at_level("INFO", logger="a2world.train.policy"):
        assert _train("policy", tiny_dataset, write_config(tmp_path / "c.yaml", cont), out) == 0
    assert f"continued from the policy {first}" in caplog.text
    before, after = load_file(str(first / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert before.keys() == after.keys()
    for k in before:  # one small step away from every weight, action head included
        assert (after[k] - before[k]).abs().max() < 1e-3, k
    assert torch.equal(after["action_mean"], before["action_mean"])
    assert torch.equal(after["action_std"], before["action_std"])
    # a policy whose action stream does not fit the run is refused in one line
    other = dict(cont, model={**cont["model"], "max_prefix": 2})
    _one_line_error(capsys, _train("policy", tiny_dataset, write_config(tmp_path / "m.yaml", other),
                                   tmp_path / "o"), "does not fit this run", "max_prefix")


def test_rest_weight_draws_the_clips_before_the_arms_move(tmp_path: Path, tiny_dataset: Path, policy_config: dict,
                                                         monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    from a2world.train.policy import PolicyJob

    drawn: list[int] = []
    inputs = PolicyJob.inputs

    def spy(self: PolicyJob, indices: torch.Tensor, *args: object) -> tuple:
        if len(indices) == 4:  # a training batch (the evaluation takes eval_samples = 3)
            drawn.extend(indices.tolist())
        return inputs(self, indices, *args)

    monkeypatch.setattr(PolicyJob, "inputs", spy)
    episodes, _ = load_episodes(tiny_dataset, DataConfig(image_size=(16, 16)), need_actions=True)
    starts = [(e, s) for e in episodes for s in range(0, e.last_start(12) + 1, 4)]
    at_rest = {i for i, (e, s) in enumerate(starts) if s < e.motion_onset()}
    assert 0 < len(at_rest) < len(starts)
    cfg = dict(policy_config, data={**policy_config["data"], "rest_weight": 1e9},
               loop={**policy_config["loop"], "steps": 5, "eval_samples": 3})
    with caplog.at_level(logging.INFO, logger="a2w.train.cli"):
        assert _train("policy", tiny_dataset, write_config(tmp_path / "p.yaml", cfg), tmp_path / "run") == 0
    assert f"{len(at_rest)} of {len(starts)} clips start before the arms move" in caplog.text
    assert len(drawn) == 20 and set(drawn) <= at_rest, (drawn, at_rest)


def test_motion_onset_is_the_first_row_a_tcp_has_left_its_start() -> None:
    from a2w.train.data import Episode

    state = np.zeros((10, 16))
    ep = Episode("d", 0, "t", None, {}, state, None, np.zeros((10, 14)))
    assert ep.motion_onset() == 10  # never moves
    state[6:, 9] = 0.004  # the right arm creeps, under the threshold
    state[7:, 10] = 0.006
    assert ep.motion_onset() == 7


def test_folding_the_action_normalisation_keeps_the_world_model_output() -> None:
    torch.manual_seed(0)
    cfg = WorldModelConfig(state_t=2, model_channels=32, num_blocks=1, num_heads=1)
    net = build_dit(cfg.build()).eval()
    mean, std = 0.01 * torch.randn(14), 0.001 + 0.01 * torch.rand(14)
    module = WorldModelLossModule(net, WorldModelObjective(), mean, std).eval()
    b, vt = 2, 3 * cfg.state_t
    video = torch.randn(b, 16, vt, 2, 2)
    view_ids = torch.tensor([[0, 1, 2]] * b)
    actions = mean + std * torch.randn(b, 4, 14)
    sigma, noise = torch.tensor([0.5, 3.0]), torch.randn_like(video)
    with torch.no_grad():
        before, _ = module(video, view_ids, actions, sigma, noise)
        fold_action_normalisation(net, mean, std)
        module.action_mean.zero_()
        module.action_std.fill_(1.0)  # the folded net reads raw actions
        after, _ = module(video, view_ids, actions, sigma, noise)
    assert torch.allclose(before, after, rtol=1e-4), (before, after)


@pytest.mark.parametrize("job", ["tokenizer", "worldmodel", "policy"])
def test_resume_equals_uninterrupted(tmp_path: Path, tiny_dataset: Path, policy_config: dict, job: str) -> None:
    base = {"tokenizer": TOKENIZER_CONFIG, "policy": policy_config,
            "worldmodel": {**WORLDMODEL_CONFIG, **{k: policy_config[k] for k in ("tokenizer_checkpoint",
                                                                                 "latent_cache")}}}[job]
    cfg = write_config(tmp_path / "c.yaml", {**base, "loop": {**base["loop"], "steps": 4, "checkpoint_every": 2}})
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    assert _train(job, tiny_dataset, cfg, straight) == 0
    assert _train(job, tiny_dataset, cfg, broken, "--stop-at", "1") == 0
    assert not (broken / "model.safetensors").exists() and not (broken / "tokenizer.safetensors").exists()
    assert _train(job, tiny_dataset, cfg, broken, "--resume") == 0
    name = "tokenizer.safetensors" if job == "tokenizer" else "model.safetensors"
    a, b = load_file(str(straight / name)), load_file(str(broken / name))
    assert a.keys() == b.keys() and all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
    ra, rb = _csv(straight / "metrics.csv"), _csv(broken / "metrics.csv")
    assert [(r["step"], r["loss"]) for r in ra] == [(r["step"], r["loss"]) for r in rb]


def test_action_chunks_compose_back_onto_the_recorded_targets(tiny_dataset: Path) -> None:
    """Step i of the chunk for row t, composed onto the measured pose at t, is the target due after
    row t+i (a2w.actions.compose_chunk's convention)."""
    episodes, _ = load_episodes(tiny_dataset, DataConfig(image_size=(16, 16)))
    ep = episodes[1]
    for start in (0, 7, ep.last_start(12)):
        chunk = ep.action_chunk(start, 12)
        s = ep.state[start].reshape(2, 8)
        poses = decode_dual((Pose(s[0, :3], s[0, 3:7]), Pose(s[1, :3], s[1, 3:7])), chunk.astype(np.float64))
        want = ep.target[start:start + 12].reshape(-1, 2, 8)
        assert np.allclose(poses[:, :, :3], want[:, :, :3], atol=1e-5)
        assert np.allclose(np.abs((poses[:, :, 3:7] * want[:, :, 3:7]).sum(-1)), 1.0, atol=1e-5)
        assert np.allclose(poses[:, :, 7], want[:, :, 7], atol=1e-6)
    assert {f.shape for f in ep.frames.values()} == {(ep.length, 16, 16, 3)}


# ---- bad inputs: one clear line on stderr, exit status 2 ---------------------------------------------

def _one_line_error(capsys: pytest.CaptureFixture, code: int, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1, err
    for n in needles:
        assert n in err, err
    return err


@pytest.mark.parametrize("section,key,value", [
    ("loop", "lr", -1.0),
    ("loop", "steps", 0),
    ("loop", "steps", "ten"),
    ("loop", "sharding", "zero3"),
    ("loop", "learning_rate", 0.1),
    ("data", "image_size", [30, 30]),
    ("data", "views", ["left_wrist", "top"]),
    ("data", "rest_weight", 0.0),
    ("data", "rest_weight", float("nan")),
    ("data", "rest_weight", float("inf")),
    ("data", "rest_weight", 2.0),  # a valid weight, for a job that does not weight its samples
    ("tokenizer", "clip_frames", 4),
    ("tokenizer", "kl_weight", -1.0),
])
def test_bad_config_values_fail_in_one_line(tmp_path: Path, tiny_dataset: Path, capsys, section: str, key: str,
                                            value: object) -> None:
    cfg = {**TOKENIZER_CONFIG, section: {**TOKENIZER_CONFIG.get(section, {}), key: value}}
    code = _train("tokenizer", tiny_dataset, write_config(tmp_path / "c.yaml", cfg), tmp_path / "out")
    _one_line_error(capsys, code, section, key)
    assert not (tmp_path / "out" / "state.pt").exists()


def test_bad_config_files_and_run_directories_fail_in_one_line(tmp_path: Path, tiny_dataset: Path,
                                                               policy_config: dict, capsys) -> None:
    good = write_config(tmp_path / "good.yaml", TOKENIZER_CONFIG)
    _one_line_error(capsys, _train("tokenizer", tiny_dataset, tmp_path / "nope.yaml", tmp_path / "o"), "nope.yaml")
    (tmp_path / "broken.yaml").write_text("loop: [unclosed\n")
    _one_line_error(capsys, _train("tokenizer", tiny_dataset, tmp_path / "broken.yaml", tmp_path / "o"), "broken.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    _one_line_error(capsys, _train("tokenizer", tiny_dataset, tmp_path / "list.yaml", tmp_path / "o"), "mapping")
    extra = write_config(tmp_path / "extra.yaml", {**TOKENIZER_CONFIG, "model": {}})
    _one_line_error(capsys, _train("tokenizer", tiny_dataset, extra, tmp_path / "o"), "unknown sections", "model")
    wrong_job = write_config(tmp_path / "job.yaml", {**TOKENIZER_CONFIG, "job": "policy"})
    _one_line_error(capsys, _train("tokenizer", tiny_dataset, wrong_job, tmp_path / "o"), "'policy'")
    no_tok = write_config(tmp_path / "pol.yaml",
                          {k: v for k, v in policy_config.items() if k != "tokenizer_checkpoint"})
    _one_line_error(capsys, _train("policy", tiny_dataset, no_tok, tmp_path / "o"), "tokenizer_checkpoint")
    missing_tok = write_config(tmp_path / "pol2.yaml", {**policy_config, "tokenizer_checkpoint": str(tmp_path / "t")})
    _one_line_error(capsys, _train("policy", tiny_dataset, missing_tok, tmp_path / "o"), "tokenizer_checkpoint")
    _one_line_error(capsys, _train("tokenizer", tiny_dataset, good, tmp_path / "fresh", "--resume"),
                    "nothing to resume")
    short = write_config(tmp_path / "short.yaml",
                         {**TOKENIZER_CONFIG, "loop": {**TOKENIZER_CONFIG["loop"], "steps": 1}})
    assert _train("tokenizer", tiny_dataset, short, tmp_path / "used") == 0
    capsys.readouterr()
    _one_line_error(capsys, _train("tokenizer", tiny_dataset, short, tmp_path / "used"), "already holds a run")
    _one_line_error(capsys, _train("tokenizer", tiny_dataset, good, tmp_path / "used", "--resume"),
                    "different config", "loop.steps")


def test_bad_datasets_fail_in_one_line(tmp_path: Path, tiny_dataset: Path, capsys) -> None:
    cfg = write_config(tmp_path / "c.yaml", TOKENIZER_CONFIG)
    _one_line_error(capsys, _train("tokenizer", tmp_path / "missing", cfg, tmp_path / "o"), "does not exist")
    (tmp_path / "empty").mkdir()
    _one_line_error(capsys, _train("tokenizer", tmp_path / "empty", cfg, tmp_path / "o"), "not a dataset")
    one_view = write_dataset(tmp_path / "front_only", lengths=(20,), views=("front",))
    _one_line_error(capsys, _train("tokenizer", one_view, cfg, tmp_path / "o"),
                    "features do not match", "observation.images.left_wrist")
    short = write_dataset(tmp_path / "short", lengths=(8,))
    pol = {"data": {"image_size": [16, 16]}, "model": {"state_t": 2},
           "tokenizer_checkpoint": str(tmp_path / "tok.safetensors")}
    WanTokenizer.tiny(dim=4).save(tmp_path / "tok.safetensors")
    _one_line_error(capsys, _train("policy", short, write_config(tmp_path / "p.yaml", pol), tmp_path / "o"),
                    "no episode is longer")


def test_hashed_instruction_embeddings_are_deterministic_and_share_words(tmp_path: Path) -> None:
    a = hashed_text_cache(["lift the box with both arms", "pick up the cube"], 8, 64)
    b = hashed_text_cache(["pick up the cube"], 8, 64)
    assert torch.equal(a.get("pick up the cube"), b.get("pick up the cube"))
    assert a.encoder == HASHED_ENCODER and a.num_tokens("lift the box with both arms") == 6
    # "the" is the same word vector in both instructions (position codes aside)
    lift, cube = a.get("lift the box with both arms"), a.get("pick up the cube")
    assert torch.allclose(lift[1] - 0.1 * position_code(6, 64)[1], cube[2] - 0.1 * position_code(6, 64)[2])
    assert not torch.allclose(lift[2], cube[3])  # box vs cube
    a.save(tmp_path / "t.safetensors")
    loaded = TextEmbeddingCache.load(tmp_path / "t.safetensors")
    assert loaded.instructions == a.instructions and loaded.encoder == HASHED_ENCODER
    assert torch.equal(loaded.get("pick up the cube"), a.get("pick up the cube"))
    long = hashed_text_cache(["one two three four five six seven eight nine ten"], 8, 64)
    assert long.num_tokens("one two three four five six seven eight nine ten") == 8


def test_a_resumed_run_may_change_its_thread_count_only(tmp_path: Path, tiny_dataset: Path, capsys) -> None:
    loop = {**TOKENIZER_CONFIG["loop"], "steps": 2}
    one = write_config(tmp_path / "one.yaml", {**TOKENIZER_CONFIG, "loop": {**loop, "threads": 1}})
    two = write_config(tmp_path / "two.yaml", {**TOKENIZER_CONFIG, "loop": {**loop, "threads": 2}})
    out = tmp_path / "run"
    assert _train("tokenizer", tiny_dataset, one, out, "--stop-at", "1") == 0
    assert _train("tokenizer", tiny_dataset, two, out, "--resume") == 0
    assert [r["step"] for r in _csv(out / "metrics.csv")] == [1, 2]
    # the run's config records what it runs with now
    assert yaml.safe_load((out / "train_config.yaml").read_text())["loop"]["threads"] == 2
    capsys.readouterr()
    other = write_config(tmp_path / "lr.yaml", {**TOKENIZER_CONFIG, "loop": {**loop, "threads": 2, "lr": 1e-2}})
    _one_line_error(capsys, _train("tokenizer", tiny_dataset, other, out, "--resume"), "different config", "loop.lr")
