"""Training the video tokenizer: a Wan2.1-structured causal VAE at small width on sim clips.

Objective: L1 + MSE reconstruction of short clips plus a small KL term on the posterior (the
Wan recipe without its perceptual and adversarial terms, which need pretrained networks this
project does not have; at 64² sim images plain reconstruction is what matters, and the KL keeps
the latent space smooth enough for diffusion). Clips are 1 + 4k frames at the model's frame rate
so the temporal down- and up-sampling are trained, and frame 0 alone is trained as the first
latent (what the policy encodes at inference).

The export measures the per-channel mean and std of the posterior means on the training clips and
stores them as the config's ``latent_mean``/``latent_std``, so the tokenizer's normalised latents
have unit scale as the diffusion models assume (σ_data = 1), as Wan's constants do for Wan.

A decoder-only fine-tune (``init`` a tokenizer file, ``train_encoder: false``) freezes the encoder
and keeps its latent normalisation, so every latent it produces is bit-identical to the init's:
world models and policies trained on those latents stay valid and only decode better. Why it
exists: a causal decoder trained on 5-frame clips decodes only its first two latents; later ones
collapse (measured: 23 dB at frame 4, 11 dB at frame 10, 6 dB at frame 20 of a 21-frame clip), and
the world models roll out 6 latents per chunk.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor, nn

from a2world.load_checks import JsonConfig
from a2world.tokenizer import WanTokenizer, frames_to_unit
from a2world.train.run import TrainError
from a2world.vae import VAEConfig, WanVAE

log = logging.getLogger(__name__)

TOKENIZER_FILE = "tokenizer.safetensors"
EVAL_FILE = "tokenizer_eval.json"
LOGVAR_RANGE = (-30.0, 20.0)  # as Wan's DiagonalGaussian


@dataclass(frozen=True)
class TokenizerTrainConfig(JsonConfig):
    dim: int = 16  # VAE base width (release: 96)
    clip_frames: int = 5  # pixel frames per training clip, 1 + 4k
    frame_stride: int = 3  # dataset rows between clip frames (30 Hz rows, 10 fps clips)
    l1_weight: float = 1.0
    mse_weight: float = 1.0
    kl_weight: float = 1e-4
    calibration_clips: int = 64  # clips whose posterior means set latent_mean/std at export
    init: str | None = None  # tokenizer file (.safetensors) to start from; None: random weights
    train_encoder: bool = True  # False: decoder-only fine-tune of ``init``, latents unchanged

    def __post_init__(self) -> None:
        if not self.train_encoder and not self.init:
            raise ValueError("tokenizer.train_encoder: false fine-tunes a trained decoder; it needs tokenizer.init")
        if self.dim < 2 or self.dim % 2:
            raise ValueError(f"tokenizer.dim must be an even number >= 2, got {self.dim}")
        if self.clip_frames < 1 or (self.clip_frames - 1) % 4:
            raise ValueError(f"tokenizer.clip_frames must be 1 + 4k, got {self.clip_frames}")
        if self.frame_stride < 1 or self.calibration_clips < 1:
            raise ValueError("tokenizer.frame_stride and calibration_clips must be >= 1")
        for name in ("l1_weight", "mse_weight", "kl_weight"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"tokenizer.{name} must be >= 0, got {v}")


def vae_posterior(vae: WanVAE, video: Tensor) -> tuple[Tensor, Tensor]:
    """Raw (un-normalised) posterior mean and clamped log-variance of (B, 3, T, H, W) video, with
    gradients (``WanVAE.encode`` is inference-only). One pass: every chunking gives the same result."""
    h = vae.conv1(vae.encoder(video))
    mu, logvar = h.chunk(2, dim=1)
    return mu, logvar.clamp(*LOGVAR_RANGE)


class VAETrainModule(nn.Module):
    def __init__(self, vae: WanVAE, cfg: TokenizerTrainConfig) -> None:
        super().__init__()
        self.vae = vae
        self.cfg = cfg

    def forward(self, video: Tensor, eps: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        with torch.set_grad_enabled(self.cfg.train_encoder and torch.is_grad_enabled()):
            mu, logvar = vae_posterior(self.vae, video)
        z = mu + torch.exp(0.5 * logvar) * eps
        recon = self.vae.decoder(self.vae.conv2(z))
        l1 = (recon - video).abs().mean()
        mse = ((recon - video) ** 2).mean()
        kl = 0.5 * (mu**2 + logvar.exp() - 1.0 - logvar).mean()
        c = self.cfg
        loss = c.l1_weight * l1 + c.mse_weight * mse + c.kl_weight * kl
        psnr = 10 * torch.log10(4.0 / mse.detach().clamp(min=1e-12))  # [-1, 1] range: peak² = 4
        return loss, {"l1": l1.detach(), "mse": mse.detach(), "kl": kl.detach(), "psnr": psnr}


class TokenizerJob:
    """Clips from frame sequences: ``sequences`` holds uint8 (N, H, W, 3) per episode and view."""

    name = "tokenizer"
    metric_names = ("l1", "mse", "kl", "psnr")

    def __init__(self, sequences: Sequence[Tensor], cfg: TokenizerTrainConfig, seed: int = 0) -> None:
        if not sequences:
            raise TrainError("tokenizer: no frame sequences")
        shapes = {tuple(s.shape[1:]) for s in sequences}
        if len(shapes) != 1:
            raise TrainError(f"tokenizer: frame sequences of different sizes {sorted(shapes)}")
        h, w, c = shapes.pop()
        if c != 3 or h % 8 or w % 8:
            raise TrainError(f"tokenizer: frames must be (H, W, 3) with H and W multiples of 8, got {(h, w, c)}")
        self.cfg = cfg
        self.sequences = [s.contiguous() for s in sequences]
        span = cfg.frame_stride * (cfg.clip_frames - 1)
        self.index = [(i, s) for i, seq in enumerate(self.sequences) for s in range(len(seq) - span)]
        self.image_size = (h, w)
        self.vae = initial_vae(cfg, seed)
        self._module = VAETrainModule(self.vae, cfg)

    def module(self) -> nn.Module:
        return self._module

    def shard_units(self) -> tuple[nn.ModuleList | None, str]:
        return None, "forward"

    def num_samples(self) -> int:
        return len(self.index)

    def clip(self, k: int) -> Tensor:
        """(3, T, H, W) float in [-1, 1]."""
        i, s = self.index[k]
        c = self.cfg
        frames = self.sequences[i][s: s + c.frame_stride * (c.clip_frames - 1) + 1: c.frame_stride]
        return frames_to_unit(frames).permute(3, 0, 1, 2)

    def inputs(self, indices: Tensor, generator: torch.Generator, part: slice,
               device: torch.device) -> tuple[Tensor, Tensor]:
        z, vc = self.vae.config.z_dim, self.vae.config
        h, w = self.image_size
        t_lat = 1 + (self.cfg.clip_frames - 1) // vc.temporal_compression
        s = vc.spatial_compression
        eps = torch.randn(len(indices), z, t_lat, h // s, w // s, generator=generator)[part]
        video = torch.stack([self.clip(int(k)) for k in indices[part]])
        return video.to(device), eps.to(device)

    def export(self, directory: Path, state: dict[str, Tensor]) -> None:
        vae = WanVAE(self.vae.config)
        vae.load_state_dict({k[len("vae."):]: v for k, v in state.items() if k.startswith("vae.")}, strict=True)
        clips = [self.clip(k) for k in self.calibration_indices()]
        # a decoder-only run keeps the init's normalisation: its latents must not move
        tokenizer, report = calibrate(vae, clips, measure=self.cfg.train_encoder)
        directory.mkdir(parents=True, exist_ok=True)
        tokenizer.save(directory / TOKENIZER_FILE)
        (directory / EVAL_FILE).write_text(json.dumps(report, indent=2) + "\n")

    def calibration_indices(self) -> list[int]:
        n = self.num_samples()
        m = min(n, self.cfg.calibration_clips)
        return sorted({int(round(i * (n - 1) / max(1, m - 1))) for i in range(m)})


def initial_vae(cfg: TokenizerTrainConfig, seed: int) -> WanVAE:
    """The VAE a run starts from: ``cfg.init``'s weights (float32), or random at ``cfg.dim``; a
    decoder-only run freezes the encoder side (encoder and its 1×1 posterior conv)."""
    if cfg.init is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return WanVAE(VAEConfig.tiny(cfg.dim))
    from a2world.load_checks import CheckpointLoadError
    from a2world.vae.weights import load_vae

    try:
        vae = load_vae(cfg.init, dtype=torch.float32)
    except (CheckpointLoadError, OSError) as exc:
        raise TrainError(f"tokenizer.init: {str(exc).splitlines()[0]}") from None
    if vae.config.dim != cfg.dim:
        raise TrainError(f"tokenizer.init {cfg.init} has dim {vae.config.dim}, the config says tokenizer.dim "
                         f"{cfg.dim}")
    if not cfg.train_encoder:
        from a2world.train.latents import ENCODER_PREFIXES

        # exactly what the latent-cache fingerprint covers: a frozen run keeps its caches
        for name, p in vae.named_parameters():
            p.requires_grad_(not name.startswith(ENCODER_PREFIXES))
    return vae


@torch.no_grad()
def calibrate(vae: WanVAE, clips: Sequence[Tensor], measure: bool = True) -> tuple[WanTokenizer, dict[str, float]]:
    """Tokenizer with latent_mean/std measured on ``clips`` ((3, T, H, W) each), or kept as ``vae``
    has them when not ``measure``, and its reconstruction PSNR (dB, [-1, 1] pixels, frame 0, all
    frames and per frame) on them."""
    vae = vae.float().eval()
    video = torch.stack(list(clips))
    config = vae.config
    if measure:
        mu, _ = vae_posterior(vae, video)
        mean = mu.transpose(0, 1).flatten(1).mean(dim=1)
        std = mu.transpose(0, 1).flatten(1).std(dim=1).clamp(min=1e-3)
        config = config.with_updates(latent_mean=tuple(float(x) for x in mean),
                                     latent_std=tuple(float(x) for x in std))
    calibrated = WanVAE(config)
    calibrated.load_state_dict(vae.state_dict(), strict=True)
    tok = WanTokenizer(calibrated.eval())
    recon = tok.decode(tok.encode(video))
    mse_all = float(((recon - video) ** 2).mean())
    first = tok.decode(tok.encode(video[:, :, :1]))
    mse_first = float(((first - video[:, :, :1]) ** 2).mean())
    latents = tok.encode(video)
    per_frame = ((recon - video) ** 2).mean(dim=(0, 1, 3, 4))
    report = {
        "clips": len(clips),
        "psnr_db": 10 * math.log10(4.0 / max(mse_all, 1e-12)),
        "psnr_first_frame_db": 10 * math.log10(4.0 / max(mse_first, 1e-12)),
        # the tail is where a causal decoder trained on short clips fails first
        "psnr_per_frame_db": [round(10 * math.log10(4.0 / max(float(m), 1e-12)), 2) for m in per_frame],
        "latent_std_after_normalisation": float(latents.std()),
    }
    log.info("tokenizer export: PSNR %.2f dB (frame 0: %.2f dB, last frame: %.2f dB) on %d clips", report["psnr_db"],
             report["psnr_first_frame_db"], report["psnr_per_frame_db"][-1], len(clips))
    return tok, report
