"""PolicyEngine: observation (views + stamps) + instruction -> an action chunk and predicted frames.

One call encodes each view's current frame with the video tokenizer (latent 0 of every view is the
conditioning latent, a2world_release_facts.md §1.7 step 6), looks the instruction up in the
embedding cache, samples the joint latent, and returns 60 de-normalised 14-D actions at 30 Hz plus
20 decoded frames per view at 10 fps (real-rig sizes; a tiny config gives fewer). Backends: torch
(optionally bf16 and `torch.compile`) or the exported ONNX denoiser under onnxruntime.

Stamps: the chunk's reference time is the latest view stamp; action k (1-based) is due at
reference + k/30 s, predicted frame j at reference + j/10 s. An observation is refused when its
views were not taken together (stamp spread over 16 ms, docs/architecture.md §6) or when it is too old (or
too far in the future) on the engine's clock, which must share the stamps' time base (wall time by
default; inject the sim clock under `use_sim_time`).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from a2world.policy.diffusion import DenoiseCall, Guidance, JointCondition, JointDenoiser, sample_joint
from a2world.policy.model import A2WorldPolicy
from a2world.sampler import SamplerConfig, first_frame_mask
from a2world.text_embeddings import TextEmbeddingCache
from a2world.tokenizer import VideoTokenizer, frames_to_unit, unit_to_frames

log = logging.getLogger(__name__)

# docs/architecture.md §5 view ids (release convention)
VIEW_NAMES: dict[int, str] = {0: "left wrist", 1: "right wrist", 2: "front", 3: "second third-person"}
DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16}
BACKENDS: tuple[str, ...] = ("torch", "onnx")


class NonFiniteOutputError(RuntimeError):
    """The sampler produced NaN or Inf (bad weights, bad inputs or a precision problem)."""


class ObservationTimingError(ValueError):
    """The observation's stamps are unusable: views too far apart, or too old for the engine's clock."""


@dataclass(frozen=True)
class PolicyEngineConfig:
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    guidance: Guidance = field(default_factory=Guidance)
    seed: int = 0
    dtype: str = "float32"
    device: str = "cpu"
    backend: str = "torch"
    compile: bool = False
    view_ids: tuple[int, ...] = (0, 1, 2)
    image_size: tuple[int, int] = (256, 256)  # (H, W), release §3.4
    decode_video: bool = True
    # Largest allowed spread of the view stamps in seconds (None: not checked). docs/architecture.md §6.
    max_stamp_spread_s: float | None = 0.016
    # Oldest allowed observation in seconds on the engine's clock (None: not checked). Actions are
    # stamped from the observation, so an old one yields a chunk whose first actions are already
    # due; a stamp this far ahead of the clock means the two use different time bases.
    max_observation_age_s: float | None = 0.5
    # Where the ONNX backend writes its export (None: kept in memory).
    onnx_path: str | None = None
    onnx_threads: int | None = None

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {self.dtype!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.backend == "onnx" and self.dtype != "float32":
            raise ValueError("the onnx backend runs a float32 export; set dtype='float32'")
        if len(set(self.view_ids)) != len(self.view_ids) or not self.view_ids:
            raise ValueError(f"view_ids must be distinct and non-empty, got {self.view_ids}")
        for name in ("max_stamp_spread_s", "max_observation_age_s"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number of seconds >= 0 or None, got {value!r}")


@dataclass
class PolicyObservation:
    """Current frame of every view: view id -> uint8 (H, W, 3) RGB, and view id -> stamp (s)."""

    images: Mapping[int, np.ndarray]
    stamps: Mapping[int, float]


@dataclass
class PolicyOutput:
    actions: np.ndarray  # (Ta, 14) float32, A2World convention
    action_stamps: np.ndarray  # (Ta,) float64 seconds
    frames: np.ndarray | None  # (V, F, H, W, 3) uint8 predicted frames, or None
    frame_stamps: np.ndarray  # (F,) float64 seconds
    view_ids: tuple[int, ...]
    reference_stamp: float
    prefix_length: int
    timings: dict[str, float] = field(default_factory=dict)
    # (1, C, V·T, h, w) sampled video latents; `PolicyEngine.decode_frames` turns them into frames
    # later, so a caller can act on the actions first (decoding costs more than sampling on a CPU).
    video_latents: torch.Tensor | None = field(default=None, repr=False)


class PolicyEngine:
    def __init__(
        self,
        policy: A2WorldPolicy,
        tokenizer: VideoTokenizer,
        text_cache: TextEmbeddingCache,
        config: PolicyEngineConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`clock` gives the current time in the view stamps' time base (seconds)."""
        self.config = cfg = config or PolicyEngineConfig()
        self.clock = clock
        pc = policy.config
        if len(cfg.view_ids) > pc.backbone.n_cameras_emb or max(cfg.view_ids) >= pc.backbone.n_cameras_emb:
            raise ValueError(f"view_ids {cfg.view_ids} exceed the model's {pc.backbone.n_cameras_emb} view embeddings")
        if tokenizer.latent_channels != pc.backbone.latent_channels:
            raise ValueError(
                f"tokenizer.latent_channels ({tokenizer.latent_channels}) != policy latent channels "
                f"({pc.backbone.latent_channels})"
            )
        if text_cache.dim != pc.context_dim:
            raise ValueError(f"text_cache.dim ({text_cache.dim}) != policy context dim ({pc.context_dim})")
        step = tokenizer.spatial_compression * pc.backbone.patch_spatial
        h, w = cfg.image_size
        if h % step or w % step:
            raise ValueError(f"image_size {cfg.image_size} must be multiples of {step}")
        self.tokenizer = tokenizer
        self.text_cache = text_cache
        self.device = torch.device(cfg.device)
        self.policy = policy.to(self.device, DTYPES[cfg.dtype]).eval()
        self.latent_hw = (h // tokenizer.spatial_compression, w // tokenizer.spatial_compression)
        p = pc.backbone.patch_spatial
        self.denoiser = JointDenoiser(self.policy, len(cfg.view_ids), self.latent_hw[0] // p, self.latent_hw[1] // p)
        self.call: DenoiseCall = self._build_backend()

    # ------------------------------------------------------------------ backends
    def _build_backend(self) -> DenoiseCall:
        cfg = self.config
        if cfg.backend == "torch":
            if cfg.compile:
                return torch.compile(self.denoiser)  # type: ignore[return-value]
            return self.denoiser
        from a2world.policy.onnx import OnnxDenoiser, export_denoiser

        batch = 2 if cfg.guidance.needs_unconditional else 1
        model = export_denoiser(
            self.denoiser, cfg.onnx_path, batch, len(cfg.view_ids), self.latent_hw, self.text_cache.max_length
        )
        return OnnxDenoiser(model, threads=cfg.onnx_threads)

    # ------------------------------------------------------------------ validation
    def check_observation(self, obs: PolicyObservation) -> float:
        """Raise ValueError naming the problem (ObservationTimingError for unusable stamps);
        returns the reference stamp."""
        cfg = self.config
        for v in cfg.view_ids:
            name = VIEW_NAMES.get(v, str(v))
            if v not in obs.images:
                raise ValueError(f"observation.images is missing view {v} ({name})")
            if v not in obs.stamps:
                raise ValueError(f"observation.stamps is missing view {v} ({name})")
        extra = sorted(set(obs.images) - set(cfg.view_ids))
        if extra:
            raise ValueError(f"observation.images has views {extra} the engine is not configured for {cfg.view_ids}")
        h, w = cfg.image_size
        for v in cfg.view_ids:
            img = np.asarray(obs.images[v])
            if img.dtype != np.uint8 or img.shape != (h, w, 3):
                raise ValueError(
                    f"observation.images[{v}] must be uint8 ({h}, {w}, 3), got {img.dtype} {img.shape}; "
                    f"resize with a2world.policy.engine.resize_view"
                )
        stamps = [float(obs.stamps[v]) for v in cfg.view_ids]
        if not all(math.isfinite(s) for s in stamps):
            raise ValueError(f"observation.stamps must be finite, got {stamps}")
        spread = max(stamps) - min(stamps)
        if cfg.max_stamp_spread_s is not None and spread > cfg.max_stamp_spread_s:
            raise ObservationTimingError(
                f"observation.stamps spread {spread * 1e3:.1f} ms exceeds max_stamp_spread_s "
                f"({cfg.max_stamp_spread_s * 1e3:.1f} ms): the views were not taken together"
            )
        if cfg.max_observation_age_s is not None:
            self._check_age(stamps, cfg.max_observation_age_s)
        return max(stamps)

    def _check_age(self, stamps: Sequence[float], limit: float) -> None:
        now = float(self.clock())
        if not math.isfinite(now):
            raise ObservationTimingError(f"the engine clock returned {now}")
        # The oldest view decides staleness; the newest decides whether the clocks disagree.
        age = now - min(stamps)
        if age > limit:
            raise ObservationTimingError(
                f"observation is {age:.3f} s old (oldest view stamp {min(stamps):.3f}, engine clock "
                f"{now:.3f}); max_observation_age_s is {limit} s"
            )
        ahead = max(stamps) - now
        if ahead > limit:
            raise ObservationTimingError(
                f"observation is stamped {ahead:.3f} s in the future of the engine clock ({now:.3f}); "
                f"the camera stamps and the engine clock must share one time base"
            )

    def _prefix(self, action_prefix: np.ndarray | None) -> tuple[np.ndarray, int]:
        pc = self.policy.config
        if action_prefix is None:
            return np.zeros((0, pc.action_width), np.float32), 0
        prefix = np.asarray(action_prefix, dtype=np.float32)
        if prefix.ndim != 2 or prefix.shape[1] != pc.action_width:
            raise ValueError(f"action_prefix must be (d, {pc.action_width}), got {prefix.shape}")
        d = prefix.shape[0]
        if d > pc.max_prefix:
            raise ValueError(
                f"action_prefix has {d} steps; the policy was trained with prefixes up to "
                f"max_prefix={pc.max_prefix}"
            )
        if not np.isfinite(prefix).all():
            raise ValueError("action_prefix must be finite")
        return prefix, d

    # ------------------------------------------------------------------ inference
    def encode_views(self, obs: PolicyObservation) -> torch.Tensor:
        """(1, C, V·T, h, w) clean latent with each view's current frame at latent 0."""
        pc = self.policy.config
        frames = torch.from_numpy(np.stack([np.asarray(obs.images[v]) for v in self.config.view_ids]))
        unit = frames_to_unit(frames).permute(0, 3, 1, 2)[:, :, None]  # (V, 3, 1, H, W)
        with torch.no_grad():
            lat0 = self.tokenizer.encode(unit.to(self.tokenizer_device(), self.tokenizer_dtype()))
        v, c, _, h, w = lat0.shape
        clean = torch.zeros(v, c, pc.latent_frames, h, w, device=self.device)
        clean[:, :, 0] = lat0[:, :, 0].to(self.device, torch.float32)
        return clean.transpose(0, 1).reshape(1, c, v * pc.latent_frames, h, w)

    def tokenizer_device(self) -> torch.device:
        return getattr(self.tokenizer, "device", torch.device("cpu"))

    def tokenizer_dtype(self) -> torch.dtype:
        return getattr(self.tokenizer, "dtype", torch.float32)

    def predict(
        self,
        observation: PolicyObservation,
        instruction: str,
        action_prefix: np.ndarray | None = None,
        seed: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> PolicyOutput:
        """Sample one chunk. `action_prefix` (d, 14) holds already-committed actions (raw units)
        that the chunk must start with (training-time RTC); they are returned unchanged."""
        cfg, pc = self.config, self.policy.config
        t_start = time.perf_counter()
        ref = self.check_observation(observation)
        prefix, d = self._prefix(action_prefix)
        context = self.text_cache.get(instruction, device=self.device)[None]  # unknown -> MissingInstructionError
        clean = self.encode_views(observation)
        t_enc = time.perf_counter()

        n_views = len(cfg.view_ids)
        # In float32 on the CPU whatever the net's dtype and device: the policy casts its stats to the actions.
        prefix_n = torch.zeros(1, pc.action_horizon, pc.action_width)
        prefix_n[0, :d] = self.policy.normalize_actions(torch.from_numpy(prefix))
        prefix_mask = torch.zeros(1, pc.action_horizon, device=self.device)
        prefix_mask[0, :d] = 1.0
        cond = JointCondition(
            clean_video=clean,
            frame_mask=first_frame_mask(1, n_views, pc.latent_frames, self.device),
            view_ids=torch.tensor([list(cfg.view_ids)], device=self.device),
            prefix=prefix_n.to(self.device),
            prefix_mask=prefix_mask,
            context=context,
        )
        x0_v, x0_a = sample_joint(
            self.call,
            cond,
            (1, pc.action_horizon, pc.action_width),
            pc.action_sigma_ratio,
            cfg.seed if seed is None else seed,
            cfg.sampler,
            cfg.guidance,
            progress,
        )
        t_sample = time.perf_counter()
        if not torch.isfinite(x0_a).all():
            raise NonFiniteOutputError("the sampled actions contain NaN or Inf")
        if not torch.isfinite(x0_v).all():
            raise NonFiniteOutputError("the sampled video latents contain NaN or Inf")
        actions = self.policy.denormalize_actions(x0_a[0].cpu()).numpy()
        actions[:d] = prefix  # exact, not a normalise/denormalise round trip
        frames = self._decode(x0_v, n_views) if cfg.decode_video else None
        t_end = time.perf_counter()

        k = np.arange(1, pc.action_horizon + 1, dtype=np.float64)
        j = np.arange(1, pc.predicted_frames + 1, dtype=np.float64)
        return PolicyOutput(
            actions=actions.astype(np.float32),
            action_stamps=ref + k / pc.action_rate_hz,
            frames=frames,
            frame_stamps=ref + j / pc.backbone.fps,
            view_ids=tuple(cfg.view_ids),
            reference_stamp=ref,
            prefix_length=d,
            timings={"encode_s": t_enc - t_start, "sample_s": t_sample - t_enc, "decode_s": t_end - t_sample},
            video_latents=x0_v.detach(),
        )

    def decode_frames(self, output: PolicyOutput) -> np.ndarray:
        """The predicted frames of ``output`` (uint8 (V, F, H, W, 3)), decoded from its latents."""
        if output.video_latents is None:
            raise ValueError("the output carries no video latents")
        return self._decode(output.video_latents, len(output.view_ids))

    def _decode(self, x0_v: torch.Tensor, n_views: int) -> np.ndarray:
        """(1, C, V·T, h, w) -> uint8 (V, T_pix - 1, H, W, 3): every view on its own, frame 0 dropped."""
        _, c, vt, h, w = x0_v.shape
        per_view = x0_v.reshape(c, n_views, vt // n_views, h, w).transpose(0, 1)
        with torch.no_grad():
            video = self.tokenizer.decode(per_view.to(self.tokenizer_device(), self.tokenizer_dtype()))
        pixels = unit_to_frames(video[:, :, 1:])  # (V, 3, F, H, W)
        return pixels.permute(0, 2, 3, 4, 1).cpu().numpy()


def resize_view(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a uint8 (H, W, 3) frame to (h, w) with area interpolation (release §3.4: INTER_AREA)."""
    import cv2

    h, w = size
    return cv2.resize(np.asarray(image), (w, h), interpolation=cv2.INTER_AREA)


def make_observation(images: Sequence[np.ndarray], view_ids: Sequence[int],
                     stamps: Sequence[float]) -> PolicyObservation:
    return PolicyObservation(dict(zip(view_ids, images)), dict(zip(view_ids, stamps)))
