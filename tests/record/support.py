"""Helpers of the recorder tests: synthetic episodes, LeRobot's view of a dataset, frame checks."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from a2w.dataset import Dataset
from a2w.record.writer import DatasetWriter, Row
from tests.record.frames import VIEWS, H, W, frame, state

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent
FRAME_TOLERANCE = 8.0  # mean absolute error (of 255) of an H.264 frame against what was recorded


def synthetic_row(episode: int, r: int, stalled: Sequence[str] = (), t0: float = 1.7e9,
                  sources: dict[str, int] | None = None) -> Row:
    """Row ``r`` of synthetic episode ``episode``; views in ``stalled`` repeat the picture of row
    ``sources[view]`` (default r - 1: a stalled camera, as the grid duplicates it) and carry that
    frame's stamp."""
    images, stamps = {}, []
    for k, v in enumerate(VIEWS):
        src = (sources or {}).get(v, r - 1) if v in stalled else r
        images[v] = frame(episode, src, k)
        stamps.append(t0 + src / 30.0 + 0.001 * k)
    s = state(episode, r)
    return Row(images, s, np.linspace(-1, 1, 14) + r * 0.01, state(episode, r + 1), np.array(stamps),
               np.array([v in stalled for v in VIEWS]), t0 + r / 30.0 - 0.002, t0 + r / 30.0)


def expected_source_rows(n: int, stalls: dict[int, Sequence[str]]) -> dict[str, list[int]]:
    """For each view, which synthetic row's picture each of ``n`` rows shows."""
    out = {v: list(range(n)) for v in VIEWS}
    for r, views in stalls.items():
        for v in views:
            out[v][r] = out[v][r - 1]
    return out


def write_episodes(root: Path, lengths: Sequence[int], stalls: dict[int, dict[int, Sequence[str]]] | None = None,
                   task: str = "lift the box with both arms") -> list[int]:
    stalls = stalls or {}
    with DatasetWriter(root, VIEWS, W, H) as w:
        done = []
        for n in lengths:
            e = len(w.episodes)
            ep = w.begin_episode(task, seed=e)
            src = expected_source_rows(n, stalls.get(e, {}))
            for r in range(n):
                ep.add_row(synthetic_row(e, r, stalls.get(e, {}).get(r, ()),
                                         sources={v: src[v][r] for v in VIEWS}))
            done.append(ep.save().episode_index)
    return done


def lerobot_views(python: str, roots: Sequence[Path], out_dir: Path
                  ) -> list[tuple[dict[str, Any], dict[str, np.ndarray]]]:
    """What LeRobot's ``LeRobotDataset`` sees in each of ``roots``: its report and every decoded
    frame (one LeRobot process for all)."""
    outs = [out_dir / f"lerobot_{i}_{root.name}.json" for i, root in enumerate(roots)]
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               HF_HOME=str(out_dir / "hf"))
    argv = [python, str(HERE / "lerobot_check.py")]
    for root, out in zip(roots, outs):
        argv += [str(root), str(out)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=900, env=env, cwd=ROOT)
    assert proc.returncode == 0, f"LeRobot's loader refused one of {roots}:\n{proc.stderr[-4000:]}"
    views = []
    for out in outs:
        with np.load(out.with_suffix(".npz")) as z:
            views.append((json.loads(out.read_text()), {k: z[k] for k in z.files}))
    return views


def lerobot_view(python: str, root: Path, out_dir: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    return lerobot_views(python, [root], out_dir)[0]


def frame_errors(decoded: np.ndarray, episode: int, sources: list[int], view: int) -> np.ndarray:
    """(rows, 3) mean abs error of each decoded frame against its source row and both neighbours."""
    errs = np.empty((len(sources), 3))
    for r, src in enumerate(sources):
        for j, d in enumerate((0, -1, 1)):
            errs[r, j] = np.abs(decoded[r].astype(np.float64) - frame(episode, src + d, view)).mean()
    return errs


def assert_frames_match(decoded: np.ndarray, episode: int, sources: list[int], view: int, what: str) -> None:
    """Every decoded frame is its source picture within codec tolerance, and closer to it than to
    the pictures of the neighbouring rows (a frame shifted by one row fails)."""
    assert len(decoded) == len(sources), f"{what}: {len(decoded)} frames for {len(sources)} rows"
    errs = frame_errors(decoded, episode, sources, view)
    worst = int(np.argmax(errs[:, 0]))
    assert errs[worst, 0] < FRAME_TOLERANCE, f"{what} row {worst}: error {errs[worst, 0]:.1f}"
    shifted = np.flatnonzero(errs[:, 0] >= np.minimum(errs[:, 1], errs[:, 2]))
    assert shifted.size == 0, f"{what}: rows {shifted.tolist()} look like a neighbour's frame"


def check_with_own_reader(root: Path, episodes: dict[int, int], stalls: dict[int, dict[int, Sequence[str]]]
                          | None = None) -> None:
    """Every listed episode (index -> length) is in ``root`` with every frame of every camera."""
    stalls = stalls or {}
    ds = Dataset(root)
    by_index = {e["episode_index"]: e for e in ds.episodes}
    for e, n in episodes.items():
        assert e in by_index, f"saved episode {e} is missing from {root}"
        ep = by_index[e]
        assert ep["length"] == n, f"episode {e}: {ep['length']} rows, {n} were saved"
        src = expected_source_rows(n, stalls.get(e, {}))
        for k, v in enumerate(VIEWS):
            decoded = np.stack(list(ds.frames(ep, f"observation.images.{v}")))
            assert_frames_match(decoded, e, src[v], k, f"episode {e} {v}")
        t = ds.data(ep)
        np.testing.assert_allclose(np.stack(t.column("observation.state").to_pylist()),
                                   np.stack([state(e, r) for r in range(n)]), atol=1e-6)
