"""The ChArUco board: the generated printable image is detectable (every inner corner, at the right
place), board.yaml errors name the file and the field, and default scenes carry no board."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from a2w.calib.board import DEFAULT_BOARD_FILE, BoardSpec, load_board
from a2w.calib.charuco import detect
from a2w.calib.files import CalibrationError
from a2w.cli import main


def test_generated_board_is_detectable(tmp_path: Path, capsys) -> None:
    out = tmp_path / "print" / "board.png"
    assert main(["calib", "board", "--out", str(out), "--pdf", "--dpi", "100"]) == 0
    assert out.is_file() and out.with_suffix(".pdf").is_file()
    assert out.with_suffix(".pdf").read_bytes().startswith(b"%PDF")
    spec = load_board(DEFAULT_BOARD_FILE)
    img = cv2.imread(str(out), cv2.IMREAD_GRAYSCALE)
    det = detect(img, spec)
    n = (spec.squares_x - 1) * (spec.squares_y - 1)
    assert det is not None and len(det) == n
    # At true scale: the corners sit on the square grid (100 dpi, half-square margin).
    px = spec.square_length / 0.0254 * 100
    want = spec.corners()[det.ids, :2] / spec.square_length * round(px) + round(0.5 * round(px))
    assert np.abs(det.pixels - want).max() < 1.5
    assert "280 x 200 mm" in capsys.readouterr().out


def test_no_board_no_detection() -> None:
    spec = BoardSpec()
    assert detect(np.full((480, 640, 3), 200, np.uint8), spec) is None
    other = BoardSpec(dictionary="DICT_5X5_50")  # same layout, other markers: not this board
    assert detect(other.image(80), spec) is None


@pytest.mark.parametrize("edit,field,words", [
    (lambda d: d.pop("square_length"), "square_length", "missing"),
    (lambda d: d.update(squares_x="7"), "squares_x", "expected int"),
    (lambda d: d.update(squares_y=4.0), "squares_y", "expected int"),
    (lambda d: d.update(marker_length=0.05), "marker_length", "must be in (0, square_length)"),
    (lambda d: d.update(square_length=float("nan")), "square_length", "must be positive"),
    (lambda d: d.update(dictionary="DICT_9X9_1"), "dictionary", "unknown ArUco dictionary"),
    (lambda d: d.update(squares_x=20, squares_y=20), "dictionary", "has 50 markers"),
    (lambda d: d.update(schema="other"), "schema", "expected"),
    (lambda d: d.update(colour="red"), "colour", "unknown field"),
])
def test_bad_board_file_names_file_and_field(tmp_path: Path, edit, field, words) -> None:
    doc = yaml.safe_load(DEFAULT_BOARD_FILE.read_text())
    edit(doc)
    path = tmp_path / "board.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(CalibrationError) as exc:
        load_board(path)
    assert str(exc.value).startswith(f"{path}: {field}: ") and words in str(exc.value), str(exc.value)


def test_missing_board_file(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match="board.yaml: missing file"):
        load_board(tmp_path / "board.yaml")


def test_default_scenes_have_no_board() -> None:
    from a2w.sim.scene import SceneConfig, build_mjcf

    for task in ("pick_cube", "none"):
        cfg = SceneConfig(task=task)
        assert cfg.board is None and "calib_board" not in build_mjcf(cfg)
