"""Backbone structure and math: key layout, tiny forward/backward, RoPE, patch order, attention."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from a2world.attention import CrossAttention, CrossViewAttention
from a2world.conditioning import Patchify, unpatchify
from a2world.config import released_config, tiny_config
from a2world.dit import build_dit
from a2world.release_layout import EXPECTED_KEY_COUNT, released_layout
from a2world.rope import RotaryPosition3D, apply_rope

# a2world_release_facts.md §1.1 / §2.4
RELEASED_PARAMS = {"pretrained": 2_527_345_180, "sim": 2_514_593_693}
BLOCK_PARAMS = 85_988_096
UNUSED = {
    "pretrained": ("black_to_crossattn_emb.",),
    "sim": ("action_to_crossattn_emb.", "history_tokenizer.pose_mlp.", "history_tokenizer.gate."),
}


@pytest.mark.parametrize("variant", ["pretrained", "sim"])
def test_meta_build_matches_release_layout(variant):
    net = build_dit(released_config(variant), "meta")
    state = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert len(state) == EXPECTED_KEY_COUNT[variant]
    expected = released_layout(variant)
    assert set(state) == set(expected)
    assert {k: s for k, s in state.items() if expected[k] != s} == {}
    assert sum(p.numel() for p in net.parameters()) == RELEASED_PARAMS[variant]
    assert sum(b.numel() for b in net.buffers()) == 684
    assert sum(p.numel() for p in net.blocks[0].parameters()) == BLOCK_PARAMS


def test_tiny_forward_backward(variant, tiny_net, tiny_inputs):
    net = tiny_net(variant).train()
    inputs = tiny_inputs(variant, batch=2)
    out = net(**inputs)
    assert out.shape == inputs["x"].shape
    out.square().mean().backward()
    no_grad = {n for n, p in net.named_parameters() if p.grad is None}
    # Exactly the documented unused weights get no gradient (facts §9 item 9).
    assert no_grad == {n for n, _ in net.named_parameters() if n.startswith(UNUSED[variant])}
    for n, p in net.named_parameters():
        if p.grad is not None:
            assert torch.isfinite(p.grad).all(), n
    assert any(p.grad.abs().sum() > 0 for n, p in net.named_parameters() if n.startswith("blocks.0."))


def _formula_angles(head_dim, t, h, w, fps_mod=True):
    """Stated formula in float64 (facts §1.3, §10)."""
    dh = head_dim // 6 * 2
    dt = head_dim - 2 * dh
    th_hw = 1e4 * 3.0 ** (dh / (dh - 2))
    th_t = 1e4 * 0.25 ** (dt / (dt - 2))
    ft = th_t ** (-np.arange(0, dt, 2) / dt)
    fhw = th_hw ** (-np.arange(0, dh, 2) / dh)
    rows = []
    for k in range(t):
        for y in range(h):
            for x in range(w):
                pos_t = k * 24 / 10 if fps_mod else k
                half = np.concatenate([pos_t * ft, y * fhw, x * fhw])
                rows.append(np.concatenate([half, half]))
    return np.array(rows)


def test_rope_fp32_table_matches_formula():
    cfg = released_config("pretrained")
    rope = RotaryPosition3D(cfg)
    table = rope.angles(6, 16, 16, bf16=False).double().numpy()
    assert table.shape == (6 * 256, 128)
    ref = _formula_angles(128, 6, 16, 16)
    np.testing.assert_allclose(table, ref, rtol=2e-6, atol=2e-5)


def test_rope_fps_modulation_can_be_disabled():
    from a2world.config import QuirkOptions

    cfg = tiny_config("pretrained", quirks=QuirkOptions(rope_fps_modulation=False, rope_bf16_angles=False))
    table = RotaryPosition3D(cfg).angles(6, 2, 2).double().numpy()
    np.testing.assert_allclose(table, _formula_angles(64, 6, 2, 2, fps_mod=False), rtol=2e-6, atol=2e-6)


def test_rope_bf16_quirk_reproduces_reference_rounding():
    rope = RotaryPosition3D(released_config("pretrained"))
    bf16 = rope.angles(6, 16, 16, bf16=True)
    fp32 = rope.angles(6, 16, 16, bf16=False)
    # Column 0 has frequency 1, so it holds the temporal positions (facts §1.3).
    positions = bf16.reshape(6, 256, 128)[:, 0, 0]
    np.testing.assert_allclose(positions.numpy(), [0, 2.40625, 4.8125, 7.21875, 9.625, 12.0])
    err = (bf16 - fp32).abs().max().item()
    assert 0.01 < err < 0.06  # the facts quote about 0.047 rad


def test_rope_rotate_half_pairs_channel_i_with_i_plus_half():
    angles = torch.full((1, 128), 0.3)
    for i in (0, 21, 63):
        e = torch.zeros(1, 1, 1, 128)
        e[..., i] = 1.0
        out = apply_rope(e, angles)[0, 0, 0]
        expected = torch.zeros(128)
        expected[i] = math.cos(0.3)
        expected[i + 64] = math.sin(0.3)
        torch.testing.assert_close(out, expected)


def test_rope_same_positions_for_every_view():
    net = build_dit(tiny_config("pretrained"))
    one = net.pos_embedder_options.angles(1, 6, 4, 4)
    three = net.pos_embedder_options.angles(3, 6, 4, 4)
    torch.testing.assert_close(three, one.repeat(3, 1))
    with pytest.raises(ValueError, match="n_views"):
        net.pos_embedder_options.angles(5, 6, 4, 4)


def test_patchify_and_unpatchify_feature_orders():
    c, t, h, w = 25, 1, 2, 2
    x = torch.arange(c * t * h * w, dtype=torch.float32).reshape(1, c, t, h, w)
    feats = Patchify(2, 1)(x)[0, 0, 0, 0]
    for ch in range(c):
        for dy in range(2):
            for dx in range(2):
                assert feats[ch * 4 + dy * 2 + dx] == x[0, ch, 0, dy, dx]
    out_feats = torch.arange(64, dtype=torch.float32).reshape(1, 1, 1, 1, 64)
    img = unpatchify(out_feats, 2, 1, 16)
    for ch in range(16):
        for dy in range(2):
            for dx in range(2):
                assert img[0, ch, 0, dy, dx] == dy * 32 + dx * 16 + ch


def test_cross_view_attention_is_per_frame_and_other_views_only():
    torch.manual_seed(0)
    attn = CrossViewAttention(64, 2)
    v, t, s = 2, 3, 4
    x = torch.randn(1, v * t * s, 64)
    base = attn(x, v, t).reshape(v, t, s, 64)

    def bumped(view, frame):
        y = x.clone().reshape(v, t, s, 64)
        y[view, frame] += 1.0
        return attn(y.reshape(1, -1, 64), v, t).reshape(v, t, s, 64)

    out = bumped(1, 2)  # change view 1 at frame 2
    torch.testing.assert_close(out[0, :2], base[0, :2])  # view 0, other frames: unchanged
    assert not torch.allclose(out[0, 2], base[0, 2])  # view 0, same frame: changed
    out = bumped(0, 1)  # changing a view's own keys only changes its queries' output rows
    torch.testing.assert_close(out[1, 0], base[1, 0])
    assert torch.equal(attn(x[:, : t * s], 1, t), torch.zeros(1, t * s, 64))


def test_constant_context_single_token_equals_many_tokens():
    torch.manual_seed(0)
    attn = CrossAttention(64, 2, context_dim=32)
    x = torch.randn(2, 2 * 12, 64)
    token = torch.randn(2, 1, 32)
    one = attn(x, token[:, None].expand(2, 2, 1, 32))
    many = attn(x, token[:, None].expand(2, 2, 512, 32))
    torch.testing.assert_close(one, many, rtol=1e-5, atol=1e-6)


def test_view_permutation_equivariance(tiny_net, tiny_inputs):
    net = tiny_net("pretrained")
    inp = tiny_inputs("pretrained", views=(2, 0, 1))
    out = net(**inp)
    perm = [2, 0, 1]

    def permute_frames(t, dim):
        parts = t.chunk(3, dim=dim)
        return torch.cat([parts[p] for p in perm], dim=dim)

    swapped = dict(inp)
    swapped["x"] = permute_frames(inp["x"], 2)
    swapped["timesteps"] = permute_frames(inp["timesteps"], 1)
    swapped["condition_mask"] = permute_frames(inp["condition_mask"], 1)
    swapped["view_ids"] = inp["view_ids"][:, perm]
    torch.testing.assert_close(net(**swapped), permute_frames(out, 2), rtol=1e-4, atol=1e-5)


def test_timestep_bf16_quirk(tiny_net, tiny_inputs):
    from a2world.config import QuirkOptions

    inp = tiny_inputs("pretrained")
    a, b = dict(inp), dict(inp)
    a["timesteps"] = torch.full_like(inp["timesteps"], 0.9921875)  # exactly representable in bf16
    b["timesteps"] = a["timesteps"] + 1e-4
    quirky = tiny_net("pretrained")
    assert torch.equal(quirky(**a), quirky(**b))
    exact = tiny_net("pretrained", quirks=QuirkOptions(timestep_bf16=False))
    assert not torch.equal(exact(**a), exact(**b))


def test_sim_requires_history(tiny_net, tiny_inputs):
    net = tiny_net("sim")
    inp = tiny_inputs("sim")
    inp["history"] = None
    with pytest.raises(ValueError, match="history"):
        net(**inp)


def test_bad_shapes_raise_value_errors(tiny_net, tiny_inputs):
    net = tiny_net("pretrained")
    inp = tiny_inputs("pretrained")
    with pytest.raises(ValueError, match="timesteps"):
        net(**{**inp, "timesteps": inp["timesteps"][:, :5]})
    with pytest.raises(ValueError, match="actions"):
        net(**{**inp, "actions": inp["actions"][:, :19]})
    with pytest.raises(ValueError, match="view_ids"):
        net(**{**inp, "view_ids": inp["view_ids"][0]})
