"""Chunked streaming equals the single pass; frame counts; causality (fp32, tiny config)."""

from __future__ import annotations

import pytest
import torch

from a2world.vae import VAEConfig, WanVAE, latent_frames, pixel_frames, window_plan


@pytest.fixture(scope="module")
def vae() -> WanVAE:
    torch.manual_seed(11)
    return WanVAE(VAEConfig.tiny()).eval()


@pytest.fixture(scope="module")
def video() -> torch.Tensor:
    g = torch.Generator().manual_seed(5)
    return torch.rand(2, 3, 21, 16, 16, generator=g) * 2 - 1


@pytest.fixture(scope="module")
def single_pass_latents(vae: WanVAE, video: torch.Tensor) -> torch.Tensor:
    return vae.encode(video, temporal_window=None)


def _close(a: torch.Tensor, b: torch.Tensor) -> None:
    torch.testing.assert_close(a, b, rtol=0, atol=1e-5 * max(1.0, b.abs().max().item()))


@pytest.mark.parametrize(
    "plan",
    [
        [1, 4, 4, 4, 4, 4],  # Wan2.1
        [1, 16, 4],  # Cosmos / A2World temporal_window=16
        [1, 20],
        [1, 8, 12],
        [1, 4, 16],
        [5, 16],  # beyond the reference: any chunking works with these caches
        [3, 7, 11],
        [1] * 21,
    ],
)
def test_chunked_encode_equals_single_pass(
    vae: WanVAE, video: torch.Tensor, single_pass_latents: torch.Tensor, plan: list[int]
) -> None:
    _close(vae.encode_chunks(video, plan), single_pass_latents)


@pytest.mark.parametrize("window", [4, 8, 16, 20])
def test_window_encode_equals_single_pass(
    vae: WanVAE, video: torch.Tensor, single_pass_latents: torch.Tensor, window: int
) -> None:
    _close(vae.encode(video, temporal_window=window), single_pass_latents)


@pytest.mark.parametrize("plan", [[1, 1, 1, 1, 1, 1], [1, 5], [1, 2, 3], [2, 4], [3, 3]])
def test_chunked_decode_equals_single_pass(vae: WanVAE, single_pass_latents: torch.Tensor, plan: list[int]) -> None:
    reference = vae.decode(single_pass_latents, latent_window=None)
    _close(vae.decode_chunks(single_pass_latents, plan), reference)


def test_window_plan_follows_the_release_chunking() -> None:
    assert window_plan(21, 16) == [1, 16, 4]
    assert window_plan(21, 4) == [1, 4, 4, 4, 4, 4]
    assert window_plan(40, 16) == [1, 16, 16, 7]  # the history clip's remainder chunk
    assert window_plan(6, 1) == [1, 1, 1, 1, 1, 1]
    assert window_plan(21, None) == [21]


@pytest.mark.parametrize("frames", [1, 5, 9, 13, 21])
def test_frame_counts(vae: WanVAE, frames: int) -> None:
    video = torch.zeros(1, 3, frames, 8, 8)
    z = vae.encode(video)
    assert z.shape[2] == 1 + (frames - 1) // 4 == latent_frames(frames)
    out = vae.decode(z)
    assert out.shape[2] == frames == pixel_frames(z.shape[2])


@pytest.mark.parametrize(("frames", "expected"), [(40, 10), (18, 5), (2, 1), (20, 5)])
def test_any_length_encode_drops_the_tail_and_streams_exactly(vae: WanVAE, frames: int, expected: int) -> None:
    video = torch.rand(1, 3, frames, 8, 8) * 2 - 1
    z = vae.encode(video, any_length=True)  # chunks [1, 16, ..., remainder]
    assert z.shape[2] == expected
    _close(z, vae.encode(video, temporal_window=None, any_length=True))
    with pytest.raises(ValueError, match=f"T={frames}"):
        vae.encode(video)


def test_plan_must_cover_the_video(vae: WanVAE, video: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="summing to 21"):
        vae.encode_chunks(video, [1, 4, 4])
    with pytest.raises(ValueError, match="multiple of 4"):
        vae.encode(video, temporal_window=6)


def test_encoder_is_causal(vae: WanVAE, video: torch.Tensor, single_pass_latents: torch.Tensor) -> None:
    """Latent k depends only on frames <= 4k."""
    n = single_pass_latents.shape[2]
    for k in range(n - 1):
        changed = video.clone()
        changed[:, :, 4 * k + 1 :] = torch.rand_like(changed[:, :, 4 * k + 1 :]) * 2 - 1
        z = vae.encode(changed)
        _close(z[:, :, : k + 1], single_pass_latents[:, :, : k + 1])
        assert (z[:, :, k + 1] - single_pass_latents[:, :, k + 1]).abs().max() > 1e-4


def test_decoder_is_causal(vae: WanVAE, single_pass_latents: torch.Tensor) -> None:
    """The first 1 + 4(k-1) frames depend only on the first k latents."""
    reference = vae.decode(single_pass_latents)
    n = single_pass_latents.shape[2]
    for k in range(1, n):
        changed = single_pass_latents.clone()
        changed[:, :, k:] = torch.randn_like(changed[:, :, k:])
        out = vae.decode(changed)
        visible = 1 + 4 * (k - 1)
        _close(out[:, :, :visible], reference[:, :, :visible])
        assert (out[:, :, visible] - reference[:, :, visible]).abs().max() > 1e-4


def test_batch_elements_do_not_interact(vae: WanVAE, video: torch.Tensor, single_pass_latents: torch.Tensor) -> None:
    alone = vae.encode(video[1:])
    _close(alone, single_pass_latents[1:])
