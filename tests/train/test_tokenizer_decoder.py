"""A decoder-only tokenizer fine-tune (``tokenizer.init`` + ``train_encoder: false``) keeps every
latent bit-identical, so latent caches and the models trained on them stay valid; the latent
cache is keyed by the encoder's tensors, not by the tokenizer file."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from a2w.cli import main as a2w_main
from a2world.tokenizer import WanTokenizer
from a2world.train.latents import ENCODER_PREFIXES, encoder_fingerprint
from tests.train.conftest import TOKENIZER_CONFIG, write_config


def _train(dataset: Path, config: Path, out: Path) -> int:
    return a2w_main(["train", "tokenizer", "--dataset", str(dataset), "--config", str(config), "--out", str(out),
                     "--no-progress"])


def _decoder_config(init: Path, **tokenizer: object) -> dict:
    return {**TOKENIZER_CONFIG,
            "tokenizer": {**TOKENIZER_CONFIG["tokenizer"], "clip_frames": 9, "init": str(init),
                          "train_encoder": False, **tokenizer},
            "loop": {**TOKENIZER_CONFIG["loop"], "steps": 12, "lr": 1e-3, "checkpoint_every": 12, "log_every": 4}}


def test_decoder_only_fine_tune_improves_decoding_and_keeps_every_latent(tmp_path: Path, tiny_dataset: Path,
                                                                          tokenizer_run: Path) -> None:
    init = tokenizer_run / "tokenizer.safetensors"
    out = tmp_path / "dec"
    assert _train(tiny_dataset, write_config(tmp_path / "d.yaml", _decoder_config(init)), out) == 0
    with open(out / "eval.csv", newline="") as f:
        evals = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]
    assert evals[-1]["loss"] < evals[0]["loss"], evals
    before, after = load_file(str(init)), load_file(str(out / "tokenizer.safetensors"))
    assert before.keys() == after.keys()
    encoder = [k for k in before if k.startswith(ENCODER_PREFIXES)]
    decoder = [k for k in before if k.startswith(("decoder.", "conv2."))]
    assert encoder and decoder
    assert all(torch.equal(before[k], after[k]) for k in encoder)
    assert any(not torch.equal(before[k], after[k]) for k in decoder)
    old = WanTokenizer.from_checkpoint(init, dtype=None)
    new = WanTokenizer.from_checkpoint(out / "tokenizer.safetensors", dtype=None)
    assert new.vae.config == old.vae.config  # the latent normalisation was kept, not re-measured
    assert encoder_fingerprint(new) == encoder_fingerprint(old)
    clip = torch.rand(1, 3, 9, 16, 16) * 2 - 1
    assert torch.equal(new.encode(clip), old.encode(clip))
    assert not torch.equal(new.decode(new.encode(clip)), old.decode(old.encode(clip)))


@pytest.mark.parametrize("change,needle", [
    ({"init": None}, "tokenizer.init"),                 # a frozen random encoder means nothing
    ({"init": "missing.safetensors"}, "tokenizer.init"),
    ({"dim": 6}, "tokenizer.dim"),                      # the init's width differs
])
def test_bad_decoder_fine_tunes_fail_in_one_line(tmp_path: Path, tiny_dataset: Path, tokenizer_run: Path,
                                                 capsys, change: dict, needle: str) -> None:
    cfg = _decoder_config(tokenizer_run / "tokenizer.safetensors")
    cfg["tokenizer"] = {k: v for k, v in {**cfg["tokenizer"], **change}.items() if v is not None}
    code = _train(tiny_dataset, write_config(tmp_path / "bad.yaml", cfg), tmp_path / "out")
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and needle in err, err
    assert not (tmp_path / "out" / "state.pt").exists()


def test_encoder_fingerprint_follows_the_encoder_only(tmp_path: Path, tokenizer_run: Path) -> None:
    path = tokenizer_run / "tokenizer.safetensors"
    base = encoder_fingerprint(WanTokenizer.from_checkpoint(path, dtype=None))
    # the same tensors saved with other metadata order: another file, the same latents
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    state = load_file(str(path))
    resaved = tmp_path / "resaved.safetensors"
    save_file(state, str(resaved), metadata=dict(reversed(list(meta.items()))))
    assert resaved.read_bytes() != path.read_bytes()
    assert encoder_fingerprint(WanTokenizer.from_checkpoint(resaved, dtype=None)) == base

    def variant(edit) -> str:
        tok = WanTokenizer.from_checkpoint(path, dtype=None)
        with torch.no_grad():
            edit(tok)
        return encoder_fingerprint(tok)

    assert variant(lambda t: t.vae.decoder.conv1.weight.add_(1.0)) == base
    assert variant(lambda t: t.vae.conv2.weight.mul_(2.0)) == base
    assert variant(lambda t: t.vae.conv1.weight.add_(1e-6)) != base
    assert variant(lambda t: next(t.vae.encoder.parameters()).add_(1e-6)) != base
    assert variant(lambda t: setattr(t, "temporal_window", 8)) != base
    assert variant(lambda t: setattr(t.vae, "config", t.vae.config.with_updates(
        latent_std=tuple(s * 2 for s in t.vae.config.latent_std)))) != base
