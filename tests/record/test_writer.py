"""The dataset writer: stock LeRobot v3 that LeRobot's own loader opens frame for frame, resume,
refused rows, stalled cameras, and `a2w dataset validate` catching broken invariants."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from a2w.actions import encode_dual
from a2w.cli import main as a2w_main
from a2w.dataset import Dataset, validate
from a2w.record import layout as L
from a2w.record.writer import DatasetError, DatasetWriter, EpisodeFailed, RowRefused
from tests.record.frames import VIEWS, H, W, frame, state
from tests.record.support import (
    assert_frames_match,
    check_with_own_reader,
    expected_source_rows,
    lerobot_view,
    synthetic_row,
    write_episodes,
)

STALLS = {1: {**{r: ("front",) for r in range(10, 15)}, 30: ("left_wrist", "right_wrist")}}


def test_lerobot_opens_every_episode_with_its_frames_stamps_and_stall_flags(tmp_path: Path,
                                                                             lerobot_python: str) -> None:
    root = tmp_path / "ds"
    lengths = [37, 52]
    assert write_episodes(root, lengths, STALLS) == [0, 1]
    assert validate(root) == []
    check_with_own_reader(root, dict(enumerate(lengths)), STALLS)

    report, frames = lerobot_view(lerobot_python, root, tmp_path)
    assert report["codebase_version"] == "v3.0"
    assert report["len"] == sum(lengths) and report["num_episodes"] == 2 and report["fps"] == 30
    ours = L.build_features(VIEWS, W, H, 30, "h264")
    assert report["features"] == {k: {"dtype": f["dtype"], "shape": f["shape"]} for k, f in ours.items()}
    assert report["tasks"] == ["lift the box with both arms"]
    rows = report["rows"]
    assert [r["index"] for r in rows] == list(range(sum(lengths)))
    start = 0
    for e, n in enumerate(lengths):
        ep_rows = rows[start:start + n]
        assert [r["episode_index"] for r in ep_rows] == [e] * n
        assert [r["frame_index"] for r in ep_rows] == list(range(n))
        np.testing.assert_allclose([r["timestamp"] for r in ep_rows], np.arange(n) / 30, atol=1e-6)
        np.testing.assert_allclose([r["state"] for r in ep_rows], [state(e, r) for r in range(n)], atol=1e-6)
        # action: the A2World delta between consecutive commanded targets, from the measured start
        poses = np.stack([state(e, 0)] + [state(e, r + 1) for r in range(n)]).reshape(-1, 2, 8)
        np.testing.assert_allclose([r["action"] for r in ep_rows], encode_dual(poses), atol=1e-5)
        flags = [[v in STALLS.get(e, {}).get(r, ()) for v in VIEWS] for r in range(n)]
        assert [r["camera_stalled"] for r in ep_rows] == flags
        # the real capture stamps, relative to the episode's first row: a stalled view keeps its
        # duplicated frame's (older) stamp
        src = expected_source_rows(n, STALLS.get(e, {}))
        want = [[src[v][r] / 30 + 0.001 * k for k, v in enumerate(VIEWS)] for r in range(n)]
        np.testing.assert_allclose([r["camera_stamps"] for r in ep_rows], want, atol=1e-4)
        for k, v in enumerate(VIEWS):
            decoded = frames[f"observation.images.{v}"][start:start + n]
            assert_frames_match(decoded, e, src[v], k, f"LeRobot episode {e} {v}")
        start += n


def test_reopening_resumes_after_the_saved_episodes_and_refuses_other_features(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    write_episodes(root, [20])
    write_episodes(root, [25, 15])
    ds = Dataset(root)
    assert [(e["episode_index"], e["dataset_from_index"], e["dataset_to_index"]) for e in ds.episodes] == \
        [(0, 0, 20), (1, 20, 45), (2, 45, 60)]
    assert ds.info["total_episodes"] == 3 and ds.info["total_frames"] == 60
    assert validate(root) == []
    check_with_own_reader(root, {0: 20, 1: 25, 2: 15})
    for kwargs in ({"fps": 15}, {"width": W + 2}, {"views": VIEWS[:2]}):
        args = {"root": root, "views": VIEWS, "width": W, "height": H, **kwargs}
        with pytest.raises(DatasetError):
            DatasetWriter(**args)
    with DatasetWriter(root, VIEWS, W, H):
        with pytest.raises(DatasetError, match="another recorder"):
            DatasetWriter(root, VIEWS, W, H)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_rows_with_non_finite_values_are_refused_with_the_field_in_the_episode_log(tmp_path: Path,
                                                                                   bad: float) -> None:
    root = tmp_path / "ds"
    fields = ["state", "joints", "target", "camera_stamps", "state_stamp", "stamp", "latency"]
    with DatasetWriter(root, VIEWS, W, H) as w:
        ep = w.begin_episode("pick", seed=1)
        good = 0
        for r in range(12):
            ep.add_row(synthetic_row(0, good))
            good += 1
            if r < len(fields):
                row = synthetic_row(0, good)
                name = fields[r]
                val = getattr(row, name)
                if isinstance(val, np.ndarray):
                    val = val.astype(np.float64).copy()
                    val[r % len(val)] = bad
                else:
                    val = bad
                setattr(row, name, val)
                with pytest.raises(RowRefused, match=name):
                    ep.add_row(row)
        s = ep.save()
    assert s.length == good == 12 and s.refused_rows == len(fields)
    meta = json.loads((root / L.a2w_episode_path(0)).read_text())
    assert meta["refused_rows"] == len(fields)
    refusals = [line for line in meta["log"] if "refused" in line]
    assert len(refusals) == len(fields)
    for name, line in zip(fields, refusals):
        assert line.startswith("ERROR") and name in line and ("nan" in line or "inf" in line)
    assert validate(root) == []
    check_with_own_reader(root, {0: 12})


def test_rows_without_one_good_frame_per_camera_are_refused(tmp_path: Path) -> None:
    with DatasetWriter(tmp_path / "ds", VIEWS, W, H) as w:
        ep = w.begin_episode("pick")
        cases = {
            "no frame for view 'front'": lambda imgs: imgs.pop("front"),
            "expected uint8": lambda imgs: imgs.__setitem__("front", imgs["front"].astype(np.float32)),
            r"\(64, 94, 3\)": lambda imgs: imgs.__setitem__("left_wrist", imgs["left_wrist"][:, :94]),
        }
        for message, spoil in cases.items():
            row = synthetic_row(0, 0)
            row.images = dict(row.images)
            spoil(row.images)
            with pytest.raises(RowRefused, match=message):
                ep.add_row(row)
        assert ep.length == 0
        with pytest.raises(EpisodeFailed, match="no rows"):
            ep.save()
    assert Dataset(tmp_path / "ds").episodes == []


def _corrupt_nan(root: Path) -> tuple[int, int]:
    path = root / L.data_path(1)
    t = pq.read_table(path)
    states = np.stack(t.column(L.STATE_KEY).to_pylist()).astype(np.float32)
    states[7, 3] = np.nan
    col = pa.FixedSizeListArray.from_arrays(pa.array(states.reshape(-1)), 16)
    pq.write_table(t.set_column(t.column_names.index(L.STATE_KEY), L.STATE_KEY, col), path)
    return 1, 7


def _corrupt_short_video(root: Path) -> tuple[int, int]:
    import av

    path = root / L.video_path(0, L.image_key("front"))
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        for r in range(15):
            for p in s.encode(av.VideoFrame.from_ndarray(frame(0, r, 2), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return 0, 15


def _corrupt_timestamp(root: Path) -> tuple[int, int]:
    path = root / L.data_path(1)
    t = pq.read_table(path)
    ts = t.column("timestamp").to_numpy().copy()
    ts[4] += 0.01
    pq.write_table(t.set_column(t.column_names.index("timestamp"), "timestamp", pa.array(ts)), path)
    return 1, 4


def _corrupt_missing_rows(root: Path) -> tuple[int, int]:
    path = root / L.data_path(0)
    pq.write_table(pq.read_table(path).slice(0, 18), path)
    return 0, -1


@pytest.mark.parametrize("corrupt", [_corrupt_nan, _corrupt_short_video, _corrupt_timestamp,
                                     _corrupt_missing_rows])
def test_validate_names_the_episode_and_row_of_each_broken_invariant(tmp_path: Path, corrupt, capsys) -> None:
    root = tmp_path / "ds"
    write_episodes(root, [20, 20])
    assert a2w_main(["dataset", "validate", str(root)]) == 0
    episode, row = corrupt(root)
    problems = validate(root)
    assert problems, "the corruption went unnoticed"
    assert problems[0].episode == episode and problems[0].row == row, problems
    capsys.readouterr()
    assert a2w_main(["dataset", "validate", str(root)]) == 1
    err = capsys.readouterr().err
    assert f"episode {episode}" in err and (row < 0 or f"row {row}" in err) and "INVALID" in err


def test_dataset_info_reports_episodes_frames_and_seeds(tmp_path: Path, capsys) -> None:
    root = tmp_path / "ds"
    write_episodes(root, [20, 31], STALLS)
    assert a2w_main(["dataset", "info", "--json", str(root)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["episodes"] == 2 and info["frames"] == 51 and info["seeds"] == [0, 1]
    assert info["stalled_frames"] == 5 + 2 and info["cameras"] == list(VIEWS)
    out = tmp_path / "e1.mp4"
    assert a2w_main(["dataset", "export-video", str(root), "--episode", "1", "--out", str(out)]) == 0
    import av

    with av.open(str(out)) as c:
        assert c.streams.video[0].width == 3 * W and sum(1 for _ in c.decode(video=0)) == 31
    shutil.rmtree(root)
    assert a2w_main(["dataset", "info", str(root)]) == 2


def test_an_encoder_that_falls_behind_makes_the_recorder_wait_and_count_never_drop(tmp_path: Path, caplog) -> None:
    from a2w.record.encoder import VideoSettings

    # a two-frame queue and a slow preset: the producer (no other work) outruns the encoder
    video = VideoSettings(preset="medium", queue_size=2)
    root = tmp_path / "ds"
    with DatasetWriter(root, VIEWS, 320, 240, video=video) as w:
        ep = w.begin_episode("pick")
        rng = np.random.default_rng(0)
        noise = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
        for r in range(40):
            row = synthetic_row(0, r)
            row.images = {v: np.roll(noise, r * 7 + k, axis=1) for k, v in enumerate(VIEWS)}
            ep.add_row(row)
        s = ep.save()
    waits = sum(e["waits"] for e in s.encoder.values())
    assert waits > 0 and all(e["high_water"] == 2 for e in s.encoder.values())
    meta = json.loads((root / L.a2w_episode_path(0)).read_text())
    assert meta["encoder_waits"] == waits
    assert any("encoding is not keeping up" in r.getMessage() for r in caplog.records)
    assert s.length == 40 and validate(root) == []  # every frame is in the video


def test_a_flood_of_refused_rows_keeps_the_episode_log_bounded_and_counted(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    with DatasetWriter(root, VIEWS, W, H) as w:
        ep = w.begin_episode("pick")
        for r in range(250):  # e.g. a camera at the wrong size: every row is refused
            row = synthetic_row(0, r)
            row.images = {**row.images, "front": row.images["front"][:, :-2]}
            with pytest.raises(RowRefused):
                ep.add_row(row)
        ep.add_row(synthetic_row(0, 0))
        ep.save()
    meta = json.loads((root / L.a2w_episode_path(0)).read_text())
    assert meta["refused_rows"] == 250
    assert len(meta["log"]) == ep.MAX_LOG_LINES and meta["log_suppressed"] == 250 - ep.MAX_LOG_LINES
