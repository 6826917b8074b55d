"""Every loader, every kind of bad file: one error family (CheckpointLoadError) naming the file and
the problem; NaN/Inf refused unless allowed; float64 refused (not converted).

Loaders: the official A2World `.pt` import, our A2World directory (safetensors + config.json), the
policy directory, `policy.init.read_state_dict`, the VAE (`.pth` and our safetensors), and the
text-embedding cache (library and `a2w text-cache list` in a subprocess).
"""

from __future__ import annotations

import json
import math
import re
import struct
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from a2world.checkpoint import load_checkpoint, load_reference_checkpoint, save_checkpoint
from a2world.config import tiny_config
from a2world.load_checks import CheckpointLoadError, NonFiniteTensorError
from a2world.policy.checkpoint import load_policy, save_policy
from a2world.policy.init import read_state_dict
from a2world.text_embeddings import CACHE_FORMAT, CACHE_VERSION, TextEmbeddingCache
from a2world.vae.config import VAEConfig
from a2world.vae.model import WanVAE
from a2world.vae.weights import SAFETENSORS_FORMAT, SAFETENSORS_VERSION, load_vae, save_vae
from tests.models.support import make_net, make_policy

A2W = Path(sys.executable).with_name("a2w")
UNREADABLE = "empty|truncated|not a readable|corrupted"


# ----------------------------------------------------------------------------- the loaders
@dataclass
class Loader:
    """How one loader's files are written and read. `target` is what the loader is given (file
    or directory); `weights` the tensor file inside it; `config` its JSON config, if any."""

    name: str
    suffix: str  # ".pt", ".pth", ".safetensors" or "" (a directory)
    state: dict[str, torch.Tensor]
    write: Callable[[Path, dict[str, torch.Tensor]], None]  # writes target from a state dict
    load: Callable[..., object]  # load(target, allow_nonfinite=False)
    weights_name: str | None = None  # file inside a directory target
    config_name: str | None = None

    def weights(self, target: Path) -> Path:
        return target / self.weights_name if self.weights_name else target

    def config(self, target: Path) -> Path | None:
        return target / self.config_name if self.config_name else None

    def make(self, directory: Path, state: dict[str, torch.Tensor] | None = None) -> Path:
        target = directory / f"{self.name}{self.suffix}"
        self.write(target, self.state if state is None else state)
        return target


def _a2world_pt() -> Loader:
    net = make_net("pretrained", num_blocks=1)
    state = {f"net.{k}": v.detach().to(torch.bfloat16) for k, v in net.state_dict().items()}
    return Loader(
        "a2world_pt", ".pt", state, lambda t, s: torch.save(s, t),
        lambda t, **kw: load_reference_checkpoint(t, config=tiny_config("pretrained", num_blocks=1), **kw),
    )


def _a2world_dir(tmp: Path) -> Loader:
    net = make_net("sim", num_blocks=1)
    good = save_checkpoint(net, tmp / "a2world_dir_good")
    config_text = (good / "config.json").read_text()

    def write(target: Path, state: dict[str, torch.Tensor]) -> None:
        target.mkdir(parents=True, exist_ok=True)
        save_file(state, str(target / "model.safetensors"), metadata={"format": "a2world"})
        (target / "config.json").write_text(config_text)

    return Loader(
        "a2world_dir", "", dict(net.state_dict()), write, load_checkpoint,
        weights_name="model.safetensors", config_name="config.json",
    )


def _policy_dir(tmp: Path) -> Loader:
    policy = make_policy(seed=0)
    good = save_policy(policy, tmp / "policy_good")
    config_text = (good / "config.json").read_text()

    def write(target: Path, state: dict[str, torch.Tensor]) -> None:
        target.mkdir(parents=True, exist_ok=True)
        save_file(state, str(target / "model.safetensors"), metadata={"format": "a2world-policy"})
        (target / "config.json").write_text(config_text)

    return Loader(
        "policy_dir", "", dict(policy.state_dict()), write, load_policy,
        weights_name="model.safetensors", config_name="config.json",
    )


def _policy_init_pt() -> Loader:
    net = make_net("pretrained", num_blocks=1)
    state = {f"net.{k}": v.detach().to(torch.bfloat16) for k, v in net.state_dict().items()}

    return Loader("policy_init_pt", ".pt", state, lambda t, s: torch.save(s, t), read_state_dict)


