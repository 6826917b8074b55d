"""The video tokenizer interface the world models use, and its Wan2.1 VAE implementation.

Videos are (B, 3, T, H, W) float in [-1, 1] with T = 1 + 4k; latents are normalised
(B, 16, 1 + (T-1)//4, H/8, W/8). Multi-view helpers encode each view on its own (views are
independent clips), and :func:`encode_history` reproduces how the release encodes the two-view
history as one causal video.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from a2world.vae import RELEASE_TEMPORAL_WINDOW, VAEConfig, WanVAE, latent_frames
from a2world.vae.weights import load_vae, save_vae

# The release pipeline infers its view count as frames // 21 (a2world_release_facts.md §4.2, §5).
RELEASE_FRAMES_PER_VIEW = 21


@runtime_checkable
class VideoTokenizer(Protocol):
    """Encodes pixel video to normalised latents and back."""

    @property
    def latent_channels(self) -> int: ...

    @property
    def spatial_compression(self) -> int: ...

    @property
    def temporal_compression(self) -> int: ...

    def encode(self, video: Tensor) -> Tensor:
        """(B, 3, 1+4k, H, W) in [-1, 1] → normalised latents (B, C, 1+k, H/s, W/s)."""
        ...

    def decode(self, latents: Tensor) -> Tensor:
        """Normalised latents (B, C, n, h, w) → video (B, 3, 1+4(n-1), h·s, w·s) in [-1, 1]."""
        ...


@runtime_checkable
class CausalVideoTokenizer(VideoTokenizer, Protocol):
    """A tokenizer that can also encode clips of any length (trailing frames may be dropped)."""

    def encode_any_length(self, video: Tensor) -> Tensor: ...


class WanTokenizer:
    """:class:`VideoTokenizer` backed by :class:`~a2world.vae.WanVAE`.

    Encoding streams frame 0 and then ``temporal_window`` frames per step (16, as A2World);
    decoding streams ``latent_window`` latents per step (1, as the release). Decoded video is
    clamped to [-1, 1]; the bare VAE does not clamp.
    """

    def __init__(
        self,
        vae: WanVAE,
        *,
        temporal_window: int | None = RELEASE_TEMPORAL_WINDOW,
        latent_window: int | None = 1,
    ) -> None:
        tc = vae.config.temporal_compression
        if temporal_window is not None and (temporal_window < tc or temporal_window % tc):
            raise ValueError(f"temporal_window must be a positive multiple of {tc}, got {temporal_window}")
        if latent_window is not None and latent_window < 1:
            raise ValueError(f"latent_window must be >= 1, got {latent_window}")
        self.vae = vae.eval()
        self.temporal_window = temporal_window
        self.latent_window = latent_window

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def tiny(
        cls,
        seed: int = 0,
        *,
        dim: int = 8,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> WanTokenizer:
        """Randomly initialised tokenizer with the release architecture at width ``dim``.

        The same seed gives the same weights on every machine; the global RNG is left untouched.
        """
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            vae = WanVAE(VAEConfig.tiny(dim))
        return cls(vae.to(device=device, dtype=dtype))

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        *,
        dtype: torch.dtype | None = torch.bfloat16,
        device: torch.device | str = "cpu",
        allow_nonfinite: bool = False,
    ) -> WanTokenizer:
        """Load our safetensors VAE file or the released ``tokenizer.pth`` (bf16 by default, as A2World)."""
        return cls(load_vae(path, dtype=dtype, device=device, allow_nonfinite=allow_nonfinite))

    def save(self, path: str | Path) -> None:
        save_vae(self.vae, path)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> WanTokenizer:
        self.vae.to(device=device, dtype=dtype)
        return self

    # ---- interface ----------------------------------------------------------------------
    @property
    def latent_channels(self) -> int:
        return self.vae.config.z_dim

    @property
    def spatial_compression(self) -> int:
        return self.vae.config.spatial_compression

    @property
    def temporal_compression(self) -> int:
        return self.vae.config.temporal_compression

    @property
    def dtype(self) -> torch.dtype:
        return self.vae.compute_dtype

    @property
    def device(self) -> torch.device:
        return self.vae.conv2.weight.device

    def latent_frames(self, frames: int) -> int:
        return latent_frames(frames, self.temporal_compression)

    def encode(self, video: Tensor) -> Tensor:
        return self.vae.encode(video, temporal_window=self.temporal_window)

    def encode_any_length(self, video: Tensor) -> Tensor:
        """Encode T frames, T not necessarily 1 + 4k: 1 + (T-1)//4 latents, the tail dropped."""
        return self.vae.encode(video, temporal_window=self.temporal_window, any_length=True)

    def decode(self, latents: Tensor) -> Tensor:
        return self.vae.decode(latents, latent_window=self.latent_window).clamp_(-1.0, 1.0)


