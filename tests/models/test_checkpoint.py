"""Checkpoint import (reference `.pt` layout) and our safetensors format: strictness, RoPE buffers."""

from __future__ import annotations

import logging

import pytest
import torch

from a2world.checkpoint import (
    CheckpointMismatchError,
    check_rope_buffers,
    load_checkpoint,
    load_reference_checkpoint,
    save_checkpoint,
)
from a2world.config import released_config, tiny_config
from a2world.release_layout import detect_variant
from a2world.rope import RotaryPosition3D


def _reference_file(net, path, mutate=None):
    """Write `net` as the release does: plain dict, `net.` prefix, every tensor bf16."""
    state = {f"net.{k}": v.detach().to(torch.bfloat16) for k, v in net.state_dict().items()}
    if mutate:
        mutate(state)
    torch.save(state, path)
    return path


def test_reference_import_roundtrip(variant, tiny_net, tiny_inputs, tmp_path):
    net = tiny_net(variant)
    path = _reference_file(net, tmp_path / "ref.pt")
    loaded = load_reference_checkpoint(path, config=tiny_config(variant))
    assert loaded.config.variant == variant
    assert loaded.dtype == torch.bfloat16
    for k, v in net.state_dict().items():
        if "pos_embedder" not in k:
            assert torch.equal(loaded.state_dict()[k], v.to(torch.bfloat16)), k
    inp = tiny_inputs(variant)
    expected = net.to(torch.bfloat16)(**inp)
    torch.testing.assert_close(loaded(**inp), expected)


def test_strict_import_lists_every_problem(tiny_net, tmp_path):
    net = tiny_net("pretrained")

    def mutate(state):
        del state["net.blocks.0.mlp.layer1.weight"]
        state["net.blocks.0.extra.weight"] = torch.zeros(3)
        state["net.view_embeddings.weight"] = torch.zeros(5, 7)

    path = _reference_file(net, tmp_path / "bad.pt", mutate)
    with pytest.raises(CheckpointMismatchError) as err:
        load_reference_checkpoint(path, config=tiny_config("pretrained"))
    msg = str(err.value)
    assert "blocks.0.mlp.layer1.weight" in msg and "blocks.0.extra.weight" in msg
    assert "view_embeddings.weight" in msg and "(5, 7)" in msg
    rep = err.value.report
    assert rep.missing == ["blocks.0.mlp.layer1.weight"]
    assert rep.unexpected == ["blocks.0.extra.weight"]
    assert rep.mis_shaped == [("view_embeddings.weight", (5, 7), (4, 7))]


def test_variant_from_keys(tiny_net, tmp_path):
    assert detect_variant(["net.history_tokenizer.down.0.weight", "net.x"]) == "sim"
    assert detect_variant(["net.blocks.0.cross_attn.q_proj.weight"]) == "pretrained"
    path = _reference_file(tiny_net("sim"), tmp_path / "sim.pt")
    with pytest.raises(ValueError, match="variant"):
        load_reference_checkpoint(path, config=tiny_config("pretrained"))


def test_rope_buffers_regenerated_not_trusted(tiny_net, tmp_path, caplog):
    net = tiny_net("pretrained")

    def mutate(state):
        state["net.pos_embedder_options.n_cameras_2.dim_spatial_range"] += 1.0

    path = _reference_file(net, tmp_path / "rope.pt", mutate)
    with caplog.at_level(logging.WARNING):
        loaded = load_reference_checkpoint(path, config=tiny_config("pretrained"), dtype=torch.float32)
    assert "n_cameras_2.dim_spatial_range" in caplog.text
    fresh = RotaryPosition3D(tiny_config("pretrained"))
    buf = loaded.pos_embedder_options["n_cameras_2"].dim_spatial_range
    assert buf.dtype == torch.float32 and torch.equal(buf, fresh.dim_spatial_range)


def test_regenerated_rope_buffers_match_a_bf16_build():
    # What a release-config build stores after `.to(bfloat16)` (the released files hold these).
    rope = RotaryPosition3D(released_config("pretrained")).to(torch.bfloat16)
    stored = {f"x.{k}": v for k, v in rope.state_dict().items()}
    ref = rope.reference_buffers(torch.bfloat16)
    for k, v in ref.items():
        assert torch.equal(stored[f"x.{k}"], v)
    assert stored["x.seq"].shape == (128,) and stored["x.dim_spatial_range"].shape == (21,)
    assert stored["x.dim_temporal_range"].shape == (22,)

    class Holder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.x = RotaryPosition3D(released_config("pretrained"))

    assert check_rope_buffers(stored, Holder()) == []


def test_safetensors_roundtrip_and_strictness(variant, tiny_net, tiny_inputs, tmp_path):
    net = tiny_net(variant, num_blocks=1)
    out = save_checkpoint(net, tmp_path / "ckpt")
    assert (out / "model.safetensors").exists() and (out / "config.json").exists()
    loaded = load_checkpoint(out)
    assert loaded.config == net.config
    inp = tiny_inputs(variant)
    for k, v in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    torch.testing.assert_close(loaded(**inp), net(**inp), rtol=1e-5, atol=1e-5)
    # a config that disagrees with the weights is rejected with the offending keys
    (out / "config.json").write_text((out / "config.json").read_text().replace('"num_blocks": 1', '"num_blocks": 2'))
    with pytest.raises(CheckpointMismatchError, match="blocks.1"):
        load_checkpoint(out)
