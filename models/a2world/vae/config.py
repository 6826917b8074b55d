"""Configuration of the Wan2.1 VAE and its latent normalisation constants."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from a2world.load_checks import JsonConfig

# Per-channel latent statistics of the release (wan_vae_facts.md §4).
LATENT_MEAN: tuple[float, ...] = (
    -0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
    0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921,
)  # fmt: skip
LATENT_STD: tuple[float, ...] = (
    2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
    3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160,
)  # fmt: skip

SPATIAL_COMPRESSION = 8


@dataclass(frozen=True)
class VAEConfig(JsonConfig):
    """Hyper-parameters of the causal 3D VAE; the defaults are the released ones.

    ``latent_mean``/``latent_std`` normalise the 16 latent channels. The tiny configuration keeps
    the release constants so that latents of every size have the same nominal scale.
    """

    dim: int = 96
    z_dim: int = 16
    dim_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    temporal_downsample: tuple[bool, ...] = (False, True, True)
    dropout: float = 0.0
    latent_mean: tuple[float, ...] = field(default=LATENT_MEAN)
    latent_std: tuple[float, ...] = field(default=LATENT_STD)

    def __post_init__(self) -> None:
        if self.dim <= 0:
            raise ValueError(f"dim must be positive, got {self.dim}")
        if self.z_dim <= 0 or self.num_res_blocks < 0 or not self.dim_mult or min(self.dim_mult) <= 0:
            raise ValueError(
                f"z_dim and dim_mult must be positive, num_res_blocks >= 0; got z_dim={self.z_dim}, "
                f"dim_mult={self.dim_mult}, num_res_blocks={self.num_res_blocks}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if len(self.dim_mult) != len(self.temporal_downsample) + 1:
            raise ValueError(
                f"temporal_downsample needs one flag per downsampling step: "
                f"{len(self.dim_mult) - 1} for dim_mult={self.dim_mult}, got {self.temporal_downsample}"
            )
        if len(self.latent_mean) != self.z_dim or len(self.latent_std) != self.z_dim:
            raise ValueError(f"latent_mean and latent_std need z_dim={self.z_dim} values each")
        if any(s <= 0 for s in self.latent_std):
            raise ValueError("latent_std values must be positive")
        # the middle attention is single-head over dim·mult[-1] channels; the up path halves
        # channels at every up-resample, so every width must be even
        if self.dim % 2:
            raise ValueError(f"dim must be even, got {self.dim}")

    @property
    def spatial_compression(self) -> int:
        return 2 ** (len(self.dim_mult) - 1)

    @property
    def temporal_compression(self) -> int:
        return 2 ** sum(self.temporal_downsample)

    @classmethod
    def released(cls) -> VAEConfig:
        """The configuration of Wan2.1_VAE.pth / Cosmos tokenizer.pth (wan_vae_facts.md §1.1)."""
        return cls()

    @classmethod
    def tiny(cls, dim: int = 8) -> VAEConfig:
        """Same architecture and compression, narrow channels: for tests and the simulated rig."""
        return cls(dim=dim)

    def to_json(self) -> str:
        # compact, as in the VAE files already written (stored in the weights file's metadata)
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> VAEConfig:
        return cls.from_dict(json.loads(text))
