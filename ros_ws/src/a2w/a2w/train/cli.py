"""`a2w train tokenizer|worldmodel|worldmodel-sim|policy --dataset DIR --config FILE --out DIR [--resume] [--seed N]`.

A config is a YAML (or JSON) file with the sections of its job (configs/train/*.yaml are the
project's); every value left out takes its default, unknown keys are errors. The resolved config
(defaults filled in, paths absolute) is written to ``<out>/train_config.yaml``; ``--resume``
refuses a config that resolves differently. Under ``torchrun`` the same command trains data-parallel
(see docs/training.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

JOBS = ("tokenizer", "worldmodel", "worldmodel-sim", "policy")
SECTIONS = {
    "tokenizer": ("job", "data", "tokenizer", "loop"),
    "worldmodel": ("job", "data", "tokenizer_checkpoint", "latent_cache", "model", "objective", "loop"),
    "worldmodel-sim": ("job", "data", "tokenizer_checkpoint", "latent_cache", "model", "objective", "loop"),
    "policy": ("job", "data", "tokenizer_checkpoint", "latent_cache", "instructions", "model", "objective", "loop"),
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the tokenizer, the world model or the policy on recorded datasets",
                       description="Train one of the stack's models on LeRobot v3 datasets (the recorder's "
                                   "layout). Under torchrun the same command runs data-parallel.")
    tsub = p.add_subparsers(dest="train_job", metavar="JOB", required=True)
    helps = {"tokenizer": "the Wan-structured video tokenizer (VAE) on the datasets' frames",
             "worldmodel": "A2World (pretrained action-to-video) on cached tokenizer latents",
             "worldmodel-sim": "A2World-sim (history-aware) fine-tuned from a worldmodel run",
             "policy": "A2World-policy with the joint loss on cached tokenizer latents"}
    for job in JOBS:
        j = tsub.add_parser(job, help=helps[job], description=f"Train {helps[job]}.")
        j.add_argument("--dataset", action="append", required=True, type=Path, metavar="DIR",
                       help="LeRobot v3 dataset directory (repeat for several)")
        j.add_argument("--config", required=True, type=Path, help="YAML/JSON config (e.g. configs/train/)")
        j.add_argument("--out", required=True, type=Path, help="run directory")
        j.add_argument("--resume", action="store_true", help="continue the run in --out from its saved state")
        j.add_argument("--seed", type=int, default=None, help="run seed (overrides loop.seed)")
        j.add_argument("--stop-at", type=int, default=None, metavar="STEP",
                       help="stop after this step with the state saved (resume later with --resume)")
        j.add_argument("--no-progress", action="store_true", help="no progress bar (log lines only)")
        j.set_defaults(func=_run, job=job)


def _fail(job: str, message: str) -> int:
    sys.stderr.write(f"a2w train {job}: {message}\n")
    return 2


def read_config(path: Path) -> dict[str, Any]:
    import yaml

    from a2world.train import TrainError

    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise TrainError(f"config {path} not found") from None
    except (OSError, yaml.YAMLError) as exc:
        raise TrainError(f"config {path}: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise TrainError(f"config {path} must be a mapping of sections, got {type(data).__name__}")
    return data


def _section(cls: type, data: Any, name: str) -> Any:
    from a2world.load_checks import config_from_dict
    from a2world.train import TrainError

    try:
        return config_from_dict(cls, {} if data is None else data)
    except (ValueError, TypeError) as exc:
        raise TrainError(f"config section {name!r}: {str(exc).splitlines()[0]}") from None


def resolve(job: str, raw: dict[str, Any], datasets: list[Path], seed: int | None,
            config_path: Path) -> dict[str, Any]:
    """The full config of a run: every section as its dataclass, defaults filled, paths absolute."""
    from a2w.train.data import DataConfig
    from a2world.policy.train import PolicyTrainConfig
    from a2world.train import LoopConfig, TrainError
    from a2world.train.policy import PolicyModelConfig
    from a2world.train.tokenizer import TokenizerTrainConfig
    from a2world.train.worldmodel import WorldModelConfig, WorldModelObjective
    from a2world.train.worldmodel_sim import SimModelConfig

    unknown = sorted(set(raw) - set(SECTIONS[job]))
    if unknown:
        raise TrainError(f"config {config_path}: unknown sections {unknown} for the {job} job "
                         f"(expected {list(SECTIONS[job][1:])})")
    if raw.get("job", job) != job:
        raise TrainError(f"config {config_path} is for the {raw['job']!r} job, not {job!r}")
    loop = _section(LoopConfig, raw.get("loop"), "loop")
    if seed is not None:
        loop = loop.with_updates(seed=seed)
    out: dict[str, Any] = {
        "job": job,
        "datasets": [str(d.resolve()) for d in datasets],
        "data": _section(DataConfig, raw.get("data"), "data"),
    }
    if job != "policy" and out["data"].rest_weight != 1.0:
        raise TrainError(f"config {config_path}: data.rest_weight weights the policy's clips; the {job} job "
                         "draws its samples uniformly")
    if job == "tokenizer":
        tcfg = _section(TokenizerTrainConfig, raw.get("tokenizer"), "tokenizer")
        out["tokenizer"] = tcfg.with_updates(init=str(_path(tcfg.init))) if tcfg.init else tcfg
    else:
        tok = raw.get("tokenizer_checkpoint")
        if job == "worldmodel-sim":
            model = _section(SimModelConfig, raw.get("model"), "model")
            out["model"] = model = model.with_updates(init=str(_path(model.init)))
            # the tokenizer the pretrained run was trained with, which its directory holds
            tok = tok or str(Path(model.init) / "tokenizer.safetensors")
        if not isinstance(tok, str) or not tok:
            raise TrainError(f"config {config_path}: tokenizer_checkpoint must name the tokenizer file "
                             "(a tokenizer run's tokenizer.safetensors)")
        out["tokenizer_checkpoint"] = str(_path(tok))
        cache = raw.get("latent_cache")
        out["latent_cache"] = str(_path(cache)) if cache else str(datasets[0].resolve() / ".a2w_cache")
    if job == "worldmodel":
        out["model"] = _section(WorldModelConfig, raw.get("model"), "model")
    if job in ("worldmodel", "worldmodel-sim"):
        out["objective"] = _section(WorldModelObjective, raw.get("objective"), "objective")
    if job == "policy":
        extra = raw.get("instructions") or []
        if not isinstance(extra, list) or not all(isinstance(x, str) and x.strip() for x in extra):
            raise TrainError(f"config {config_path}: instructions must be a list of non-empty strings")
        out["instructions"] = extra
        model = _section(PolicyModelConfig, raw.get("model"), "model")
        if model.init:
            model = model.with_updates(init=str(_path(model.init)))
        out["model"] = model
        out["objective"] = _section(PolicyTrainConfig, raw.get("objective"), "objective")
    out["loop"] = loop
    return out


def _path(p: str) -> Path:
    """Relative paths in a config are relative to the working directory, as on the command line."""
    return Path(p).expanduser().resolve()


def plain(resolved: dict[str, Any]) -> dict[str, Any]:
    def conv(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {k: conv(x) for k, x in dataclasses.asdict(v).items()}
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        return v

    return {k: conv(v) for k, v in resolved.items()}


def _run(args: argparse.Namespace) -> int:
    from a2w.train.data import TrainDataError
    from a2world.train import RunDir, TrainError
    from a2world.train.dist import context_from_env

    for name in ("a2world.train", "a2w.train"):
        logging.getLogger(name).setLevel(logging.INFO)  # progress lines show without -v
    job = args.job
    try:
        if args.stop_at is not None and args.stop_at < 1:
            raise TrainError(f"--stop-at must be >= 1, got {args.stop_at}")
        for d in args.dataset:
            if not d.is_dir():
                raise TrainDataError(f"dataset {d} does not exist")
        resolved = resolve(job, read_config(args.config), args.dataset, args.seed, args.config)
        run = RunDir(args.out)
        ctx = context_from_env()
        _check_run_dir(run, resolved, args.resume, write=ctx.is_main)
        if resolved["loop"].threads is not None:
            import torch

            # before the latent and history caches are encoded too (tens of minutes of the run)
            torch.set_num_threads(resolved["loop"].threads)
        train_job = {"tokenizer": _train_tokenizer, "worldmodel": _train_worldmodel,
                     "worldmodel-sim": _train_worldmodel_sim, "policy": _train_policy}[job]
        result = train_job(resolved, run, ctx, args)
    except (TrainError, TrainDataError) as exc:
        return _fail(job, str(exc))
    if ctx.is_main:
        done = "done" if result.steps >= resolved["loop"].steps else f"stopped at step {result.steps} (--resume)"
        print(f"{job}: {done}, final loss {result.final_loss:.5f}, {result.wall_s:.0f} s -> {run.root}")  # noqa: T201
    return 0


# How fast a run goes, not what it computes: a run resumed on a quieter machine may use more threads.
RESUME_MAY_CHANGE = frozenset({"loop.threads"})


def _check_run_dir(run: Any, resolved: dict[str, Any], resume: bool, write: bool = True) -> None:
    import yaml

    from a2world.train import TrainError

    text = yaml.safe_dump(plain(resolved), sort_keys=False)
    if resume:
        if not run.config_path.is_file():
            raise TrainError(f"{run.root}: nothing to resume (no {run.config_path.name})")
        old, new = _flat(yaml.safe_load(run.config_path.read_text()) or {}), _flat(plain(resolved))
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k) and k not in RESUME_MAY_CHANGE)
        if diff:
            raise TrainError(f"--resume with a different config than {run.config_path}: {', '.join(diff)} differ")
        if old == new:
            return  # otherwise the run's config records the thread count it now runs with
    elif run.has_state():
        raise TrainError(f"{run.root} already holds a run; pass --resume or choose another --out")
    if not write:  # under torchrun rank 0 writes the run directory
        return
    run.root.mkdir(parents=True, exist_ok=True)
    tmp = run.config_path.with_name(run.config_path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(run.config_path)


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _train_tokenizer(resolved: dict[str, Any], run: Any, ctx: Any, args: argparse.Namespace) -> Any:
    import torch

    from a2w.train.data import load_episodes
    from a2world.train import train
    from a2world.train.tokenizer import TokenizerJob

    data = resolved["data"]
    sequences = []
    for d in resolved["datasets"]:
        episodes, _ = load_episodes(d, data, need_actions=False)
        sequences += [torch.from_numpy(ep.frames[v]) for ep in episodes for v in data.views]
    job = TokenizerJob(sequences, resolved["tokenizer"], seed=resolved["loop"].seed)
    log.info("tokenizer: %d sequences, %d training clips", len(sequences), job.num_samples())
    return train(job, resolved["loop"], run, ctx, resume=args.resume, stop_at=args.stop_at,
                 progress=not args.no_progress and sys.stderr.isatty())


@dataclasses.dataclass
class ClipSamples:
    """Latents, 30 Hz action chunks and instruction indices of every training clip."""

    tensors: dict[str, Any]
    instructions: list[str]
    tokenizer: Any
    episodes: int
    samples: list[tuple[Any, int]] = dataclasses.field(default_factory=list)  # (episode, first row) per clip
    key: str = ""  # the latent cache key of these clips


def _clip_samples(resolved: dict[str, Any], frames: int, horizon: int, fps: float, ctx: Any) -> ClipSamples:
    """The clips of every dataset at the model's geometry, their latents from the cache (encoded
    and stored on a miss). One cache file per dataset, so adding a dataset to a run encodes only it."""
    import numpy as np
    import torch

    from a2w.train.data import TrainDataError, load_episodes
    from a2world.load_checks import CheckpointLoadError
    from a2world.tokenizer import WanTokenizer
    from a2world.train import TrainError
    from a2world.train.latents import cache_key, cached, encode_clips, encoder_fingerprint

    data = resolved["data"]
    tok_path = Path(resolved["tokenizer_checkpoint"])
    try:
        tokenizer = WanTokenizer.from_checkpoint(tok_path, dtype=torch.float32)
    except CheckpointLoadError as exc:
        raise TrainError(f"tokenizer_checkpoint: {str(exc).splitlines()[0]}") from None
    stride = 30.0 / fps
    if stride != int(stride) or int(stride) * (frames - 1) != horizon:
        raise TrainError(f"model: {frames} frames at {fps} fps and {horizon} actions at 30 Hz "
                         "do not sit on the dataset's 30 Hz rows")
    stride = int(stride)
    geometry = {"encoder": encoder_fingerprint(tokenizer), "image_size": list(data.image_size),
                "views": list(data.views), "frames": frames, "stride": stride, "horizon": horizon,
                "clip_stride": data.clip_stride, "max_episodes": data.max_episodes}
    parts = []  # per dataset: its samples and its cache key
    for d in resolved["datasets"]:
        eps, fp = load_episodes(d, data, need_actions=True)
        samples = [(e, s) for e in eps for s in range(0, e.last_start(horizon) + 1, data.clip_stride)]
        parts.append((d, eps, samples, cache_key({**geometry, "dataset": fp})))
    episodes = [e for _, eps, _, _ in parts for e in eps]
    no_task = [f"{e.dataset}#{e.index}" for e in episodes if not e.instruction]
    if no_task:
        raise TrainDataError(f"episodes without a task instruction: {', '.join(no_task[:5])}")
    if not any(samples for _, _, samples, _ in parts):
        raise TrainDataError(f"no episode is longer than the model's {horizon / 30:.1f} s chunk "
                             f"({horizon + 1} rows)")
    instructions = list(dict.fromkeys(e.instruction for e in episodes))

    def encoder(d: str, samples: list[tuple[Any, int]]) -> Any:
        def build() -> dict[str, torch.Tensor]:
            clips = (torch.from_numpy(np.stack([e.frames[v][s:s + stride * (frames - 1) + 1:stride]
                                                for v in data.views])) for e, s in samples)
            step = max(1, len(samples) // 20)

            def progress(n: int) -> None:
                if n % step < 8 or n == len(samples):  # about every 5 %
                    log.info("latent cache: %d/%d clips encoded (%s)", n, len(samples), d)

            return {"video": encode_clips(tokenizer, clips, progress=progress)}

        return build

    videos = []
    for d, _, samples, key in parts:
        if not samples:
            continue
        if ctx.is_main:
            video = cached(resolved["latent_cache"], key, encoder(d, samples))["video"]
        ctx.barrier()  # under torchrun rank 0 encodes and writes the cache, the others then read it
        if not ctx.is_main:
            video = cached(resolved["latent_cache"], key, encoder(d, samples))["video"]
        videos.append(video)
    samples = [x for _, _, s, _ in parts for x in s]
    # Actions and instructions come from the episodes each run: cheap, and the instruction list is the run's.
    tensors = {"video": torch.cat(videos),
               "actions": torch.from_numpy(np.stack([e.action_chunk(s, horizon) for e, s in samples])),
               "instruction": torch.tensor([instructions.index(e.instruction) for e, _ in samples], dtype=torch.int64)}
    log.info("%d samples from %d episodes (%d instructions)", len(samples), len(episodes), len(instructions))
    key = cache_key({"datasets": [k for *_, k in parts], "instructions": instructions})
    return ClipSamples(tensors, instructions, tokenizer, len(episodes), samples, key)


def _train_worldmodel(resolved: dict[str, Any], run: Any, ctx: Any, args: argparse.Namespace) -> Any:
    import numpy as np
    import torch

    from a2w.actions import downsample_deltas
    from a2world.train import train
    from a2world.train.worldmodel import WorldModelData, WorldModelJob

    cfg = resolved["model"].build()
    frames = 1 + 4 * (cfg.state_t - 1)
    clips = _clip_samples(resolved, frames, 3 * (frames - 1), cfg.fps, ctx)
    chunks = clips.tensors["actions"].double().numpy()
    # the world model reads one action per predicted frame: three 30 Hz steps composed into one
    actions = torch.from_numpy(np.stack([downsample_deltas(c, 3) for c in chunks]).astype(np.float32))
    data = WorldModelData(clips.tensors["video"], actions, resolved["data"].view_ids)
    job = WorldModelJob(data, resolved["model"], resolved["objective"], clips.tokenizer, seed=resolved["loop"].seed)
    return train(job, resolved["loop"], run, ctx, resume=args.resume, stop_at=args.stop_at,
                 progress=not args.no_progress and sys.stderr.isatty())


def _train_worldmodel_sim(resolved: dict[str, Any], run: Any, ctx: Any, args: argparse.Namespace) -> Any:
    import torch

    from a2w.train.sim_history import executed_actions, history_inputs
    from a2world.checkpoint import load_checkpoint
    from a2world.load_checks import CheckpointLoadError
    from a2world.rollout import RolloutConfig
    from a2world.train import TrainError, train
    from a2world.train.latents import cache_key, cached
    from a2world.train.worldmodel_sim import (
        WorldModelSimData,
        WorldModelSimJob,
        history_latents_per_view,
        sim_config,
    )

    model, data = resolved["model"], resolved["data"]
    try:
        pretrained = load_checkpoint(model.init)
    except CheckpointLoadError as exc:
        raise TrainError(f"model.init: {str(exc).splitlines()[0]}") from None
    cfg = sim_config(pretrained.config, model.history_length)
    frames = 1 + 4 * (cfg.state_t - 1)
    clips = _clip_samples(resolved, frames, 3 * (frames - 1), cfg.fps, ctx)
    history_latents_per_view(len(data.views), model.history_length, clips.tokenizer.temporal_compression,
                             cfg.quirks.history_single_video)
    k = cfg.action_chunk
    # the history and the executed chunks of the same clips, cached beside their latents
    copies = RolloutConfig().initial_history_copies  # what WorldModelRollout and the shadow start from
    key = cache_key({"clips": clips.key, "history": "executed-v1", "history_length": model.history_length,
                     "initial_copies": copies, "chunk": k, "single_video": cfg.quirks.history_single_video})

    def build() -> dict[str, torch.Tensor]:
        latents, features, chunks = [], [], []
        for i, (e, s) in enumerate(clips.samples):
            chunk = executed_actions(e.state, s, k)
            lat, feat = history_inputs(clips.tokenizer, e.frames, e.state, s, data.views, chunk,
                                       cfg.quirks.history_single_video, model.history_length, copies)
            latents.append(torch.from_numpy(lat))
            features.append(torch.from_numpy(feat))
            chunks.append(torch.from_numpy(chunk))
            if (i + 1) % 100 == 0:
                log.info("history of %d/%d clips encoded", i + 1, len(clips.samples))
        return {"history_latent": torch.stack(latents), "history_state": torch.stack(features),
                "actions": torch.stack(chunks)}

    if ctx.is_main:
        hist = cached(resolved["latent_cache"], key, build)
    ctx.barrier()
    if not ctx.is_main:
        hist = cached(resolved["latent_cache"], key, build)
    sim_data = WorldModelSimData(clips.tensors["video"], hist["actions"].float(), data.view_ids,
                                 hist["history_latent"], hist["history_state"])
    job = WorldModelSimJob(sim_data, pretrained, model, resolved["objective"], clips.tokenizer,
                           seed=resolved["loop"].seed)
    return train(job, resolved["loop"], run, ctx, resume=args.resume, stop_at=args.stop_at,
                 progress=not args.no_progress and sys.stderr.isatty())


def _train_policy(resolved: dict[str, Any], run: Any, ctx: Any, args: argparse.Namespace) -> Any:
    from a2w.sim.collect import INSTRUCTIONS
    from a2world.policy.checkpoint import is_policy_checkpoint, read_policy_config
    from a2world.train import train
    from a2world.train.policy import PolicyData, PolicyJob
    from a2world.train.text import hashed_text_cache

    data, model = resolved["data"], resolved["model"]
    pc = model.build()
    init_config = Path(model.init or "") / "config.json"
    if model.init and is_policy_checkpoint(model.init):
        pc = read_policy_config(model.init)  # a policy fine-tuned as it is: its clip geometry
    elif model.init and init_config.is_file():
        from a2world.checkpoint import read_dit_config

        # the clip geometry follows the backbone the policy starts from
        pc = pc.with_updates(backbone=read_dit_config(init_config).with_updates(variant="pretrained"))
    clips = _clip_samples(resolved, pc.pixel_frames, pc.action_horizon, pc.backbone.fps, ctx)
    instructions = clips.instructions
    text = hashed_text_cache(list(dict.fromkeys([*instructions, *INSTRUCTIONS.values(), *resolved["instructions"]])),
                             pc.text_tokens, pc.context_dim)
    t = clips.tensors
    weights = None
    if data.rest_weight != 1.0:
        import torch

        onset = {id(e): e.motion_onset() for e in {id(e): e for e, _ in clips.samples}.values()}
        at_rest = [s < onset[id(e)] for e, s in clips.samples]
        weights = torch.tensor([data.rest_weight if r else 1.0 for r in at_rest], dtype=torch.float64)
        log.info("%d of %d clips start before the arms move, drawn with weight %g", sum(at_rest), len(at_rest),
                 data.rest_weight)
    pdata = PolicyData(t["video"], t["actions"], t["instruction"], instructions, data.view_ids,
                       tuple(data.image_size), weights)
    job = PolicyJob(pdata, model, resolved["objective"], clips.tokenizer, text, seed=resolved["loop"].seed)
    return train(job, resolved["loop"], run, ctx, resume=args.resume, stop_at=args.stop_at,
                 progress=not args.no_progress and sys.stderr.isatty())
