"""A deployable A2World-policy: the checkpoint directory a policy node loads.

One directory holds everything inference needs, under fixed names, so that ``checkpoint:=DIR`` is
the only argument a launch needs:

* ``model.safetensors`` + ``config.json``: the policy (``a2world.policy.checkpoint``);
* ``tokenizer.safetensors``: the video tokenizer it was trained with (``WanTokenizer.save``);
* ``text_embeddings.safetensors``: the instructions it knows (``TextEmbeddingCache.save``);
* ``runtime.json`` (optional): what the model expects at its inputs: image size, views, and the
  instruction to use when none is given.

Training writes it with :func:`save_bundle`; :func:`write_random_bundle` makes a tiny random one for
smoke tests of the stack (``a2w policy init-tiny``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from a2world.load_checks import CheckpointLoadError, CheckpointNotFoundError, read_json_file
from a2world.policy.checkpoint import load_policy, read_policy_config, save_policy
from a2world.policy.config import PolicyConfig, tiny_policy_config
from a2world.policy.model import A2WorldPolicy, build_policy
from a2world.text_embeddings import TextEmbeddingCache
from a2world.tokenizer import WanTokenizer

TOKENIZER_FILE = "tokenizer.safetensors"
TEXT_EMBEDDINGS_FILE = "text_embeddings.safetensors"
RUNTIME_FILE = "runtime.json"


@dataclass(frozen=True)
class RuntimeInfo:
    """Input conventions stored with a checkpoint (all optional: empty means "the engine default")."""

    image_size: tuple[int, ...] = ()  # (H, W) the model was trained at
    view_ids: tuple[int, ...] = ()  # release view ids, docs/architecture.md §5
    instruction: str = ""  # used when the node is given none

    def __post_init__(self) -> None:
        if self.image_size and (len(self.image_size) != 2 or min(self.image_size) < 1):
            raise ValueError(f"image_size must be (H, W) with positive sizes, got {self.image_size}")
        if len(set(self.view_ids)) != len(self.view_ids) or any(v < 0 for v in self.view_ids):
            raise ValueError(f"view_ids must be distinct ids >= 0, got {self.view_ids}")

    def to_dict(self) -> dict[str, Any]:
        return {"image_size": list(self.image_size), "view_ids": list(self.view_ids), "instruction": self.instruction}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RuntimeInfo:
        unknown = set(d) - {"image_size", "view_ids", "instruction"}
        if unknown:
            raise ValueError(f"unknown keys {sorted(unknown)}")
        return cls(tuple(int(x) for x in d.get("image_size", ())), tuple(int(x) for x in d.get("view_ids", ())),
                   str(d.get("instruction", "")))


@dataclass
class PolicyBundle:
    policy: A2WorldPolicy
    tokenizer: WanTokenizer
    text_cache: TextEmbeddingCache
    runtime: RuntimeInfo = field(default_factory=RuntimeInfo)
    directory: Path | None = None


def bundle_paths(directory: str | Path, tokenizer: str | Path | None = None,
                 text_embeddings: str | Path | None = None) -> tuple[Path, Path]:
    """The tokenizer and text-cache files of ``directory`` unless given explicitly."""
    d = Path(directory)
    return (Path(tokenizer) if tokenizer else d / TOKENIZER_FILE,
            Path(text_embeddings) if text_embeddings else d / TEXT_EMBEDDINGS_FILE)


def read_runtime(directory: str | Path) -> RuntimeInfo:
    path = Path(directory) / RUNTIME_FILE
    if not path.exists():
        return RuntimeInfo()
    payload = read_json_file(path, "policy runtime info")
    try:
        return RuntimeInfo.from_dict(payload)
    except (TypeError, ValueError) as exc:
        raise CheckpointLoadError(path, f"bad runtime info: {exc}") from None


def load_bundle(directory: str | Path, *, tokenizer: str | Path | None = None,
                text_embeddings: str | Path | None = None, device: torch.device | str = "cpu",
                dtype: torch.dtype | None = None, allow_nonfinite: bool = False) -> PolicyBundle:
    """Load a checkpoint directory strictly. Every problem is a ``CheckpointLoadError`` naming the file,
    including a tokenizer or text cache that does not fit the policy."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointNotFoundError(directory, "policy checkpoint directory not found")
    tok_path, text_path = bundle_paths(directory, tokenizer, text_embeddings)
    for path, what in ((tok_path, "tokenizer"), (text_path, "text-embedding cache")):
        if not path.is_file():
            raise CheckpointNotFoundError(path, f"{what} not found (pass its path, or put it in the checkpoint "
                                                f"directory as {path.name})")
    runtime = read_runtime(directory)
    config = read_policy_config(directory)
    tok = WanTokenizer.from_checkpoint(tok_path, dtype=None, device=device, allow_nonfinite=allow_nonfinite)
    if tok.latent_channels != config.backbone.latent_channels:
        raise CheckpointLoadError(tok_path, f"tokenizer has {tok.latent_channels} latent channels, the policy "
                                            f"in {directory} expects {config.backbone.latent_channels}")
    text = TextEmbeddingCache.load(text_path, allow_nonfinite=allow_nonfinite)
    if text.dim != config.context_dim:
        raise CheckpointLoadError(text_path, f"embeddings are {text.dim}-dim, the policy in {directory} expects "
                                             f"{config.context_dim}")
    policy = load_policy(directory, device, dtype, allow_nonfinite=allow_nonfinite)
    return PolicyBundle(policy, tok, text, runtime, directory)


