"""Each VAE layer against the chunk-free formulas of wan_vae_facts.md §2-3, written out directly."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from a2world.vae import StreamCache
from a2world.vae.layers import AttentionBlock, CausalConv3d, Resample, RMSNorm


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _per_frame_2d(x: torch.Tensor, fn) -> torch.Tensor:  # type: ignore[no-untyped-def]
    return torch.stack([fn(x[:, :, t]) for t in range(x.shape[2])], dim=2)


def test_causal_conv_pads_two_frames_in_front_only() -> None:
    conv = CausalConv3d(3, 5, 3, padding=1)
    x = torch.randn(2, 3, 6, 7, 9)
    expected = F.conv3d(F.pad(x, (1, 1, 1, 1, 2, 0)), conv.weight, conv.bias)
    torch.testing.assert_close(conv(x), expected)
    # streaming one frame at a time gives the same frames
    cache = StreamCache()
    streamed = torch.cat([conv(x[:, :, t : t + 1], cache) for t in range(6)], dim=2)
    torch.testing.assert_close(streamed, expected, rtol=1e-5, atol=1e-6)


def test_rms_norm_is_l2_normalise_times_sqrt_c_times_gamma() -> None:
    norm = RMSNorm(6)
    with torch.no_grad():
        norm.gamma.copy_(torch.rand(6, 1, 1, 1) + 0.5)
    x = torch.randn(2, 6, 3, 4, 4)
    length = x.pow(2).sum(dim=1, keepdim=True).sqrt().clamp_min(1e-12)
    torch.testing.assert_close(norm(x), x / length * math.sqrt(6) * norm.gamma)
    assert torch.isfinite(norm(torch.zeros(1, 6, 1, 2, 2))).all()


def test_downsample3d_temporal_rule() -> None:
    layer = Resample(4, "downsample3d")
    x = torch.randn(1, 4, 9, 8, 8)
    conv2d = layer.resample[1]
    spatial = _per_frame_2d(x, lambda f: F.conv2d(F.pad(f, (0, 1, 0, 1)), conv2d.weight, conv2d.bias, stride=2))
    tc = layer.time_conv
    assert tc is not None
    frames = [spatial[:, :, 0]]
    for j in range(1, 5):
        window = spatial[:, :, 2 * j - 2 : 2 * j + 1]
        frames.append(F.conv3d(window, tc.weight, tc.bias)[:, :, 0])
    expected = torch.stack(frames, dim=2)
    out = layer(x)
    assert out.shape == (1, 4, 5, 4, 4)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    cache = StreamCache()
    streamed = torch.cat([layer(x[:, :, :1], cache), layer(x[:, :, 1:5], cache), layer(x[:, :, 5:], cache)], dim=2)
    torch.testing.assert_close(streamed, expected, rtol=1e-5, atol=1e-6)


def test_upsample3d_temporal_rule_never_shows_frame_0_to_time_conv() -> None:
    layer = Resample(4, "upsample3d")
    x = torch.randn(1, 4, 4, 3, 3)
    tc = layer.time_conv
    assert tc is not None
    rest = F.conv3d(F.pad(x[:, :, 1:], (0, 0, 0, 0, 2, 0)), tc.weight, tc.bias)  # (1, 8, 3, 3, 3)
    temporal = [x[:, :, 0]]
    for t in range(3):
        temporal += [rest[:, :4, t], rest[:, 4:, t]]
    conv2d = layer.resample[1]
    expected = torch.stack(
        [F.conv2d(f.repeat_interleave(2, -2).repeat_interleave(2, -1), conv2d.weight, conv2d.bias, padding=1)
         for f in temporal],
        dim=2,
    )
    out = layer(x)
    assert out.shape == (1, 2, 7, 6, 6)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    cache = StreamCache()
    streamed = torch.cat([layer(x[:, :, t : t + 1], cache) for t in range(4)], dim=2)
    torch.testing.assert_close(streamed, expected, rtol=1e-5, atol=1e-6)


def test_attention_is_single_head_per_frame() -> None:
    block = AttentionBlock(8)
    x = torch.randn(2, 8, 3, 4, 5)
    out = block(x)
    for b in range(2):
        for t in range(3):
            f = x[b : b + 1, :, t]
            qkv = block.to_qkv(block.norm(f)).flatten(2)[0]  # (3C, HW)
            q, k, v = qkv[:8].T, qkv[8:16].T, qkv[16:].T
            attn = torch.softmax(q @ k.T / math.sqrt(8), dim=-1) @ v  # (HW, C)
            y = block.proj(attn.T.reshape(1, 8, 4, 5)) + f
            torch.testing.assert_close(out[b : b + 1, :, t], y, rtol=1e-5, atol=1e-5)


def test_resample_rejects_unknown_mode() -> None:
    with pytest.raises(ValueError, match="mode"):
        Resample(4, "downsample1d")
