"""Checked reading of every file the models load: torch `.pt`/`.pth`, safetensors, JSON configs.

Every failure is a :class:`CheckpointLoadError` whose message starts with the file and says what is
wrong with it (empty, truncated, corrupted, wrong keys/shapes/dtype, non-finite values, bad
configuration), whatever the underlying library raised.

Integrity: a `.pt` is a zip archive whose records carry CRC-32s; they are verified before loading,
so flipped bytes inside a tensor are caught. Safetensors has no checksum, so the files we write
store a CRC-32 per tensor in their metadata (:func:`crc_metadata`), verified when present.

Dtypes: A2World's weights are bf16 (release) or fp32/bf16 (ours). Any other dtype, float64
included, is refused with the key and dtype named rather than converted: a float64 file is not
something the release or our tools write, so it points at a wrong export, and silently casting
would hide that. Convert such a file explicitly if it is wanted.

Non-finite values (NaN/Inf) are refused unless the caller passes `allow_nonfinite=True`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
import zipfile
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import torch
from torch import Tensor

T = TypeVar("T")
C = TypeVar("C", bound="JsonConfig")

WEIGHT_DTYPES: tuple[torch.dtype, ...] = (torch.bfloat16, torch.float16, torch.float32)
CRC_METADATA_KEY = "crc32"
NONFINITE_HINT = "pass allow_nonfinite=True (CLI: --allow-nonfinite) to load it anyway"
_LISTED = 8  # offending keys named in one message


class CheckpointLoadError(ValueError):
    """A file that cannot be loaded; `str()` is "<path>: <problem>"."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class CheckpointNotFoundError(CheckpointLoadError, FileNotFoundError):
    """The file (or a file a checkpoint directory needs) does not exist."""


class NonFiniteTensorError(CheckpointLoadError):
    """Tensors holding NaN or Inf, refused unless `allow_nonfinite=True`."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _listed(items: list[str]) -> str:
    more = f" and {len(items) - _LISTED} more" if len(items) > _LISTED else ""
    return ", ".join(items[:_LISTED]) + more


def require_file(path: str | Path, what: str) -> Path:
    """`path` as a Path; CheckpointLoadError unless it is a non-empty regular file."""
    p = Path(path)
    if not p.exists():
        raise CheckpointNotFoundError(p, f"{what} not found")
    if not p.is_file():
        raise CheckpointLoadError(p, f"{what} must be a file, found a directory or special file")
    if p.stat().st_size == 0:
        raise CheckpointLoadError(p, f"{what} is empty (0 bytes)")
    return p


# ------------------------------------------------------------------------------ torch .pt files
def _verify_zip(path: Path) -> None:
    """Read every record of a torch zip archive, checking its CRC-32 (truncation, flipped bytes)."""
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                with archive.open(info) as record:
                    while record.read(1 << 24):
                        pass
    except zipfile.BadZipFile as exc:
        if "CRC" in str(exc):
            raise CheckpointLoadError(
                path, f"corrupted: {exc} (the file's bytes changed after it was written)") from exc
        raise CheckpointLoadError(
            path, f"not a readable torch checkpoint (zip archive): {exc}; the file is truncated or not a checkpoint"
        ) from exc
    except (OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise CheckpointLoadError(path, f"truncated or corrupted zip archive: {_first_line(exc)}") from exc


def read_torch_file(path: str | Path, what: str = "checkpoint") -> Any:
    """`torch.load` (weights only, memory-mapped) of a verified zip archive; errors name the file."""
    p = require_file(path, what)
    _verify_zip(p)
    try:
        return torch.load(p, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # torch.load raises many unrelated types for a bad archive
        raise CheckpointLoadError(p, f"cannot be read as a torch checkpoint: {_first_line(exc)}") from exc


def tensor_dict(path: str | Path, obj: Any, what: str = "checkpoint") -> dict[str, Tensor]:
    """`obj` as a flat dict of tensors with string keys, else CheckpointLoadError."""
    if not isinstance(obj, Mapping):
        raise CheckpointLoadError(path, f"{what} must hold a dict of tensors, got {type(obj).__name__}")
    bad = [f"{k!r} ({type(v).__name__})" for k, v in obj.items() if not (isinstance(k, str) and isinstance(v, Tensor))]
    if bad:
        raise CheckpointLoadError(path, f"{what} must map names to tensors; not tensors: {_listed(bad)}")
    return dict(obj)


# ------------------------------------------------------------------------------ safetensors
def tensor_crc32(t: Tensor) -> int:
    return zlib.crc32(t.detach().contiguous().reshape(-1).view(torch.uint8).cpu().numpy())


def crc_metadata(state: Mapping[str, Tensor]) -> dict[str, str]:
    """Metadata entry holding each tensor's CRC-32, for :func:`read_safetensors_file` to verify."""
    return {CRC_METADATA_KEY: json.dumps({k: tensor_crc32(v) for k, v in state.items()}, sort_keys=True)}


def _verify_crc(path: Path, meta: Mapping[str, str], tensors: Mapping[str, Tensor]) -> None:
    if CRC_METADATA_KEY not in meta:
        return  # written before checksums were stored
    try:
        stored = json.loads(meta[CRC_METADATA_KEY])
        if not isinstance(stored, dict) or set(stored) != set(tensors):
            raise ValueError("its keys differ from the file's tensors")
    except ValueError as exc:
        raise CheckpointLoadError(path, f"corrupted: the stored CRC-32 table is unreadable ({exc})") from exc
    bad = [k for k, t in tensors.items() if tensor_crc32(t) != stored[k]]
    if bad:
        raise CheckpointLoadError(
            path, f"corrupted: {len(bad)} tensor(s) fail their stored CRC-32: {_listed(bad)}"
        )