def _vae_pth() -> Loader:
    torch.manual_seed(0)
    state = dict(WanVAE(VAEConfig.tiny()).state_dict())
    return Loader(
        "vae_pth", ".pth", state, lambda t, s: torch.save(s, t),
        lambda t, **kw: load_vae(t, config=VAEConfig.tiny(), **kw),
    )


VAE_META = {"format": SAFETENSORS_FORMAT, "version": SAFETENSORS_VERSION, "config": VAEConfig.tiny().to_json()}


def _vae_safetensors() -> Loader:
    torch.manual_seed(1)
    state = dict(WanVAE(VAEConfig.tiny()).state_dict())
    return Loader(
        "vae_st", ".safetensors", state, lambda t, s: save_file(s, str(t), metadata=VAE_META), load_vae,
    )


def _cache_meta(n: int) -> dict[str, str]:
    names = json.dumps([f"instruction {i}" for i in range(n)])
    return {"format": CACHE_FORMAT, "version": CACHE_VERSION, "max_length": "8", "dim": "16", "encoder": "t5",
            "instructions": names}


def _text_cache() -> Loader:
    g = torch.Generator().manual_seed(2)
    state = {f"tokens.{i}": torch.randn(3 + i, 16, generator=g) for i in range(3)}
    return Loader(
        "text_cache", ".safetensors", state,
        lambda t, s: save_file(s, str(t), metadata=_cache_meta(3)), TextEmbeddingCache.load,
    )


@pytest.fixture(scope="module")
def loaders(tmp_path_factory) -> dict[str, Loader]:
    tmp = tmp_path_factory.mktemp("good")
    out = [_a2world_pt(), _a2world_dir(tmp), _policy_dir(tmp), _policy_init_pt(), _vae_pth(), _vae_safetensors(),
           _text_cache()]
    return {ld.name: ld for ld in out}


LOADERS = ["a2world_pt", "a2world_dir", "policy_dir", "policy_init_pt", "vae_pth", "vae_st", "text_cache"]
DIRECTORY_LOADERS = ["a2world_dir", "policy_dir"]
KEYED_LOADERS = [n for n in LOADERS if n != "policy_init_pt"]  # loaders that know the expected keys


def expect_load_error(loader: Loader, target: Path, bad_file: Path, problem: str) -> CheckpointLoadError:
    """The load fails with a CheckpointLoadError, one line, naming `bad_file` and matching `problem`."""
    with pytest.raises(CheckpointLoadError) as info:
        loader.load(target)
    msg = str(info.value)
    assert msg.startswith(f"{bad_file}: ") and info.value.path == str(bad_file), msg
    assert re.search(problem, msg, re.IGNORECASE), msg
    assert "\n" not in msg
    return info.value


def stored_key(loader: Loader, key: str) -> str:
    """A key as the loader names it (the `.pt` import strips the release's `net.` prefix)."""
    return key.removeprefix("net.") if loader.name == "a2world_pt" else key


@pytest.mark.parametrize("name", LOADERS)
def test_good_files_load(loaders, tmp_path, name):
    # the reference point for every corruption below
    assert loaders[name].load(loaders[name].make(tmp_path)) is not None


# ------------------------------------------------------------------------- byte-level damage
def _rewrite(path: Path, data: bytes) -> None:
    path.write_bytes(data)


@pytest.mark.parametrize("name", LOADERS)
def test_missing_file(loaders, tmp_path, name):
    loader = loaders[name]
    target = loader.make(tmp_path)
    weights = loader.weights(target)
    weights.unlink()
    err = expect_load_error(loader, target, weights, "not found")
    assert isinstance(err, FileNotFoundError)


@pytest.mark.parametrize("name", LOADERS)
def test_empty_file(loaders, tmp_path, name):
    loader = loaders[name]
    target = loader.make(tmp_path)
    _rewrite(loader.weights(target), b"")
    expect_load_error(loader, target, loader.weights(target), "empty")


@pytest.mark.parametrize("name", LOADERS)
@pytest.mark.parametrize("fraction", [0.0001, 0.01, 0.3, 0.5, 0.9, 0.9999])
def test_truncated_file(loaders, tmp_path, name, fraction):
    loader = loaders[name]
    target = loader.make(tmp_path)
    weights = loader.weights(target)
    data = weights.read_bytes()
    _rewrite(weights, data[: max(1, min(len(data) - 1, int(len(data) * fraction)))])
    expect_load_error(loader, target, weights, UNREADABLE)


