"""`a2w eval worldmodel`: A2World / A2World-sim rollouts against the real frames of held-out episodes.

From each start row of each episode the model rolls out under the episode's executed 10 Hz actions
(``a2w.train.sim_history.executed_actions``, what A2World-sim is trained on and the shadow feeds it),
chunk after chunk: each chunk is conditioned on the previous chunk's decoded last frame and, for
A2World-sim, on the history, which starts as the real frames up to the start row
(``a2w.train.sim_history.episode_history``, as in training) and grows by each chunk's predicted
frames and actions, as the release's rollout grows it (a2world_release_facts.md §3.5, §4.1). At each
horizon the predicted frame is compared with the recorded one: PSNR and SSIM per view, beside the
copy-the-last-frame baseline (the start frame held) on the same frames.

PSNR is 10·log10(255² / MSE) with the MSE over every compared frame and pixel of a view (so one
identical pair does not make the mean infinite; a baseline on a scene that never moves is
infinite); SSIM is ``a2w.shadow.scores.ssim`` (luminance, 7×7 window), averaged over the frames.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from a2w.evaluation.report import write_report

log = logging.getLogger(__name__)

FPS = 10.0  # the world model's frame rate
ROWS_PER_FRAME = 3  # 30 Hz dataset rows per 10 Hz frame
TOKENIZER_FILE = "tokenizer.safetensors"
MODEL_ROW, BASELINE_ROW = "model", "copy-last-frame"
MODEL_NAMES = {"pretrained": "A2World", "sim": "A2World-sim"}


class EvalError(ValueError):
    """A problem with the command's inputs, said in one line."""


def psnr_from_mse(mse: float) -> float:
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images (or stacks) of one shape; inf when identical."""
    if np.shape(a) != np.shape(b):
        raise ValueError(f"shapes differ: {np.shape(a)} vs {np.shape(b)}")
    return psnr_from_mse(float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)))


@dataclass
class Accumulator:
    """Sums of one (row, horizon, view) cell: squared error and pixel count for PSNR, SSIM per frame."""

    sq: float = 0.0
    pixels: int = 0
    ssims: list[float] = field(default_factory=list)

    def add(self, pred: np.ndarray, real: np.ndarray) -> None:
        from a2w.shadow.scores import ssim

        d = pred.astype(np.float64) - real.astype(np.float64)
        self.sq += float((d * d).sum())
        self.pixels += d.size
        self.ssims.append(ssim(pred, real))

    def summary(self) -> dict[str, float | int | None]:
        mse = self.sq / self.pixels if self.pixels else math.nan
        p = psnr_from_mse(mse) if self.pixels else math.nan
        return {"psnr": None if math.isinf(p) else p, "psnr_inf": math.isinf(p), "mse": mse,
                "ssim": float(np.mean(self.ssims)) if self.ssims else math.nan, "frames": len(self.ssims)}


@dataclass
class EvalResult:
    checkpoint: str
    variant: str
    horizons_s: list[float]
    views: list[str]
    starts: list[dict[str, Any]]  # dataset, episode, seed, row
    cells: dict[tuple[str, float, str], Accumulator]

    def table(self) -> list[dict[str, Any]]:
        rows = []
        for h in self.horizons_s:
            for name in (MODEL_ROW, BASELINE_ROW):
                rows.append({"row": name, "horizon_s": h,
                             "views": {v: self.cells[(name, h, v)].summary() for v in self.views}})
        return rows

    def to_json(self) -> dict[str, Any]:
        return {"checkpoint": self.checkpoint, "variant": self.variant, "horizons_s": self.horizons_s,
                "views": self.views, "starts": self.starts, "rows": self.table()}

    def format(self) -> str:
        width = 16
        head = f"{'horizon':>8}  {'row':<16}" + "".join(f"{v + ' PSNR/SSIM':>{width + 8}}" for v in self.views)
        lines = [head]
        for r in self.table():
            cells = []
            for v in self.views:
                s = r["views"][v]
                p = "inf" if s["psnr_inf"] else f"{s['psnr']:.2f}"
                cells.append(f"{p + ' dB / ' + format(s['ssim'], '.3f'):>{width + 8}}")
            name = MODEL_NAMES.get(self.variant, self.variant) if r["row"] == MODEL_ROW else BASELINE_ROW
            lines.append(f"{r['horizon_s']:>7g}s  {name:<16}" + "".join(cells))
        return "\n".join(lines)


def training_episodes(datasets: Sequence[Path]) -> set[tuple[str, int]]:
    """(task, seed) of every episode of ``datasets`` that has a seed."""
    from a2w.dataset import Dataset

    used: set[tuple[str, int]] = set()
    for root in datasets:
        ds = Dataset(Path(root))
        for ep in ds.episodes:
            meta = ds.episode_meta(ep["episode_index"])
            if meta.get("seed") is not None:
                tasks = ep.get("tasks") or [meta.get("task", "")]
                used.add((str(tasks[0]), int(meta["seed"])))
    return used


def checkpoint_training(checkpoint: Path) -> dict[str, Any]:
    """The checkpoint's run config (``train_config.yaml`` beside it), {} when there is none."""
    import yaml

    path = checkpoint / "train_config.yaml"
    if not path.is_file():
        return {}
    return yaml.safe_load(path.read_text()) or {}