def save_bundle(directory: str | Path, policy: A2WorldPolicy, tokenizer: WanTokenizer,
                text_cache: TextEmbeddingCache, runtime: RuntimeInfo | None = None) -> Path:
    directory = Path(directory)
    save_policy(policy, directory)
    tokenizer.save(directory / TOKENIZER_FILE)
    text_cache.save(directory / TEXT_EMBEDDINGS_FILE)
    if runtime is not None:
        tmp = directory / (RUNTIME_FILE + ".tmp")
        tmp.write_text(json.dumps(runtime.to_dict(), indent=2) + "\n")
        tmp.replace(directory / RUNTIME_FILE)
    return directory


def write_random_bundle(directory: str | Path, instructions: Sequence[str], *, image_size: tuple[int, int] = (64, 64),
                        config: PolicyConfig | None = None, seed: int = 0, step_m: float = 0.001,
                        step_rad: float = 0.005) -> Path:
    """A tiny random-weights bundle: the stack's smoke-test policy, not a trained one.

    The action statistics make each 30 Hz step a small random motion (``step_m`` metres and
    ``step_rad`` radians of standard deviation, grippers open) so that a chunk wanders a few
    millimetres: enough to exercise the executor, harmless to the arms.
    """
    if not instructions:
        raise ValueError("instructions: need at least one")
    if not (math.isfinite(step_m) and step_m > 0 and math.isfinite(step_rad) and step_rad > 0):
        raise ValueError(f"step_m and step_rad must be positive, got {step_m}, {step_rad}")
    cfg = config or tiny_policy_config()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        policy = build_policy(cfg).eval()
        mean = torch.zeros(cfg.action_width)
        std = torch.tensor(([step_m] * 3 + [step_rad] * 3 + [1e-3]) * 2)
        mean[6] = mean[13] = 1.0
        policy.set_action_stats(mean, std)
        cache = TextEmbeddingCache(max_length=cfg.text_tokens, dim=cfg.context_dim, encoder="random")
        g = torch.Generator().manual_seed(seed + 1)
        for text in instructions:
            cache.add(text, torch.randn(min(5, cfg.text_tokens), cfg.context_dim, generator=g))
    tokenizer = WanTokenizer.tiny(seed=seed)
    runtime = RuntimeInfo(tuple(image_size), (0, 1, 2), instructions[0])
    return save_bundle(directory, policy, tokenizer, cache, runtime)
