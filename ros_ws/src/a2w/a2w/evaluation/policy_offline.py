"""Offline checks of a policy checkpoint on recorded episodes: does it read the cameras, and how far
are its sampled chunks from the demonstrations?

* **Noise probe.** For clips of the dataset, the denoiser's action estimate at each action noise
  level σ_a (σ_v coupled as in training, m_v/m_a), once with each clip's own observation and once
  with the observations shuffled across clips. Sampling starts at σ_a = 200·m_a/m_v ≈ 41, where the
  noisy actions carry nothing: what the policy does there comes from the observation alone. A policy
  whose error at high σ is the same with shuffled observations has not learned to read the cameras,
  however low its training loss (which low σ dominates, where the noisy actions give the answer away).
* **Open loop.** The full sampler (as the policy node runs it) from an observation every
  ``every`` rows, each chunk composed onto the recorded pose at that row; the TCP position error
  against the demonstration's own chunk after 0.5, 1 and 2 s, beside the error of holding still.

Clips come from ``a2w.train.data`` exactly as training builds them, so on a training dataset this
measures the fit and on a held-out one the generalisation.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

log = logging.getLogger(__name__)

PROBE_SIGMAS = (0.1, 0.3, 1.0, 3.0, 10.0, 40.0)  # σ_a
OPEN_LOOP_SECONDS = (0.5, 1.0, 2.0)


class OfflineEvalError(ValueError):
    """A checkpoint or dataset that cannot be evaluated, said in one line."""


@dataclass
class ProbeRow:
    sigma_action: float
    sigma_video: float
    mse_own: float  # normalised action x0 MSE with each clip's own observation
    mse_shuffled: float  # with another clip's observation

    @property
    def gain(self) -> float:
        """How much of the shuffled-observation error the real observation removes (0: none)."""
        return 1.0 - self.mse_own / self.mse_shuffled if self.mse_shuffled > 0 else 0.0


@dataclass
class OpenLoopRow:
    arm: str
    seconds: float
    error_mm: list[float] = field(default_factory=list)  # per chunk: policy vs demonstration
    hold_mm: list[float] = field(default_factory=list)  # per chunk: holding still vs demonstration


@dataclass
class OfflineResult:
    checkpoint: str
    datasets: list[str]
    clips: int
    probe: list[ProbeRow]
    open_loop: list[OpenLoopRow]
    chunks: int

    def format(self) -> str:
        lines = [f"noise probe on {self.clips} clips (normalised action MSE of the denoiser's estimate):",
                 f"{'sigma_a':>8} {'sigma_v':>8} {'own obs':>8} {'shuffled':>8} {'gain':>6}"]
        for r in self.probe:
            lines.append(f"{r.sigma_action:8.2f} {r.sigma_video:8.2f} {r.mse_own:8.4f} {r.mse_shuffled:8.4f} "
                         f"{r.gain:6.0%}")
        lines.append(f"open loop on {self.chunks} chunks (TCP position error against the demonstration, mm, "
                     "median / mean; hold = not moving):")
        for r in self.open_loop:
            e, h = np.asarray(r.error_mm), np.asarray(r.hold_mm)
            lines.append(f"  {r.arm:<5} after {r.seconds:3.1f} s: policy {np.median(e):6.1f} / {e.mean():6.1f}   "
                         f"hold {np.median(h):6.1f} / {h.mean():6.1f}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for r, d in zip(self.probe, out["probe"]):
            d["gain"] = r.gain
        for r, d in zip(self.open_loop, out["open_loop"]):
            d["error_mm_median"], d["hold_mm_median"] = float(np.median(r.error_mm)), float(np.median(r.hold_mm))
        return out


def noise_probe(policy: Any, video: Any, actions: Any, context: Any, view_ids: Sequence[int],
                sigmas: Sequence[float] = PROBE_SIGMAS, seed: int = 0) -> list[ProbeRow]:
    """``video`` (N, C, V·T, h, w) clean latents, ``actions`` (N, Ta, 14) raw, ``context`` (N, L, ctx)."""
    import torch

    from a2world.policy.diffusion import JointDenoiser
    from a2world.sampler import first_frame_mask

    pc = policy.config
    n, v = video.shape[0], len(view_ids)
    if n < 2:
        raise OfflineEvalError("the noise probe needs at least 2 clips (it shuffles observations between them)")
    p = pc.backbone.patch_spatial
    denoiser = JointDenoiser(policy, v, video.shape[-2] // p, video.shape[-1] // p)
    g = torch.Generator().manual_seed(seed)
    target = policy.normalize_actions(actions)
    # a derangement: every clip gets another clip's observation
    shuffled = video[(torch.arange(n) + 1 + torch.randint(0, n - 1, (1,), generator=g)) % n]
    frame_mask = first_frame_mask(n, v, pc.latent_frames, "cpu")
    prefix_mask = torch.zeros(n, pc.action_horizon)
    ids = torch.tensor([list(view_ids)] * n)
    rows = []
    with torch.no_grad():
        for sa in sigmas:
            sv = sa / pc.action_sigma_ratio
            noise_v, noise_a = torch.randn(video.shape, generator=g), torch.randn(target.shape, generator=g)
            x_v, x_a = video + sv * noise_v, target + sa * noise_a
            s_v, s_a = torch.full((n,), sv), torch.full((n,), sa)
            mse = []
            for cond in (video, shuffled):
                _, x0_a = denoiser(x_v, x_a, s_v, s_a, cond, frame_mask, ids, target, prefix_mask, context)
                mse.append(float((x0_a - target).pow(2).mean()))
            rows.append(ProbeRow(float(sa), float(sv), mse[0], mse[1]))
    return rows


def open_loop(engine: Any, episodes: Sequence[Any], views: Sequence[str], every: int,
              on_chunk: Callable[[int], None] | None = None) -> tuple[list[OpenLoopRow], int]:
    """Sampled chunks from recorded observations against the demonstrations' chunks."""
    from a2w.actions import decode_arm
    from a2w.msgs.arms import ARM_NAMES
    from a2w.msgs.cameras import VIEW_IDS
    from a2w.msgs.common import Pose
    from a2world.policy.engine import PolicyObservation

    horizon = engine.policy.config.action_horizon
    rate = float(engine.policy.config.action_rate_hz)
    steps = [min(horizon, round(s * rate)) - 1 for s in OPEN_LOOP_SECONDS]
    rows = {(a, s): OpenLoopRow(a, s) for a in ARM_NAMES for s in OPEN_LOOP_SECONDS}
    chunks = 0
    for ep in episodes:
        for t in range(0, ep.last_start(horizon) + 1, every):
            ids = [VIEW_IDS[v] for v in views]
            obs = PolicyObservation({i: ep.frames[v][t] for i, v in zip(ids, views)}, {i: 0.0 for i in ids})
            out = engine.predict(obs, ep.instruction, seed=chunks)
            demo = ep.action_chunk(t, horizon)
            for a, arm in enumerate(ARM_NAMES):
                s = ep.state[t, 8 * a:8 * a + 8]
                start = Pose(s[:3], s[3:7])
                got, _, _ = decode_arm(start, out.actions[:, 7 * a:7 * a + 7].astype(np.float64))
                want, _, _ = decode_arm(start, demo[:, 7 * a:7 * a + 7].astype(np.float64))
                for sec, k in zip(OPEN_LOOP_SECONDS, steps):
                    rows[(arm, sec)].error_mm.append(float(np.linalg.norm(got[k] - want[k]) * 1e3))
                    rows[(arm, sec)].hold_mm.append(float(np.linalg.norm(want[k] - s[:3]) * 1e3))
            chunks += 1
            if on_chunk is not None:
                on_chunk(chunks)
    return list(rows.values()), chunks