def run_datasets(checkpoint: Path, depth: int = 4) -> list[Path]:
    """The datasets of the checkpoint's run and of the runs it started from (``model.init``)."""
    run = checkpoint_training(checkpoint)
    out = [Path(d) for d in run.get("datasets") or []]
    init = (run.get("model") or {}).get("init")
    if init and depth > 0 and Path(init).is_dir():
        out += run_datasets(Path(init), depth - 1)
    return out


def horizon_frames(horizons_s: Sequence[float]) -> list[int]:
    frames = []
    for h in horizons_s:
        f = h * FPS
        if h <= 0 or abs(f - round(f)) > 1e-6:
            raise EvalError(f"--horizons: {h:g} s is not a positive multiple of the model's 0.1 s frame")
        frames.append(int(round(f)))
    return frames


def load_model(checkpoint: Path, steps: int, seed: int, device: str = "cpu") -> Any:
    """A ``WorldModelRollout`` of the checkpoint directory (model + tokenizer.safetensors)."""
    from a2world.checkpoint import load_checkpoint
    from a2world.load_checks import CheckpointLoadError
    from a2world.rollout import RolloutConfig, WorldModelRollout
    from a2world.sampler import SamplerConfig
    from a2world.tokenizer import WanTokenizer

    try:
        net = load_checkpoint(checkpoint, device)
        tok = WanTokenizer.from_checkpoint(checkpoint / TOKENIZER_FILE, dtype=None, device=device)
    except CheckpointLoadError as exc:
        raise EvalError(str(exc).splitlines()[0]) from None
    # the history budget the model was trained with (A2World-sim's config keeps it)
    config = RolloutConfig(sampler=SamplerConfig(num_steps=steps), seed=seed,
                           history_length=net.config.history_frames_per_view)
    return WorldModelRollout(net, tok, config)


def rollout_from(rollout: Any, episode: Any, start: int, views: Sequence[str], view_ids: Sequence[int],
                 chunks: int, seed: int) -> np.ndarray:
    """uint8 (V, 1 + chunks·K, H, W, 3): the start frame, then the predicted 10 Hz frames."""
    from a2w.train.sim_history import episode_history, executed_actions

    cfg = rollout.net.config
    k = cfg.action_chunk
    actions = executed_actions(episode.state, start, chunks * k)
    current = [episode.frames[v][start] for v in views]
    history = None
    if cfg.use_history:
        history = episode_history(episode.frames, episode.state, start, views, rollout.config.history_length,
                                  rollout.config.initial_history_copies)
    video = [np.stack(current)[:, None]]
    for c in range(chunks):
        chunk = actions[c * k:(c + 1) * k]
        clips = rollout.predict_chunk(current, view_ids, chunk, history, seed + c)
        video.append(clips[:, 1:])
        current = [clips[i, -1] for i in range(len(views))]
        if history is not None:  # the release's rollout: its own frames and the fed actions join the history
            history.append([clips[i, 1:] for i in range(len(views))], chunk)
    return np.concatenate(video, axis=1)