@pytest.mark.parametrize("name", LOADERS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_bytes(loaders, tmp_path, name, seed):
    loader = loaders[name]
    target = loader.make(tmp_path)
    weights = loader.weights(target)
    size = [16, 5000, weights.stat().st_size][seed]
    _rewrite(weights, np.random.default_rng(seed).bytes(size))
    expect_load_error(loader, target, weights, UNREADABLE)


def _tensor_data_offset(path: Path) -> int:
    """A byte offset inside the largest tensor's stored data."""
    data = path.read_bytes()
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            rec = max(z.infolist(), key=lambda i: i.file_size)
        # torch pads the local header's extra field (data alignment): read its lengths there
        name_len, extra_len = struct.unpack("<HH", data[rec.header_offset + 26 : rec.header_offset + 30])
        return rec.header_offset + 30 + name_len + extra_len + rec.file_size // 2
    header_len = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + header_len])
    key = max((k for k in header if k != "__metadata__"), key=lambda k: np.diff(header[k]["data_offsets"])[0])
    start, end = header[key]["data_offsets"]
    return 8 + header_len + (start + end) // 2


@pytest.mark.parametrize("name", ["a2world_pt", "vae_pth", "policy_init_pt"])
@pytest.mark.parametrize("flip", [1, 2, 64])
def test_flipped_tensor_bytes_in_pt(loaders, tmp_path, name, flip):
    loader = loaders[name]
    target = loader.make(tmp_path)
    weights = loader.weights(target)
    data = bytearray(weights.read_bytes())
    at = _tensor_data_offset(weights)
    for i in range(flip):
        data[at + i] ^= 0x10  # a finite-looking change: only a checksum can see it
    _rewrite(weights, bytes(data))
    expect_load_error(loader, target, weights, "corrupted")


@pytest.mark.parametrize("saver", ["a2world_dir", "policy_dir", "vae_st", "text_cache"])
@pytest.mark.parametrize("flip", [1, 2, 64])
def test_flipped_tensor_bytes_in_our_safetensors(loaders, tmp_path, saver, flip):
    """Our writers store a CRC-32 per tensor; flipped data bytes fail it."""
    loader = loaders[saver]
    if saver == "a2world_dir":
        target = save_checkpoint(make_net("sim", num_blocks=1), tmp_path / "ckpt")
    elif saver == "policy_dir":
        target = save_policy(make_policy(seed=0), tmp_path / "policy")
    elif saver == "vae_st":
        target = tmp_path / "vae.safetensors"
        save_vae(WanVAE(VAEConfig.tiny()), target)
    else:
        target = tmp_path / "cache.safetensors"
        cache = TextEmbeddingCache(max_length=8, dim=16)
        cache.add("pick the cube", torch.randn(5, 16))
        cache.save(target)
    loader.load(target)
    weights = loader.weights(target)
    data = bytearray(weights.read_bytes())
    at = _tensor_data_offset(weights)
    for i in range(flip):
        data[at + i] ^= 0x10
    _rewrite(weights, bytes(data))
    expect_load_error(loader, target, weights, "CRC-32")


# --------------------------------------------------------------- valid container, wrong content
def _one_key(state: dict[str, torch.Tensor]) -> str:
    return max(state, key=lambda k: state[k].numel())


@pytest.mark.parametrize("name", KEYED_LOADERS)
@pytest.mark.parametrize("change", ["renamed", "missing", "extra"])
def test_wrong_keys(loaders, tmp_path, name, change):
    loader = loaders[name]
    state = dict(loader.state)
    key = _one_key(state)
    if change == "renamed":
        state[key + "_renamed"] = state.pop(key)
    elif change == "missing":
        del state[key]
    else:
        state[key.rsplit(".", 1)[0] + ".extra"] = torch.zeros(3)
    target = loader.make(tmp_path, state)
    expected = "missing" if change != "extra" else "unexpected"
    err = expect_load_error(loader, target, loader.weights(target), expected)
    assert stored_key(loader, key).rsplit(".", 1)[0] in str(err)


@pytest.mark.parametrize("name", KEYED_LOADERS)
@pytest.mark.parametrize("shape_change", ["grow", "flatten", "scalar"])
def test_wrong_shape(loaders, tmp_path, name, shape_change):
    loader = loaders[name]
    state = dict(loader.state)
    key = _one_key(state)
    t = state[key]
    state[key] = {
        "grow": torch.zeros(*t.shape[:-1], t.shape[-1] + 1, dtype=t.dtype),
        "flatten": t.reshape(-1),
        "scalar": torch.zeros((), dtype=t.dtype),
    }[shape_change]
    target = loader.make(tmp_path, state)
    expect_load_error(loader, target, loader.weights(target), r"mis-shaped|shape mismatch|must be \(n_tokens")


