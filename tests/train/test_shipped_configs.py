"""Every training config the repository ships resolves as `a2w train` resolves it (every section and
field known, every value valid), so a recipe in a model card or docs/training.md cannot rot."""

from __future__ import annotations

from pathlib import Path

import pytest

from a2w.train.cli import read_config, resolve

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "configs" / "train").rglob("*.yaml"))


def test_configs_are_found() -> None:
    names = {p.relative_to(ROOT / "configs" / "train").as_posix() for p in CONFIGS}
    assert {"sim/tokenizer.yaml", "sim/tokenizer_decoder.yaml", "sim/worldmodel.yaml", "sim/worldmodel_sim.yaml",
            "sim/policy.yaml"} <= names, names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.relative_to(ROOT / "configs" / "train").as_posix())
def test_each_shipped_config_resolves(path: Path, tmp_path: Path) -> None:
    raw = read_config(path)
    job = raw.get("job")
    assert job in ("tokenizer", "worldmodel", "worldmodel-sim", "policy"), f"{path}: job {job!r}"
    resolved = resolve(job, raw, [tmp_path], None, path)
    assert resolved["job"] == job and resolved["loop"].steps >= 1
