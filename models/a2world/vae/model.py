"""The Wan2.1 causal 3D VAE: encoder, decoder, latent head, normalisation, chunked streaming.

Module names reproduce the released 194-key state dict (wan_vae_facts.md §1.4). Encode and
decode run either in one pass or chunk by chunk with per-layer caches; every chunking gives the
same result, so the chunk size only trades memory for per-call overhead. (The reference caches
need frame 0 / latent 0 as a chunk of its own and 4k-frame chunks after it, wan_vae_facts.md
§3.5; ours hold pending frames instead, so that rule is not needed, and the release chunkings
give the release result.)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from a2world.vae.cache import StreamCache
from a2world.vae.config import VAEConfig
from a2world.vae.layers import (
    AttentionBlock,
    CausalConv3d,
    Resample,
    ResidualBlock,
    causal_head,
    run_sequence,
)

# A2World encodes frame 0, then 16-frame chunks, then the remainder (wan_vae_facts.md §3.5).
RELEASE_TEMPORAL_WINDOW = 16


class Encoder3d(nn.Module):
    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        dims = [config.dim * m for m in (1, *config.dim_mult)]
        self.conv1 = CausalConv3d(3, dims[0], 3, padding=1)
        blocks: list[nn.Module] = []
        last_level = len(config.dim_mult) - 1
        out_dim = dims[0]
        for level, (in_dim, out_dim) in enumerate(zip(dims[:-1], dims[1:])):
            for _ in range(config.num_res_blocks):
                blocks.append(ResidualBlock(in_dim, out_dim, config.dropout))
                in_dim = out_dim
            if level != last_level:
                mode = "downsample3d" if config.temporal_downsample[level] else "downsample2d"
                blocks.append(Resample(out_dim, mode))
        self.downsamples = nn.Sequential(*blocks)
        self.middle = nn.Sequential(
            ResidualBlock(out_dim, out_dim, config.dropout),
            AttentionBlock(out_dim),
            ResidualBlock(out_dim, out_dim, config.dropout),
        )
        # mean and log-variance: 2·z channels
        self.head = causal_head(out_dim, config.z_dim * 2)

    def forward(self, x: Tensor, cache: StreamCache | None = None) -> Tensor:
        x = self.conv1(x, cache)
        x = run_sequence(self.downsamples, x, cache)
        x = run_sequence(self.middle, x, cache)
        return run_sequence(self.head, x, cache)


class Decoder3d(nn.Module):
    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        mults = config.dim_mult
        dims = [config.dim * m for m in (mults[-1], *reversed(mults))]
        temporal_upsample = tuple(reversed(config.temporal_downsample))
        self.conv1 = CausalConv3d(config.z_dim, dims[0], 3, padding=1)
        self.middle = nn.Sequential(
            ResidualBlock(dims[0], dims[0], config.dropout),
            AttentionBlock(dims[0]),
            ResidualBlock(dims[0], dims[0], config.dropout),
        )
        blocks: list[nn.Module] = []
        last_level = len(mults) - 1
        in_dim = out_dim = dims[0]
        for level, out_dim in enumerate(dims[1:]):
            for _ in range(config.num_res_blocks + 1):
                blocks.append(ResidualBlock(in_dim, out_dim, config.dropout))
                in_dim = out_dim
            if level != last_level:
                mode = "upsample3d" if temporal_upsample[level] else "upsample2d"
                blocks.append(Resample(out_dim, mode))
                in_dim = out_dim // 2  # every up-resample halves the channels
        self.upsamples = nn.Sequential(*blocks)
        self.head = causal_head(out_dim, 3)

    def forward(self, x: Tensor, cache: StreamCache | None = None) -> Tensor:
        x = self.conv1(x, cache)
        x = run_sequence(self.middle, x, cache)
        x = run_sequence(self.upsamples, x, cache)
        return run_sequence(self.head, x, cache)


def latent_frames(pixel_frames: int, temporal_compression: int = 4) -> int:
    """Latent frames produced from ``pixel_frames`` frames: 1 + (T-1)//4 for the release."""
    if pixel_frames < 1:
        raise ValueError(f"pixel_frames must be >= 1, got {pixel_frames}")
    return 1 + (pixel_frames - 1) // temporal_compression


def pixel_frames(latent_frames: int, temporal_compression: int = 4) -> int:
    """Frames decoded from ``latent_frames`` latents: 1 + 4(T_lat-1) for the release."""
    if latent_frames < 1:
        raise ValueError(f"latent_frames must be >= 1, got {latent_frames}")
    return 1 + temporal_compression * (latent_frames - 1)