# ---- pixel conversions ---------------------------------------------------------------------
def frames_to_unit(frames: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """uint8 pixels → [-1, 1] as v/127.5 - 1, computed in ``dtype`` (the release uses bf16)."""
    if frames.dtype != torch.uint8:
        raise ValueError(f"frames must be uint8, got dtype {frames.dtype}")
    # a2world_release_facts.md §3.4 / wan_vae_facts.md §4: each op rounds to ``dtype``
    return frames.to(dtype) / 127.5 - 1.0


def unit_to_frames(video: Tensor) -> Tensor:
    """[-1, 1] → uint8 as clip((v + 1)·127.5, 0, 255) in float32, truncated like the release rollout."""
    # a2world_release_facts.md §3.5 step 4
    return ((video.float() + 1.0) * 127.5).clamp_(0.0, 255.0).to(torch.uint8)


# ---- multi-view helpers --------------------------------------------------------------------
def _check_views(x: Tensor, name: str, channels: int | None = None) -> None:
    if x.dim() != 6 or (channels is not None and x.shape[2] != channels):
        c = channels if channels is not None else "C"
        raise ValueError(f"{name} must be (B, V, {c}, T, H, W), got shape {tuple(x.shape)}")


def encode_views(tokenizer: VideoTokenizer, views: Tensor) -> Tensor:
    """(B, V, 3, T, H, W) → (B, V, C, T_lat, h, w); every view is its own causal clip.

    Views are folded into the batch, which is exact: nothing in the VAE mixes batch elements
    (wan_vae_facts.md §5).
    """
    _check_views(views, "views", 3)
    b, v = views.shape[:2]
    latents = tokenizer.encode(views.flatten(0, 1))
    return latents.unflatten(0, (b, v))


def decode_views(tokenizer: VideoTokenizer, latents: Tensor) -> Tensor:
    """(B, V, C, T_lat, h, w) → (B, V, 3, T, H, W), each view decoded on its own."""
    _check_views(latents, "latents", tokenizer.latent_channels)
    b, v = latents.shape[:2]
    return tokenizer.decode(latents.flatten(0, 1)).unflatten(0, (b, v))


def encode_time_stacked(
    tokenizer: VideoTokenizer, video: Tensor, frames_per_view: int = RELEASE_FRAMES_PER_VIEW
) -> Tensor:
    """The release pipeline's layout: views concatenated along time, (B, 3, V·T, H, W).

    Returns (B, C, V·T_lat, h, w), view-major along time, each view encoded separately.
    """
    if video.dim() != 5:
        raise ValueError(f"video must be (B, 3, V·T, H, W), got shape {tuple(video.shape)}")
    total = video.shape[2]
    if frames_per_view < 1 or total % frames_per_view:
        raise ValueError(f"video has {total} frames, not a multiple of frames_per_view={frames_per_view}")
    n_views = total // frames_per_view
    views = video.unflatten(2, (n_views, frames_per_view)).permute(0, 2, 1, 3, 4, 5)
    latents = encode_views(tokenizer, views)  # (B, V, C, t, h, w)
    return latents.permute(0, 2, 1, 3, 4, 5).flatten(2, 3)


def decode_time_stacked(tokenizer: VideoTokenizer, latents: Tensor, n_views: int) -> Tensor:
    """Inverse layout of :func:`encode_time_stacked`: (B, C, V·n, h, w) → (B, 3, V·T, H, W)."""
    if latents.dim() != 5 or n_views < 1 or latents.shape[2] % n_views:
        raise ValueError(
            f"latents must be (B, C, V·n, h, w) with V={n_views} dividing the frame axis, "
            f"got shape {tuple(latents.shape)}"
        )
    views = latents.unflatten(2, (n_views, latents.shape[2] // n_views)).permute(0, 2, 1, 3, 4, 5)
    video = decode_views(tokenizer, views)  # (B, V, 3, T, H, W)
    return video.permute(0, 2, 1, 3, 4, 5).flatten(2, 3)


def encode_history(tokenizer: CausalVideoTokenizer, history: Tensor, *, release_quirk: bool = True) -> Tensor:
    """Latents of per-view history frames (B, V, 3, Th, H, W) → (B, C, V, L, h, w).

    ``release_quirk=True`` reproduces A2World-sim: the views are concatenated along time and
    encoded as ONE causal video (the pipeline counts V·Th // 21 = 1 view), then the latents are
    split evenly into V views. View 1's first latent mixes view-0 frames and the causal state
    leaks across views; the released weights were trained this way
    (a2world_release_facts.md §4.2). For V=2, Th=20: 40 frames → 10 latents → 2 × 5.

    ``release_quirk=False`` encodes every view separately (1 + (Th-1)//4 latents each), for
    models trained without the quirk.
    """
    _check_views(history, "history", 3)
    b, v, _, th = history.shape[:4]
    if not release_quirk:
        latents = tokenizer.encode_any_length(history.flatten(0, 1))
        return latents.unflatten(0, (b, v)).transpose(1, 2)
    total = v * th
    if total // RELEASE_FRAMES_PER_VIEW > 1:
        # the pipeline would then cut the clip into several "views"; that path was not studied
        raise ValueError(
            f"release-quirk history encoding covers V·Th <= {2 * RELEASE_FRAMES_PER_VIEW - 1} frames "
            f"(one causal clip); got V={v}, Th={th}"
        )
    stacked = history.permute(0, 2, 1, 3, 4, 5).flatten(2, 3)  # (B, 3, V·Th, H, W), view-major
    latents = tokenizer.encode_any_length(stacked)
    n = latents.shape[2]
    if n % v:
        raise ValueError(f"{total} history frames give {n} latents, which do not split into V={v} views")
    return latents.unflatten(2, (v, n // v))


class SinglePassTokenizer:
    """A ``WanTokenizer`` made cheap on a CPU (the shadow's path), computing the same latents and frames up to
    float rounding (tests/shadow/test_fast_path.py).

    - Its own copy of the VAE with the conv weights in channels-last (NDHWC) layout, fed channels-last
      clips: oneDNN's convolutions run about twice as fast that way on a CPU, and the VAE's RMS norm
      (an L2 norm over channels) becomes a contiguous reduction instead of a strided one.
    - Each clip encoded and decoded in one pass instead of the release's streaming (frame 0, then 16
      frames per call when encoding; one latent per call when decoding): the VAE is causal, so the
      chunking does not change the result beyond rounding (``tests/models/test_vae_chunking.py``); one
      pass saves the per-call overhead of the ~500 small modules.
    - A multi-frame clip (the history, one per window) bitwise equal to the last one encoded is not
      encoded again: with the robot and the scene still, the arc-length selection repeats and so do the
      frames. Comparing costs ~1 ms; encoding the 60-frame history ~0.35 s on one loaded core.
    The copy leaves the wrapped tokenizer (and whoever else uses it) untouched.
    """

    def __init__(self, tokenizer: Any) -> None:
        self.base = tokenizer
        self.vae = copy.deepcopy(tokenizer.vae).eval()
        for param in self.vae.parameters():
            fmt = {5: torch.channels_last_3d, 4: torch.channels_last}.get(param.dim())
            if fmt is not None:
                param.data = param.data.contiguous(memory_format=fmt)
        self._last: tuple[bool, Any, Any] | None = None  # (any_length, clip, latents) of the last clip encoded

    def __getattr__(self, name: str) -> Any:  # latent_channels, spatial_compression, dtype, device, ...
        if name == "base":  # not set yet (copy, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.base, name)

    def to(self, device: Any = None, dtype: Any = None) -> SinglePassTokenizer:
        """Move the wrapped tokenizer and the copy alike (the copy keeps its channels-last layout)."""
        self.base.to(device=device, dtype=dtype)
        self.vae.to(device=device, dtype=dtype)
        self._last = None
        return self

    @staticmethod
    def _nhwc(x: Any) -> Any:
        return x.contiguous(memory_format=torch.channels_last_3d)

    def encode(self, video: Any) -> Any:
        return self._encode(video, any_length=False)

    def encode_any_length(self, video: Any) -> Any:
        return self._encode(video, any_length=True)

    def _encode(self, video: Any, any_length: bool) -> Any:
        clip = video.shape[2] > 1  # single frames (the start, the latent score) change every window
        if clip and self._last is not None:
            flag, seen, latents = self._last
            if (flag == any_length and seen.shape == video.shape and seen.dtype == video.dtype
                    and seen.device == video.device and torch.equal(seen, video)):
                return latents.clone()
        out = self.vae.encode(self._nhwc(video), temporal_window=None, any_length=any_length).contiguous()
        if clip:
            self._last = (any_length, video.clone(), out.clone())
        return out

    def decode(self, latents: Any) -> Any:
        return self.vae.decode(self._nhwc(latents), latent_window=None).clamp_(-1.0, 1.0).contiguous()
