"""The shadow's fast path (``SinglePassTokenizer``, the batched latent score) computes what the release's
streaming tokenizer and a per-view latent encode compute, up to float rounding; bench/shadow_window.py
measures how much faster it is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from a2w.shadow.predictor import Keyframe, ShadowPredictor, Window, load_rollout
from a2w.shadow.scores import view_score
from a2world.rollout import to_unit
from a2world.tokenizer import SinglePassTokenizer, WanTokenizer
from tests.shadow.support import tiny_worldmodel

VIEWS = ("left_wrist", "right_wrist", "front")
SIZE = 16


def _close(a: torch.Tensor, b: torch.Tensor) -> None:
    # the VAE tests' bound for chunked against single-pass (tests/models/test_vae_chunking.py)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-5 * max(1.0, b.abs().max().item()))


@pytest.fixture(scope="module")
def tokenizer() -> WanTokenizer:
    return WanTokenizer.tiny(seed=3)


@pytest.mark.parametrize("batch,frames", [(1, 1), (3, 1), (2, 5), (3, 21), (1, 57)])
def test_single_pass_tokenizer_encodes_and_decodes_as_the_streaming_one(tokenizer: WanTokenizer, batch: int,
                                                                        frames: int) -> None:
    fast = SinglePassTokenizer(tokenizer)
    g = torch.Generator().manual_seed(batch * 100 + frames)
    video = torch.rand(batch, 3, frames, SIZE, SIZE, generator=g) * 2 - 1
    with torch.inference_mode():
        latents = tokenizer.encode(video)
        _close(fast.encode(video), latents)
        _close(fast.decode(latents), tokenizer.decode(latents))
        # the history's single causal video has a length of any kind: 3 views x 20 frames
        longer = torch.rand(1, 3, frames + 3, SIZE, SIZE, generator=g) * 2 - 1
        _close(fast.encode_any_length(longer), tokenizer.encode_any_length(longer))
    assert fast.decode(latents).is_contiguous() and fast.encode(video).is_contiguous()


def test_single_pass_tokenizer_leaves_the_wrapped_one_as_it_was(tokenizer: WanTokenizer) -> None:
    before = {k: (v.clone(), v.is_contiguous()) for k, v in tokenizer.vae.state_dict().items()}
    fast = SinglePassTokenizer(tokenizer)
    after = tokenizer.vae.state_dict()
    assert all(torch.equal(after[k], v) and after[k].is_contiguous() == c for k, (v, c) in before.items())
    assert (tokenizer.temporal_window, tokenizer.latent_window) == (16, 1)  # still the release's streaming
    assert (fast.latent_channels, fast.spatial_compression, fast.temporal_compression, fast.dtype) == \
        (tokenizer.latent_channels, tokenizer.spatial_compression, tokenizer.temporal_compression, tokenizer.dtype)
    assert any(not p.is_contiguous() for p in fast.vae.parameters())  # its own copy is channels-last
    moved = SinglePassTokenizer(WanTokenizer.tiny(seed=3)).to(dtype=torch.float64)  # both move, not only one
    assert moved.dtype == moved.base.dtype == torch.float64
    assert all(p.dtype == torch.float64 for p in moved.vae.parameters())
    assert any(not p.is_contiguous() for p in moved.vae.parameters())


def test_a_clip_equal_to_the_last_one_encoded_is_not_encoded_again(tokenizer: WanTokenizer) -> None:
    fast = SinglePassTokenizer(tokenizer)
    calls: list[tuple[int, ...]] = []
    encode = fast.vae.encode
    fast.vae.encode = lambda x, **kw: (calls.append(tuple(x.shape)), encode(x, **kw))[1]
    g = torch.Generator().manual_seed(7)
    clip = torch.rand(1, 3, 9, SIZE, SIZE, generator=g) * 2 - 1
    with torch.inference_mode():
        first = fast.encode(clip)
        frame = fast.encode(clip[:, :, :1])  # single frames neither hit nor displace the remembered clip
        again = fast.encode(clip.clone())
        assert len(calls) == 2 and torch.equal(again, first)
        for changed in (clip.clone().index_fill_(2, torch.tensor([8]), 0.5),  # its last frame
                        clip[:, :, :5].clone(),  # shorter
                        clip.double()):  # another dtype
            calls.clear()
            fast._last = (False, clip.clone(), first.clone())
            _close(fast.encode(changed).float(), tokenizer.encode(changed.to(torch.float32)).float())
            assert len(calls) == 1, changed.shape
        calls.clear()
        fast.encode(clip)
        assert fast.encode_any_length(clip).shape == first.shape and len(calls) == 2  # another call, not reused
        assert torch.equal(fast.encode(clip[:, :, :1]), frame) and len(calls) == 3


def _windows(n: int, seed: int) -> list[Window]:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (len(VIEWS), SIZE, SIZE, 3)).astype(np.float64)
    out = []
    for i in range(n):
        keys = [Keyframe(2.0 * i + 0.1 * k,
                         {v: np.clip(np.roll(base[j], i * 20 + k, axis=1) + 5 * k, 0, 255).astype(np.uint8)
                          for j, v in enumerate(VIEWS)}) for k in range(21)]
        out.append(Window(i, keys, rng.normal(0.0, 0.01, (20, 14)).astype(np.float32)))
    return out


def _straightforward_scores(predictor: ShadowPredictor, clips: np.ndarray, win: Window) -> list[float]:
    """Each view's score as the release's tokenizer gives it, one latent encode per view."""
    tok = predictor.rollout.tokenizer
    out = []
    for i, v in enumerate(VIEWS):
        real = np.stack([k.frames[v] for k in win.keys[1:]])
        with torch.inference_mode():
            lat = tok.encode(to_unit(np.stack([clips[i, -1], real[-1]]))[:, :, None])
        mse = float((lat[0].float() - lat[1].float()).pow(2).mean())
        out.append(view_score(v, clips[i, 1:], real, mse, predictor.latent_weight).score)
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_fast_rollout_predicts_and_scores_windows_as_the_release_path(tmp_path: Path, seed: int) -> None:
    ckpt = tiny_worldmodel(tmp_path, seed=seed)
    release = ShadowPredictor(load_rollout(ckpt, (SIZE, SIZE), 2, 0, fast_vae=False), VIEWS, (0, 1, 2), seed=seed)
    fast = ShadowPredictor(load_rollout(ckpt, (SIZE, SIZE), 2, 0), VIEWS, (0, 1, 2), seed=seed)
    assert isinstance(fast.rollout.tokenizer, SinglePassTokenizer)
    assert not isinstance(release.rollout.tokenizer, SinglePassTokenizer)
    for win in _windows(3, seed):  # three windows: the later ones predict from a sampled history
        slow_scores, fast_scores = release.score(win), fast.score(win)
        a, b = release.last_prediction, fast.last_prediction
        assert a is not None and b is not None and a.shape == b.shape == (3, 21, SIZE, SIZE, 3)
        # uint8 frames: rounding can push a value across a truncation step, never further
        diff = np.abs(a.astype(int) - b.astype(int))
        assert diff.max() <= 1 and (diff > 0).mean() < 0.01, (diff.max(), (diff > 0).mean())
        np.testing.assert_allclose([s.score for s in fast_scores], [s.score for s in slow_scores], rtol=0, atol=2e-3)
        # the batched latent score equals one encode per view, on the same predicted frames
        np.testing.assert_allclose([s.score for s in fast_scores], _straightforward_scores(release, b, win),
                                   rtol=0, atol=1e-5)
    assert release.history.n_nodes == fast.history.n_nodes == 20 + 3 * 20


def test_the_latent_score_encodes_once_per_window_and_only_views_with_their_frames(tmp_path: Path) -> None:
    ckpt = tiny_worldmodel(tmp_path)
    predictor = ShadowPredictor(load_rollout(ckpt, (SIZE, SIZE), 1, 0), VIEWS, (0, 1, 2))
    win = _windows(1, 0)[0]
    clips = predictor.predict(win.keys[0].frames, win.actions, None, 0)
    tok = predictor.rollout.tokenizer
    batches: list[int] = []
    encode = tok.encode
    tok.encode = lambda x: (batches.append(x.shape[0]), encode(x))[1]
    full = predictor.compare(clips, [k.frames for k in win.keys[1:]])
    assert batches == [2 * len(VIEWS)] and all(np.isfinite(s.score) and s.latent > 0 for s in full)
    batches.clear()
    gap = predictor.compare(clips, [None if i == 5 else k.frames for i, k in enumerate(win.keys[1:])])
    assert batches == [] and all(np.isinf(s.score) and s.latent == 0.0 for s in gap)  # 19 frames: nothing to encode
    predictor.latent_weight = 0.0
    plain = predictor.compare(clips, [k.frames for k in win.keys[1:]])
    assert batches == [] and [s.ssim for s in plain] == [s.ssim for s in full]
    assert all(s.score == pytest.approx(1 - s.ssim) for s in plain)


def test_a_still_scene_encodes_its_history_once_and_scores_as_the_release_path(tmp_path: Path) -> None:
    ckpt = tiny_worldmodel(tmp_path)
    release = ShadowPredictor(load_rollout(ckpt, (SIZE, SIZE), 1, 0, fast_vae=False), VIEWS, (0, 1, 2))
    fast = ShadowPredictor(load_rollout(ckpt, (SIZE, SIZE), 1, 0), VIEWS, (0, 1, 2))
    clips: list[int] = []
    vae = fast.rollout.tokenizer.vae
    encode = vae.encode
    vae.encode = lambda x, **kw: (clips.append(x.shape[2]) if x.shape[2] > 1 else None, encode(x, **kw))[1]
    still = _windows(1, 0)[0].keys[0].frames
    for i in range(3):
        win = Window(i, [Keyframe(2.0 * i + 0.1 * k, still) for k in range(21)], np.zeros((20, 14), np.float32))
        np.testing.assert_allclose([s.score for s in fast.score(win)], [s.score for s in release.score(win)],
                                   rtol=0, atol=2e-3)
    assert clips == [57]  # 3 views x 20 frames as one causal video, trimmed to 1 + 4k: encoded once
