"""A calibration capture: images of the board from one camera, each with the arm's TCP pose when
the camera rides on (or the board is seen by) an arm. The sim renders one (a2w.calib.sim_capture);
on a real rig it is recorded into a folder and the same solvers read it.

Folder format (``capture.yaml`` next to the images)::

    schema: a2w-calibration-capture/1
    view: left_wrist              # front | left_wrist | right_wrist
    arm: left                     # the arm whose TCP poses are recorded (wrist captures); optional
    board_in_world:               # where the board lies (world -> board frame); front/bases only
      translation: [x, y, z]
      rotation_xyzw: [x, y, z, w]
    frames:
      - image: 000.png            # the colour image as the camera driver publishes it (RGB/BGR PNG)
        tcp_in_base:              # <arm>_base -> <arm>_tcp at the image's stamp (arm at rest)
          translation: [...]
          rotation_xyzw: [...]

Record with the arm at rest at each pose (no motion blur, no stamp skew between image and pose).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import yaml

from a2w.calib.files import ARMS, VIEWS, CalibrationError, Transform, _Reader

CAPTURE_SCHEMA = "a2w-calibration-capture/1"


@dataclass
class Frame:
    image: np.ndarray  # RGB uint8
    tcp_in_base: Transform | None


@dataclass
class Capture:
    view: str
    arm: str | None
    board_in_world: Transform | None
    frames: list[Frame] = field(default_factory=list)


def save_capture(capture: Capture, folder: Path | str) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    doc: dict = {"schema": CAPTURE_SCHEMA, "view": capture.view}
    if capture.arm:
        doc["arm"] = capture.arm
    if capture.board_in_world is not None:
        doc["board_in_world"] = capture.board_in_world.to_yaml()
    doc["frames"] = []
    for i, f in enumerate(capture.frames):
        name = f"{i:03d}.png"
        cv2.imwrite(str(folder / name), cv2.cvtColor(f.image, cv2.COLOR_RGB2BGR))
        entry: dict = {"image": name}
        if f.tcp_in_base is not None:
            entry["tcp_in_base"] = f.tcp_in_base.to_yaml()
        doc["frames"].append(entry)
    path = folder / "capture.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def load_capture(folder: Path | str) -> Capture:
    """Read a capture folder; ``CalibrationError`` names ``capture.yaml`` and the field."""
    folder = Path(folder)
    path = folder / "capture.yaml"
    r = _Reader(path)
    if not path.is_file():
        raise r.fail(None, "missing file (a capture folder holds capture.yaml and its images)")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise r.fail(None, f"not valid YAML: {exc}") from None
    doc = r.mapping(doc, "")
    if doc.get("schema") != CAPTURE_SCHEMA:
        raise r.fail("schema", f"expected {CAPTURE_SCHEMA!r}, got {doc.get('schema')!r}")
    view = r.get(doc, "view", "")
    if view not in VIEWS:
        raise r.fail("view", f"expected one of {', '.join(VIEWS)}, got {view!r}")
    arm = doc.get("arm")
    if arm is not None and arm not in ARMS:
        raise r.fail("arm", f"expected one of {', '.join(ARMS)}, got {arm!r}")
    board = None
    if doc.get("board_in_world") is not None:
        board = r.transform(doc["board_in_world"], "board_in_world", "world", "board")
    items = r.get(doc, "frames", "")
    if not isinstance(items, list) or not items:
        raise r.fail("frames", "expected a non-empty list")
    frames = []
    for i, item in enumerate(items):
        item = r.mapping(item, f"frames[{i}]")
        name = r.string(r.get(item, "image", f"frames[{i}]"), f"frames[{i}].image")
        bgr = cv2.imread(str(folder / name), cv2.IMREAD_COLOR)
        if bgr is None:
            raise r.fail(f"frames[{i}].image", f"cannot read image {folder / name}")
        tcp = None
        if item.get("tcp_in_base") is not None:
            tcp = r.transform(item["tcp_in_base"], f"frames[{i}].tcp_in_base", "base", "tcp")
        frames.append(Frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), tcp))
    return Capture(view=view, arm=arm, board_in_world=board, frames=frames)


def require(capture: Capture, source: str, *, tcp: bool = False, board: bool = False) -> None:
    """Check a capture has what a solver needs; ``CalibrationError`` names what is missing."""
    if tcp:
        missing = [i for i, f in enumerate(capture.frames) if f.tcp_in_base is None]
        if capture.arm is None:
            raise CalibrationError(source, "arm", "missing (needed for TCP poses)")
        if missing:
            raise CalibrationError(source, f"frames[{missing[0]}].tcp_in_base", "missing")
    if board and capture.board_in_world is None:
        raise CalibrationError(source, "board_in_world", "missing (needed to place the result in the world)")