def read_safetensors_file(path: str | Path, what: str = "checkpoint") -> tuple[dict[str, str], dict[str, Tensor]]:
    """(metadata, tensors) of a safetensors file, CRC-32s verified when stored; errors name the file."""
    from safetensors import safe_open

    p = require_file(path, what)
    try:
        with safe_open(str(p), framework="pt", device="cpu") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # SafetensorError, OSError, ...: all mean an unreadable file
        raise CheckpointLoadError(
            p, f"not a readable safetensors file ({_first_line(exc)}); the file is truncated or not a {what}"
        ) from exc
    _verify_crc(p, meta, tensors)
    return meta, tensors


# ------------------------------------------------------------------------------ tensor values
def _all_finite(t: Tensor) -> bool:
    # NaN and Inf propagate through a sum; a finite sum proves every element finite. Only an
    # overflowing (or truly non-finite) sum needs the exact, slower check.
    if torch.isfinite(t.sum(dtype=torch.float32)):
        return True
    return bool(torch.isfinite(t).all())


def check_tensors(
    path: str | Path,
    tensors: Mapping[str, Tensor],
    *,
    allow_nonfinite: bool = False,
    dtypes: tuple[torch.dtype, ...] = WEIGHT_DTYPES,
) -> None:
    """Refuse tensors of another dtype and (unless allowed) tensors holding NaN/Inf, naming them."""
    wrong = [f"{k} ({str(t.dtype).replace('torch.', '')})" for k, t in tensors.items() if t.dtype not in dtypes]
    if wrong:
        allowed = ", ".join(str(d).replace("torch.", "") for d in dtypes)
        raise CheckpointLoadError(
            path, f"{len(wrong)} tensor(s) of an unsupported dtype: {_listed(wrong)}; supported: {allowed} "
            "(a float64 file is refused, not converted: convert it explicitly)"
        )
    if allow_nonfinite:
        return
    bad = []
    for k, t in tensors.items():
        if not _all_finite(t):
            n = int((~torch.isfinite(t)).sum())
            bad.append(f"{k} ({n} of {t.numel()} values)")
    if bad:
        raise NonFiniteTensorError(path, f"NaN/Inf values in {len(bad)} tensor(s): {_listed(bad)}; {NONFINITE_HINT}")


# ------------------------------------------------------------------------------ JSON configs
def read_json_file(path: str | Path, what: str = "configuration") -> dict[str, Any]:
    """A JSON object from a file; CheckpointLoadError naming the file, line and column otherwise."""
    p = require_file(path, what)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise CheckpointLoadError(p, f"{what} is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise CheckpointLoadError(
            p, f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    if not isinstance(data, dict):
        raise CheckpointLoadError(p, f"{what} must be a JSON object, got {type(data).__name__}")
    return data


def parse_config(path: str | Path, parse: Callable[[], T], what: str = "configuration") -> T:
    """Run `parse` (a config class's from_dict, a model build); its errors become "<path>: ..."."""
    try:
        return parse()
    except CheckpointLoadError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, ArithmeticError, RuntimeError) as exc:
        raise CheckpointLoadError(path, f"invalid {what}: {_first_line(exc)}") from exc


def _matches(value: Any, hint: Any) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if hint is str:
        return isinstance(value, str)
    if hint is type(None):
        return value is None
    if origin is Literal:
        return value in args
    if origin in (Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_matches(v, args[0]) for v in value)
        return len(value) == len(args) and all(_matches(v, a) for v, a in zip(value, args))
    return True  # nested dataclasses and other annotations are checked by their own parser


def _describe(hint: Any) -> str:
    return hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")


def check_field_types(cls: type, data: Any) -> None:
    """ValueError listing every field of `data` whose JSON value does not fit `cls`'s annotation
    (booleans are not ints, floats must be finite); unknown fields are the caller's check."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{cls.__name__} must be a JSON object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    bad = [
        f"{name}={value!r} (expected {_describe(hints[name])})"
        for name, value in data.items()
        if name in hints and not dataclasses.is_dataclass(hints[name]) and not _matches(value, hints[name])
    ]
    if bad:
        raise ValueError(f"{cls.__name__} fields of the wrong type: {'; '.join(bad)}")


def config_from_dict(cls: type[T], data: Any) -> T:
    """Dataclass `cls` from its JSON form, strictly: wrong types (:func:`check_field_types`) and
    unknown fields are ValueErrors naming them; nested dataclass fields are read the same way and
    JSON lists become tuples where the field is one. Checks on values are the class's own."""
    check_field_types(cls, data)
    unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields: {unknown}")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, value in data.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            value = config_from_dict(hint, value)
        elif typing.get_origin(hint) is tuple:
            value = tuple(value)
        values[name] = value
    return cls(**values)


class JsonConfig:
    """JSON form of a frozen config dataclass: `to_dict`/`to_json` out, strict `from_dict` in."""

    def with_updates(self: C, **changes: Any) -> C:
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[C], data: Any) -> C:
        return config_from_dict(cls, data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)
