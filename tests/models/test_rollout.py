"""Tiny end-to-end rollouts on CPU with the VAE helper's tiny Wan2.1 tokenizer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from a2world.rollout import RolloutConfig, WorldModelRollout, encode_history_frames, to_unit
from a2world.sampler import SamplerConfig
from a2world.tokenizer import WanTokenizer

SIZE = 32  # 32 px -> 4×4 latents -> 2×2 tokens per frame


@pytest.fixture(scope="module")
def tokenizer():
    # Single-pass encode/decode: the same latents as streaming, far fewer small ops on a CPU.
    return WanTokenizer(WanTokenizer.tiny(seed=0).vae, temporal_window=None, latent_window=None)


def _images(n_views):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8) for _ in range(n_views)]


def _actions(n):
    a = np.random.default_rng(1).normal(0, 0.01, (n, 14)).astype(np.float32)
    a[:, 6] = 1.0
    return a


def test_rollout_end_to_end(variant, tiny_net, tokenizer):
    net = tiny_net(variant)
    cfg = RolloutConfig(sampler=SamplerConfig(num_steps=2), seed=5)
    roll = WorldModelRollout(net, tokenizer, cfg)
    conds = []
    net.register_forward_pre_hook(lambda _m, args: conds.append(args[0][:, :, ::6].clone()))
    images = _images(2)
    chunks = []
    video = roll.run(images, [2, 0], _actions(45), on_chunk=lambda k, n: chunks.append((k, n)))
    assert video.shape == (2, 41, SIZE, SIZE, 3) and video.dtype == np.uint8
    assert chunks == [(1, 2), (2, 2)]
    np.testing.assert_array_equal(video[:, 0], np.stack(images))
    # Chunk 2 is conditioned on the re-encoded decoded last frame (frame 20) of chunk 1.
    per_chunk = 3  # num_steps + final evaluation
    expected = tokenizer.encode(to_unit(video[:, 20])[:, :, None])[:, :, 0]  # (V, C, h, w)
    torch.testing.assert_close(conds[per_chunk][0].transpose(0, 1), expected.to(conds[0].dtype))
    assert not torch.equal(conds[0], conds[per_chunk])


def test_history_encoding_single_video_quirk(tokenizer):
    rng = np.random.default_rng(2)
    frames = [rng.integers(0, 256, (20, SIZE, SIZE, 3), dtype=np.uint8) for _ in range(2)]
    dev = torch.device("cpu")
    quirk = encode_history_frames(tokenizer, frames, True, dev)
    clean = encode_history_frames(tokenizer, frames, False, dev)
    assert quirk.shape == clean.shape == (1, 16, 10, SIZE // 8, SIZE // 8)
    # View 0's latents only see view-0 frames 0..16 in both; view 1's differ (§4.2 leak).
    torch.testing.assert_close(quirk[:, :, :5], clean[:, :, :5], rtol=1e-4, atol=1e-4)
    assert not torch.allclose(quirk[:, :, 5:], clean[:, :, 5:], atol=1e-3)
    alone = tokenizer.encode(to_unit(frames[1][:17]).transpose(0, 1)[None])
    torch.testing.assert_close(clean[:, :, 5:], alone, rtol=1e-4, atol=1e-4)


def test_rollout_input_validation(tiny_net, tokenizer):
    roll = WorldModelRollout(tiny_net("pretrained"), tokenizer)
    with pytest.raises(ValueError, match="view_ids"):
        roll.run(_images(2), [0, 0], _actions(20))
    with pytest.raises(ValueError, match="actions"):
        roll.run(_images(1), [0], _actions(19))
    with pytest.raises(ValueError, match="images"):
        roll.run([np.zeros((60, 64, 3), np.uint8)], [0], _actions(20))
