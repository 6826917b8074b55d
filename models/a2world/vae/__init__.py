"""Wan2.1 causal 3D VAE (the video tokenizer of Cosmos-Predict2 and A2World)."""

from a2world.vae.cache import StreamCache
from a2world.vae.config import LATENT_MEAN, LATENT_STD, VAEConfig
from a2world.vae.model import (
    RELEASE_TEMPORAL_WINDOW,
    Decoder3d,
    Encoder3d,
    WanVAE,
    latent_frames,
    pixel_frames,
    window_plan,
)

__all__ = [
    "LATENT_MEAN",
    "LATENT_STD",
    "RELEASE_TEMPORAL_WINDOW",
    "Decoder3d",
    "Encoder3d",
    "StreamCache",
    "VAEConfig",
    "WanVAE",
    "latent_frames",
    "pixel_frames",
    "window_plan",
]
