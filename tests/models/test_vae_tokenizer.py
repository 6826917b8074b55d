"""The tokenizer interface, normalisation, multi-view helpers and the history-encoding variant."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from a2world.tokenizer import (
    CausalVideoTokenizer,
    VideoTokenizer,
    WanTokenizer,
    decode_time_stacked,
    decode_views,
    encode_history,
    encode_time_stacked,
    encode_views,
    frames_to_unit,
    unit_to_frames,
)
from a2world.vae import LATENT_MEAN, LATENT_STD


@pytest.fixture(scope="module")
def tok() -> WanTokenizer:
    return WanTokenizer.tiny(seed=0)


def _video(*shape: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=g) * 2 - 1


def test_tiny_tokenizer_satisfies_the_protocols(tok: WanTokenizer) -> None:
    assert isinstance(tok, VideoTokenizer) and isinstance(tok, CausalVideoTokenizer)
    assert (tok.latent_channels, tok.spatial_compression, tok.temporal_compression) == (16, 8, 4)


def test_tiny_is_deterministic_in_the_seed_and_leaves_global_rng_alone() -> None:
    state = torch.random.get_rng_state()
    a, b, c = WanTokenizer.tiny(seed=1), WanTokenizer.tiny(seed=1), WanTokenizer.tiny(seed=2)
    assert torch.equal(torch.random.get_rng_state(), state)
    wa, wb, wc = (t.vae.encoder.conv1.weight for t in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


@pytest.mark.parametrize("frames", [1, 5, 9])
def test_round_trip_shapes_and_range(tok: WanTokenizer, frames: int) -> None:
    video = _video(2, 3, frames, 16, 24)
    z = tok.encode(video)
    assert z.shape == (2, 16, 1 + (frames - 1) // 4, 2, 3)
    out = tok.decode(z)
    assert out.shape == video.shape
    assert out.dtype == video.dtype
    assert out.min() >= -1 and out.max() <= 1


@pytest.mark.parametrize(
    ("shape", "field"),
    [((1, 3, 6, 16, 16), "T=6"), ((1, 3, 5, 12, 16), "multiples of 8"), ((1, 4, 5, 16, 16), "(B, 3, T, H, W)")],
)
def test_bad_video_is_rejected_naming_the_problem(tok: WanTokenizer, shape: tuple[int, ...], field: str) -> None:
    with pytest.raises(ValueError, match=field.replace("(", r"\(").replace(")", r"\)")):
        tok.encode(torch.zeros(shape))


def test_bad_latents_are_rejected(tok: WanTokenizer) -> None:
    with pytest.raises(ValueError, match="latents must be"):
        tok.decode(torch.zeros(1, 8, 2, 2, 2))


def test_latents_are_normalised_with_the_release_constants(tok: WanTokenizer) -> None:
    video = _video(1, 3, 5, 16, 16)
    vae = tok.vae
    with torch.no_grad():
        raw = vae.conv1(vae.encoder(video))[:, :16]  # mu before normalisation
    mean = torch.tensor(LATENT_MEAN).view(1, -1, 1, 1, 1)
    std = torch.tensor(LATENT_STD).view(1, -1, 1, 1, 1)
    torch.testing.assert_close(tok.encode(video), (raw - mean) / std, rtol=1e-5, atol=1e-5)
    z = torch.randn(1, 16, 2, 2, 2)
    torch.testing.assert_close(vae.denormalize(z), z * std + mean, rtol=1e-6, atol=1e-6)


def test_bf16_normalisation_uses_bf16_inverse_std() -> None:
    vae = WanTokenizer.tiny().vae
    mean, inv_std = vae._latent_stats(torch.zeros(1, dtype=torch.bfloat16))
    # wan_vae_facts.md §4 table: channel 5 and 7 as the release computes them in bf16
    assert inv_std.flatten()[5].item() == 0.5625 and mean.flatten()[5].item() == 0.96484375
    assert inv_std.flatten()[7].item() == 0.48046875 and mean.flatten()[7].item() == 1.5546875


def test_bf16_tokenizer_close_to_fp32(tok: WanTokenizer, tmp_path: Path) -> None:
    path = tmp_path / "tiny.safetensors"
    tok.save(path)
    bf16 = WanTokenizer.from_checkpoint(path)  # bf16 by default, like A2World
    fp32 = WanTokenizer.from_checkpoint(path, dtype=torch.float32)
    assert bf16.dtype == torch.bfloat16 and fp32.dtype == torch.float32
    video = _video(1, 3, 5, 16, 16)
    z32 = fp32.encode(video)
    torch.testing.assert_close(z32, tok.encode(video), rtol=0, atol=0)
    z16 = bf16.encode(video)
    assert z16.dtype == torch.float32  # computed in bf16, returned in the caller's dtype
    scale = z32.abs().max().item()
    assert 0 < (z16 - z32).abs().max().item() < 0.05 * scale


def test_pixel_conversions() -> None:
    frames = torch.arange(256, dtype=torch.uint8).view(1, 1, 1, 16, 16)
    unit = frames_to_unit(frames)
    assert unit.min().item() == -1.0 and unit.max().item() == 1.0
    # truncation, not rounding, as the release rollout converts: a round trip may lose 1 level
    back = unit_to_frames(unit).int() - frames.int()
    assert back.min().item() >= -1 and back.max().item() == 0
    assert unit_to_frames(torch.tensor([-3.0, 0.999, 3.0])).tolist() == [0, 254, 255]
    with pytest.raises(ValueError, match="uint8"):
        frames_to_unit(unit)


def test_views_are_encoded_independently(tok: WanTokenizer) -> None:
    views = _video(2, 3, 3, 5, 16, 16)
    z = encode_views(tok, views)
    assert z.shape == (2, 3, 16, 2, 2, 2)
    torch.testing.assert_close(z[1, 2], tok.encode(views[1, 2:3])[0], rtol=1e-4, atol=1e-5)
    out = decode_views(tok, z)
    assert out.shape == views.shape
    torch.testing.assert_close(out[0, 1], tok.decode(z[0, 1:2])[0], rtol=1e-4, atol=1e-5)


def test_time_stacked_layout_matches_per_view_encoding(tok: WanTokenizer) -> None:
    views = _video(1, 2, 3, 5, 16, 16, seed=2)
    stacked = torch.cat([views[:, 0], views[:, 1]], dim=2)  # (B, 3, 2·5, H, W)
    z = encode_time_stacked(tok, stacked, frames_per_view=5)
    per_view = encode_views(tok, views)
    torch.testing.assert_close(z, torch.cat([per_view[:, 0], per_view[:, 1]], dim=2), rtol=0, atol=0)
    out = decode_time_stacked(tok, z, n_views=2)
    assert out.shape == stacked.shape
    with pytest.raises(ValueError, match="frames_per_view"):
        encode_time_stacked(tok, stacked, frames_per_view=3)


def test_release_history_is_one_causal_clip_split_in_two(tok: WanTokenizer) -> None:
    history = _video(1, 2, 3, 20, 16, 16, seed=3)
    z = encode_history(tok, history)
    assert z.shape == (1, 16, 2, 5, 2, 2)  # 40 frames → 10 latents → 2 views × 5
    # view 1 is not its own clip: its latents differ from encoding view 1 alone
    alone = encode_history(tok, history, release_quirk=False)
    assert alone.shape == (1, 16, 2, 5, 2, 2)
    torch.testing.assert_close(z[:, :, 0], alone[:, :, 0], rtol=1e-5, atol=1e-5)
    assert (z[:, :, 1] - alone[:, :, 1]).abs().max() > 1e-3
    # a2world_release_facts.md §4.2: view-1 frames 17-19 (pixel 37-39) do not reach any latent
    changed = history.clone()
    changed[:, 1, :, 17:] = -changed[:, 1, :, 17:]
    torch.testing.assert_close(encode_history(tok, changed), z, rtol=0, atol=0)
    # ...while view-1 frame 16 (pixel 36) does
    changed = history.clone()
    changed[:, 1, :, 16] = -changed[:, 1, :, 16]
    assert (encode_history(tok, changed)[:, :, 1, 4] - z[:, :, 1, 4]).abs().max() > 1e-4


def test_release_history_rejects_layouts_the_release_never_encodes(tok: WanTokenizer) -> None:
    with pytest.raises(ValueError, match="V=3, Th=20"):
        encode_history(tok, torch.zeros(1, 3, 3, 20, 16, 16))