@pytest.mark.parametrize("name", LOADERS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.int32, torch.int64, torch.uint8])
def test_wrong_dtype_is_refused_with_key_and_dtype(loaders, tmp_path, name, dtype):
    loader = loaders[name]
    if name == "policy_init_pt" and not dtype.is_floating_point:
        pytest.skip("read_state_dict passes integer tensors through (training counters)")
    state = dict(loader.state)
    key = _one_key(state)
    state[key] = state[key].to(dtype)
    target = loader.make(tmp_path, state)
    err = expect_load_error(loader, target, loader.weights(target), "unsupported dtype")
    assert f"{stored_key(loader, key)} ({str(dtype).replace('torch.', '')})" in str(err)


@pytest.mark.parametrize("name", LOADERS)
@pytest.mark.parametrize("value, where", [(math.nan, "one"), (math.inf, "one"), (-math.inf, "one"), (math.nan, "all")])
def test_non_finite_refused_unless_allowed(loaders, tmp_path, name, value, where):
    loader = loaders[name]
    state = dict(loader.state)
    key = sorted(state)[len(state) // 2]
    t = state[key].clone()
    if where == "all":
        t.fill_(value)
    else:
        t.view(-1)[t.numel() // 2] = value
    state[key] = t
    target = loader.make(tmp_path, state)
    err = expect_load_error(loader, target, loader.weights(target), "NaN/Inf")
    assert isinstance(err, NonFiniteTensorError), err
    assert stored_key(loader, key) in str(err) and "allow_nonfinite" in str(err)
    assert loader.load(target, allow_nonfinite=True) is not None


def test_non_finite_sum_overflow_is_not_a_false_alarm(loaders, tmp_path):
    # finite values whose float32 sum overflows must still load
    loader = loaders["vae_pth"]
    state = dict(loader.state)
    key = _one_key(state)
    state[key] = torch.full_like(state[key], 3e38)
    loader.load(loader.make(tmp_path, state))


# ----------------------------------------------------------------------------- config files
def _config_cases() -> list[tuple[str, Callable[[str], str], str]]:
    def edit(field: str, value: object) -> Callable[[str], str]:
        def apply(text: str) -> str:
            data = json.loads(text)
            holder = data["config"]["backbone"] if "format" in data else data
            if field.startswith("quirks."):
                holder["quirks"][field.split(".", 1)[1]] = value
            else:
                holder[field] = value
            return json.dumps(data)

        return apply

    return [
        ("empty", lambda t: "", "empty"),
        ("truncated", lambda t: t[: len(t) // 2], "not valid JSON"),
        ("garbage", lambda t: "\x00\xff{{not json", "not"),
        ("list", lambda t: "[1, 2, 3]", "JSON object"),
        ("string_int", edit("num_blocks", "1"), "num_blocks"),
        ("float_int", edit("num_blocks", 1.5), "num_blocks"),
        ("bool_int", edit("num_heads", True), "num_heads"),
        ("zero_heads", edit("num_heads", 0), "num_heads"),
        ("negative", edit("model_channels", -128), "model_channels"),
        ("nan", edit("fps", math.nan), "fps"),
        ("inf", edit("norm_eps", math.inf), "norm_eps"),
        ("unknown", edit("bogus_field", 1), "bogus_field"),
        ("variant", edit("variant", "huge"), "variant"),
        ("tuple", edit("black_pool", [2, 2]), "black_pool"),
        ("quirk_type", edit("quirks.timestep_bf16", "yes"), "timestep_bf16"),
        ("quirks_list", edit("quirks", [1]), "QuirkOptions"),
    ]


@pytest.mark.parametrize("name", DIRECTORY_LOADERS)
@pytest.mark.parametrize("case", _config_cases(), ids=lambda c: c[0])
def test_bad_config_json(loaders, tmp_path, name, case):
    _, mutate, problem = case
    loader = loaders[name]
    target = loader.make(tmp_path)
    config = loader.config(target)
    assert config is not None
    config.write_text(mutate(config.read_text()))
    expect_load_error(loader, target, config, problem)


@pytest.mark.parametrize("name", DIRECTORY_LOADERS)
def test_missing_config_json(loaders, tmp_path, name):
    loader = loaders[name]
    target = loader.make(tmp_path)
    config = loader.config(target)
    config.unlink()
    expect_load_error(loader, target, config, "not found")


@pytest.mark.parametrize(
    "meta_change, problem",
    [
        ({"config": "{not json"}, "VAE config"),
        ({"config": json.dumps({"dim": "8"})}, "dim"),
        ({"config": json.dumps({"dim_mult": [1, 2, -4, 4]})}, "dim_mult"),
        ({"config": json.dumps({"latent_std": [math.nan] * 16})}, "latent_std"),
        ({"config": json.dumps({"dropout": 2.0})}, "dropout"),
        ({"config": None}, "config"),
        ({"format": "other"}, "format"),
        ({"version": "9"}, "version"),
    ],
)
def test_vae_metadata_config(loaders, tmp_path, meta_change, problem):
    loader = loaders["vae_st"]
    target = tmp_path / "vae.safetensors"
    meta = {**VAE_META, **meta_change}
    save_file(loader.state, str(target), metadata={k: v for k, v in meta.items() if v is not None})
    expect_load_error(loader, target, target, problem)


@pytest.mark.parametrize(
    "meta_change, problem",
    [
        ({"max_length": "eight"}, "max_length"),
        ({"dim": None}, "dim"),
        ({"instructions": "[not json"}, "metadata"),
        ({"instructions": json.dumps({"a": 1})}, "list of strings"),
        ({"instructions": json.dumps(["a", "b"])}, "unexpected"),
        ({"instructions": json.dumps(["a", "b", "c", "d"])}, "missing"),
        ({"max_length": "2"}, "tokens"),
        ({"format": "something"}, "format"),
    ],
)
def test_text_cache_metadata(loaders, tmp_path, meta_change, problem):
    loader = loaders["text_cache"]
    target = tmp_path / "cache.safetensors"
    meta = {**_cache_meta(3), **meta_change}
    save_file(loader.state, str(target), metadata={k: v for k, v in meta.items() if v is not None})
    expect_load_error(loader, target, target, problem)


def test_in_memory_cache_refuses_nan_embeddings():
    cache = TextEmbeddingCache(max_length=8, dim=4)
    for value in (math.nan, math.inf, -math.inf):
        bad = torch.zeros(3, 4)
        bad[1, 2] = value
        with pytest.raises(ValueError, match="'open the drawer'.*NaN/Inf"):
            cache.add("open the drawer", bad)
    cache.add("open the drawer", bad, allow_nonfinite=True)
    assert "open the drawer" in cache


# ----------------------------------------------------------------------------- the CLI
def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(A2W), *args], capture_output=True, text=True, timeout=240)


def _corrupt_caches(loader: Loader, directory: Path) -> dict[str, Path]:
    good = loader.make(directory)
    data = good.read_bytes()
    out = {}
    for case, content in [
        ("empty", b""),
        ("truncated", data[: len(data) // 2]),
        ("random", np.random.default_rng(0).bytes(len(data))),
    ]:
        out[case] = directory / f"{case}.safetensors"
        out[case].write_bytes(content)
    nan_state = dict(loader.state)
    nan_state["tokens.1"] = nan_state["tokens.1"].clone().fill_(math.nan)
    out["nan"] = directory / "nan.safetensors"
    loader.write(out["nan"], nan_state)
    out["metadata"] = directory / "metadata.safetensors"
    save_file(loader.state, str(out["metadata"]), metadata={**_cache_meta(3), "instructions": "[oops"})
    out["missing"] = directory / "absent.safetensors"
    return out


def test_cli_text_cache_list_on_corrupt_caches(loaders, tmp_path):
    assert A2W.exists(), f"{A2W} (the installed CLI) is needed"
    caches = _corrupt_caches(loaders["text_cache"], tmp_path)
    for case, path in caches.items():
        res = _run("text-cache", "list", str(path))
        assert res.returncode != 0, (case, res.stdout)
        assert "Traceback" not in res.stderr, (case, res.stderr)
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and str(path) in lines[0] and lines[0].startswith("text-cache list:"), (case, lines)
    allowed = _run("text-cache", "list", "--allow-nonfinite", str(caches["nan"]))
    assert allowed.returncode == 0 and "3 instructions" in allowed.stdout, allowed.stderr


def test_cli_policy_info_on_garbled_config(loaders, tmp_path):
    loader = loaders["policy_dir"]
    target = loader.make(tmp_path)
    loader.config(target).write_text('{"format": "a2world-policy", "config": {"action_horizon": "sixty"}}')
    res = _run("policy", "info", str(target))
    assert res.returncode != 0 and "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "config.json" in lines[0] and "action_horizon" in lines[0], lines