def window_plan(total: int, window: int | None) -> list[int]:
    """Chunk sizes: the first frame (or latent) alone, then ``window``-sized chunks, then the rest.

    ``window=None`` is a single pass over everything.
    """
    if total < 1:
        raise ValueError(f"need at least one frame, got {total}")
    if window is None:
        return [total]
    if window < 1:
        raise ValueError(f"window must be a positive number of frames, got {window}")
    rest = total - 1
    plan = [1] + [window] * (rest // window)
    if rest % window:
        plan.append(rest % window)
    return plan


class WanVAE(nn.Module):
    """The causal 3D VAE (same module tree and key names as Wan2.1 ``WanVAE_`` / Cosmos ``VAE_``).

    ``encode`` maps (B, 3, T, H, W) video in [-1, 1] to normalised latents
    (B, z, 1 + (T-1)//4, H/8, W/8); ``decode`` maps them back, unclamped. Both compute in the
    dtype of the parameters and return the input's dtype.
    """

    def __init__(self, config: VAEConfig | None = None) -> None:
        super().__init__()
        self.config = config or VAEConfig.released()
        z = self.config.z_dim
        self.encoder = Encoder3d(self.config)
        self.conv1 = CausalConv3d(z * 2, z * 2, 1)
        self.conv2 = CausalConv3d(z, z, 1)
        self.decoder = Decoder3d(self.config)

    # ---- latent normalisation ------------------------------------------------------------
    def _latent_stats(self, like: Tensor) -> tuple[Tensor, Tensor]:
        shape = (1, -1, 1, 1, 1)
        # built straight in the compute dtype from the Python floats, as the release does
        mean = torch.tensor(self.config.latent_mean, dtype=like.dtype, device=like.device)
        std = torch.tensor(self.config.latent_std, dtype=like.dtype, device=like.device)
        # the inverse is formed in the compute dtype, as the bf16 release does (wan_vae_facts.md §4)
        return mean.view(shape), (1.0 / std).view(shape)

    def normalize(self, mu: Tensor) -> Tensor:
        mean, inv_std = self._latent_stats(mu)
        return (mu - mean) * inv_std

    def denormalize(self, z: Tensor) -> Tensor:
        mean, inv_std = self._latent_stats(z)
        # division by the inverse, not multiplication by std: same rounding as the release
        return z / inv_std + mean

    # ---- checks ---------------------------------------------------------------------------
    @property
    def compute_dtype(self) -> torch.dtype:
        return self.conv2.weight.dtype

    def _check_video(self, video: Tensor, any_length: bool) -> None:
        if video.dim() != 5 or video.shape[1] != 3:
            raise ValueError(f"video must be (B, 3, T, H, W), got shape {tuple(video.shape)}")
        if not video.is_floating_point():
            raise ValueError(f"video must be float in [-1, 1], got dtype {video.dtype}")
        s = self.config.spatial_compression
        h, w = video.shape[-2:]
        if h % s or w % s:
            raise ValueError(f"video height and width must be multiples of {s}, got {h}x{w}")
        t = video.shape[2]
        tc = self.config.temporal_compression
        if not any_length and (t - 1) % tc:
            raise ValueError(f"video frame count T must be 1 + {tc}k, got T={t}")

    def _check_latents(self, latents: Tensor) -> None:
        z = self.config.z_dim
        if latents.dim() != 5 or latents.shape[1] != z or latents.shape[2] < 1:
            raise ValueError(f"latents must be (B, {z}, T_lat>=1, h, w), got shape {tuple(latents.shape)}")
        if not latents.is_floating_point():
            raise ValueError(f"latents must be floating point, got dtype {latents.dtype}")

    # ---- encode ---------------------------------------------------------------------------
    @torch.no_grad()
    def encode(
        self,
        video: Tensor,
        *,
        temporal_window: int | None = RELEASE_TEMPORAL_WINDOW,
        any_length: bool = False,
    ) -> Tensor:
        """Normalised latents of ``video``; ``temporal_window=None`` runs a single pass.

        Chunks are frame 0, then ``temporal_window`` frames at a time, then the remainder.
        ``any_length`` accepts T != 1 + 4k; trailing frames that complete no latent are dropped,
        as the release does for its two-view history (a2world_release_facts.md §4.2).
        """
        self._check_video(video, any_length)
        tc = self.config.temporal_compression
        if temporal_window is not None and temporal_window % tc:
            raise ValueError(f"temporal_window must be a multiple of {tc}, got {temporal_window}")
        return self.encode_chunks(video, window_plan(video.shape[2], temporal_window), any_length=any_length)

    @torch.no_grad()
    def encode_chunks(self, video: Tensor, plan: Sequence[int], *, any_length: bool = False) -> Tensor:
        """Encode with explicit chunk sizes (frames per call, summing to T)."""
        self._check_video(video, any_length)
        _check_plan(plan, video.shape[2], "frames")
        x = video.to(self.compute_dtype)
        cache = StreamCache() if len(plan) > 1 else None
        features: list[Tensor] = []
        start = 0
        for size in plan:
            features.append(self.encoder(x[:, :, start : start + size], cache))
            start += size
        h = self.conv1(torch.cat(features, dim=2))
        mu = h[:, : self.config.z_dim]  # log-variance (the other half) is unused at inference
        return self.normalize(mu).to(video.dtype)

    # ---- decode ---------------------------------------------------------------------------
    @torch.no_grad()
    def decode(self, latents: Tensor, *, latent_window: int | None = 1) -> Tensor:
        """Video (B, 3, 1 + 4(T_lat-1), H, W) from normalised latents, not clamped.

        Latent 0 is decoded alone, then ``latent_window`` latents per call (the release uses 1);
        ``None`` is a single pass.
        """
        self._check_latents(latents)
        return self.decode_chunks(latents, window_plan(latents.shape[2], latent_window))

    @torch.no_grad()
    def decode_chunks(self, latents: Tensor, plan: Sequence[int]) -> Tensor:
        """Decode with explicit chunk sizes (latents per call, summing to T_lat)."""
        self._check_latents(latents)
        _check_plan(plan, latents.shape[2], "latents")
        z = self.conv2(self.denormalize(latents.to(self.compute_dtype)))
        cache = StreamCache() if len(plan) > 1 else None
        frames: list[Tensor] = []
        start = 0
        for size in plan:
            frames.append(self.decoder(z[:, :, start : start + size], cache))
            start += size
        return torch.cat(frames, dim=2).to(latents.dtype)


def _check_plan(plan: Sequence[int], total: int, unit: str) -> None:
    if not plan or any(int(n) < 1 for n in plan) or sum(plan) != total:
        raise ValueError(f"chunk plan {list(plan)} must be positive sizes summing to {total} {unit}")
