"""The ChArUco calibration board: its definition (``calibration/board.yaml``), the OpenCV board,
and its printable image.

The board frame is OpenCV's: origin at the board's outer corner that is top-left in the printed
image, x along the squares_x columns (image right), y along the rows (image down), z into the
board (x × y), so a camera facing the printed side sees z pointing away from it. Keep the
printed board flat (glued on glass or aluminium) and measure the printed square size: the
measured value goes into board.yaml, not the nominal one.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml

from a2w.calib.files import CalibrationError

BOARD_SCHEMA = "a2w-calibration-board/1"
DEFAULT_BOARD_FILE = Path(__file__).resolve().parents[5] / "calibration" / "board.yaml"


@dataclass(frozen=True)
class BoardSpec:
    """A ChArUco board: ``squares_x`` x ``squares_y`` chessboard squares of ``square_length`` m,
    ArUco markers of ``marker_length`` m from ``dictionary`` in the white squares."""

    squares_x: int = 7
    squares_y: int = 5
    square_length: float = 0.04
    marker_length: float = 0.03
    dictionary: str = "DICT_4X4_50"

    def __post_init__(self) -> None:
        if self.squares_x < 2 or self.squares_y < 2:
            raise ValueError("squares_x/squares_y: at least 2 each")
        if not (math.isfinite(self.square_length) and self.square_length > 0):
            raise ValueError(f"square_length: must be positive, got {self.square_length}")
        if not (math.isfinite(self.marker_length) and 0 < self.marker_length < self.square_length):
            raise ValueError(f"marker_length: must be in (0, square_length), got {self.marker_length}")
        if not self.dictionary.startswith("DICT_") or not hasattr(cv2.aruco, self.dictionary):
            raise ValueError(f"dictionary: unknown ArUco dictionary {self.dictionary!r}")
        need = self.squares_x * self.squares_y // 2
        size = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, self.dictionary)).bytesList.shape[0]
        if need > size:
            raise ValueError(f"dictionary: {self.dictionary} has {size} markers, the board needs {need}")

    @property
    def size(self) -> tuple[float, float]:
        """Width (x) and height (y) of the chessboard area in metres."""
        return self.squares_x * self.square_length, self.squares_y * self.square_length

    def board(self) -> cv2.aruco.CharucoBoard:
        d = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, self.dictionary))
        return cv2.aruco.CharucoBoard((self.squares_x, self.squares_y), self.square_length,
                                      self.marker_length, d)

    def corners(self) -> np.ndarray:
        """(N, 3) chessboard inner corners in the board frame, in ChArUco id order."""
        return np.asarray(self.board().getChessboardCorners(), dtype=np.float64)

    def image(self, px_per_square: int = 200, margin_squares: float = 0.5) -> np.ndarray:
        """Grey uint8 image of the board with a white margin of ``margin_squares`` squares."""
        margin = int(round(margin_squares * px_per_square))
        w = self.squares_x * px_per_square + 2 * margin
        h = self.squares_y * px_per_square + 2 * margin
        return self.board().generateImage((w, h), marginSize=margin, borderBits=1)

    def to_yaml(self) -> dict:
        return {"schema": BOARD_SCHEMA, "squares_x": self.squares_x, "squares_y": self.squares_y,
                "square_length": self.square_length, "marker_length": self.marker_length,
                "dictionary": self.dictionary}


def load_board(path: Path | str = DEFAULT_BOARD_FILE) -> BoardSpec:
    """The board of a ``board.yaml``; ``CalibrationError`` names the file and the field."""
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(path, None, "missing file (write one with `a2w calib board --yaml`)")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise CalibrationError(path, None, f"not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise CalibrationError(path, None, "expected a mapping")
    if doc.get("schema") != BOARD_SCHEMA:
        raise CalibrationError(path, "schema", f"expected {BOARD_SCHEMA!r}, got {doc.get('schema')!r}")
    kinds = {"squares_x": int, "squares_y": int, "square_length": float, "marker_length": float, "dictionary": str}
    vals = {}
    for key, kind in kinds.items():
        if key not in doc:
            raise CalibrationError(path, key, "missing")
        v = doc[key]
        ok = isinstance(v, str) if kind is str else (isinstance(v, (int, float)) and not isinstance(v, bool)
                                                      and (kind is float or isinstance(v, int)))
        if not ok:
            raise CalibrationError(path, key, f"expected {kind.__name__}, got {v!r}")
        vals[key] = kind(v)
    extra = sorted(set(doc) - set(kinds) - {"schema"})
    if extra:
        raise CalibrationError(path, extra[0], "unknown field")
    try:
        return BoardSpec(**vals)
    except ValueError as exc:
        field, _, msg = str(exc).partition(": ")
        raise CalibrationError(path, field, msg) from None


def write_board_yaml(spec: BoardSpec, path: Path | str) -> None:
    Path(path).write_text(yaml.safe_dump(spec.to_yaml(), sort_keys=False))


def write_board_image(spec: BoardSpec, path: Path | str, dpi: float = 300.0, margin_squares: float = 0.5) -> Path:
    """Write the board for printing: PNG (or PDF by suffix) at ``dpi`` so that it prints at true
    scale (a square is ``square_length`` m at 100 % scale)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    px = int(round(spec.square_length / 0.0254 * dpi))
    img = spec.image(px, margin_squares)
    from PIL import Image

    Image.fromarray(img).save(path, resolution=dpi, dpi=(dpi, dpi)) if path.suffix.lower() == ".pdf" \
        else Image.fromarray(img).save(path, dpi=(dpi, dpi))
    return path


def texture_file(spec: BoardSpec, px_per_square: int = 128, margin_squares: float = 0.5) -> Path:
    """A PNG of the board for the sim scene's texture, cached by content (MJCF references files)."""
    img = spec.image(px_per_square, margin_squares)
    ok, png = cv2.imencode(".png", img)
    if not ok:
        raise RuntimeError("could not encode the board texture")
    data = png.tobytes()
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path(tempfile.gettempdir())) / "a2w-calib"
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"board-{hashlib.sha256(data).hexdigest()[:16]}.png"
    if not path.exists():
        fd, tmp = tempfile.mkstemp(dir=root, suffix=".png")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    return path