def evaluate(checkpoint: Path, datasets: Sequence[Path], clips: int = 64, max_episodes: int | None = 10,
             every: int = 30, steps: int = 8, seed: int = 0,
             on_chunk: Callable[[int], None] | None = None) -> OfflineResult:
    import torch

    from a2w.msgs.cameras import VIEW_IDS
    from a2w.train.data import DataConfig, TrainDataError, load_episodes
    from a2world.load_checks import CheckpointLoadError
    from a2world.policy.bundle import load_bundle
    from a2world.policy.engine import PolicyEngine, PolicyEngineConfig
    from a2world.sampler import SamplerConfig
    from a2world.train.latents import encode_clips

    try:
        bundle = load_bundle(checkpoint)
    except CheckpointLoadError as exc:
        raise OfflineEvalError(str(exc).splitlines()[0]) from None
    policy, rt = bundle.policy.eval(), bundle.runtime
    pc = policy.config
    ids = rt.view_ids or tuple(VIEW_IDS.values())
    names = {i: n for n, i in VIEW_IDS.items()}
    if any(i not in names for i in ids):
        raise OfflineEvalError(f"{checkpoint}: view ids {list(ids)} are not all rig views {dict(VIEW_IDS)}")
    views = tuple(names[i] for i in ids)
    size = tuple(rt.image_size) if rt.image_size else (64, 64)
    data = DataConfig(image_size=size, views=views, max_episodes=max_episodes)
    episodes = []
    try:
        for d in datasets:
            episodes += load_episodes(d, data)[0]
    except TrainDataError as exc:
        raise OfflineEvalError(str(exc)) from None
    horizon = pc.action_horizon
    stride = round(30 / pc.backbone.fps)
    starts = [(e, s) for e in episodes for s in range(0, e.last_start(horizon) + 1)]
    if len(starts) < 2:
        raise OfflineEvalError(f"the datasets hold fewer than 2 starts with a full {horizon}-action chunk")
    rng = np.random.default_rng(seed)
    chosen = [starts[i] for i in sorted(rng.choice(len(starts), size=min(clips, len(starts)), replace=False))]
    frames = stride * (pc.pixel_frames - 1) + 1
    video = encode_clips(bundle.tokenizer, (torch.from_numpy(np.stack([e.frames[v][s:s + frames:stride]
                                                                       for v in views])) for e, s in chosen))
    actions = torch.from_numpy(np.stack([e.action_chunk(s, horizon) for e, s in chosen]))
    from a2world.text_embeddings import MissingInstructionError

    try:
        context = torch.stack([bundle.text_cache.get(e.instruction) for e, _ in chosen])
    except MissingInstructionError as exc:
        raise OfflineEvalError(f"{checkpoint}: {exc}") from None
    probe = noise_probe(policy, video, actions, context, ids, seed=seed)
    engine = PolicyEngine(policy, bundle.tokenizer, bundle.text_cache,
                          PolicyEngineConfig(sampler=SamplerConfig(num_steps=steps), seed=seed, view_ids=tuple(ids),
                                             image_size=size, decode_video=False, max_observation_age_s=None))
    rows, chunks = open_loop(engine, episodes, views, every, on_chunk)
    return OfflineResult(str(checkpoint), [str(d) for d in datasets], len(chosen), probe, rows, chunks)