def evaluate(checkpoint: Path, datasets: Sequence[Path], horizons_s: Sequence[float], *,
             episodes: Sequence[int] | None = None, image_size: tuple[int, int] | None = None,
             views: Sequence[str] | None = None, start_every_s: float | None = None, steps: int = 35,
             seed: int = 0, train_datasets: Sequence[Path] = (), device: str = "cpu",
             on_start: Callable[[dict[str, Any]], None] | None = None) -> EvalResult:
    """Roll the checkpoint out from each start of each chosen episode and score it (module docstring)."""
    import torch

    from a2w.msgs.cameras import VIEW_IDS, VIEW_NAMES
    from a2w.train.data import DataConfig, TrainDataError, load_episodes

    checkpoint = Path(checkpoint)
    if not checkpoint.is_dir():
        raise EvalError(f"{checkpoint}: not a checkpoint directory")
    run = checkpoint_training(checkpoint)
    run_data = run.get("data") or {}
    image_size = tuple(image_size or run_data.get("image_size") or (64, 64))
    views = tuple(views or run_data.get("views") or VIEW_NAMES)
    frames_at = horizon_frames(horizons_s)
    rollout = load_model(checkpoint, steps, seed, device)
    cfg = rollout.net.config
    k = cfg.action_chunk
    chunks = math.ceil(max(frames_at) / k)
    span = ROWS_PER_FRAME * chunks * k  # rows one rollout covers
    try:
        cfg_data = DataConfig(image_size=image_size, views=views)
    except ValueError as exc:
        raise EvalError(str(exc)) from None
    train_sets = [*train_datasets, *[d for d in run_datasets(checkpoint) if d.is_dir()]]
    used = training_episodes(train_sets) if train_sets else set()
    loaded = []
    for d in datasets:
        try:
            eps, _ = load_episodes(d, cfg_data, need_actions=True)
        except TrainDataError as exc:
            raise EvalError(str(exc)) from None
        chosen = eps if episodes is None else [e for e in eps if e.index in set(episodes)]
        if episodes is not None and len(chosen) != len(set(episodes)):
            have = sorted(e.index for e in eps)
            raise EvalError(f"dataset {d}: --episodes {sorted(set(episodes))} not all among {have}")
        for e in chosen:
            if e.seed is not None and (e.instruction, int(e.seed)) in used:
                raise EvalError(f"dataset {d} episode {e.index} (seed {e.seed}, {e.instruction!r}) is in the "
                                f"training data ({', '.join(map(str, train_sets))}): not held out")
        loaded += chosen
    step = ROWS_PER_FRAME * max(1, round((start_every_s or 0) * FPS)) if start_every_s else None
    starts = []
    for e in loaded:
        last = e.length - 1 - span
        rows = [0] if step is None else list(range(0, max(last, -1) + 1, step))
        starts += [(e, r) for r in rows if r <= last]
    if not starts:
        longest = max((e.length for e in loaded), default=0)
        raise EvalError(f"no episode is long enough: a {max(horizons_s):g} s horizon rolls out {chunks} chunk(s) "
                        f"= {span + 1} rows; the longest episode has {longest}")
    view_ids = [VIEW_IDS[v] for v in views]
    cells = {(name, h, v): Accumulator() for name in (MODEL_ROW, BASELINE_ROW) for h in horizons_s for v in views}
    described = []
    for i, (e, s) in enumerate(starts):
        with torch.inference_mode():
            video = rollout_from(rollout, e, s, views, view_ids, chunks, seed)
        for h, f in zip(horizons_s, frames_at):
            for j, v in enumerate(views):
                real = e.frames[v][s + ROWS_PER_FRAME * f]
                cells[(MODEL_ROW, h, v)].add(video[j, f], real)
                cells[(BASELINE_ROW, h, v)].add(e.frames[v][s], real)
        info = {"dataset": e.dataset, "episode": e.index, "seed": e.seed, "row": s}
        described.append(info)
        if on_start is not None:
            on_start({**info, "index": i + 1, "of": len(starts)})
    return EvalResult(str(checkpoint), cfg.variant, list(horizons_s), list(views), described, cells)


def write_json(result: EvalResult, path: Path) -> None:
    write_report(path, result.to_json())
