"""What the policy sees: the camera views paired by stamp and the TCP poses measured with them.

The camera frames go through the shared ``FramePairer`` (spread limit, DESIGN.md §5) and are
resized to the model's input size; the arm state nearest to the observation's stamp gives the
poses a chunk's deltas are composed onto (DESIGN.md §4). No threads, no clock: the node passes
``now``. A refusal says why, so the node can report it and hold instead of requesting.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from a2w.cameras.pairing import FramePairer
from a2w.msgs.arms import RigState
from a2w.msgs.cameras import VIEW_IDS, CameraFrame
from a2w.msgs.common import Pose

DEFAULT_STATE_GAP = 0.05  # s: the arm state used must be this close to the observation's stamp


@dataclass(frozen=True)
class Observation:
    """One policy input: images by release view id (uint8 (H, W, 3) at the model's size), their stamps,
    the chunk reference ``stamp`` (the newest view, as ``PolicyEngine`` takes it) and the measured poses."""

    images: dict[int, np.ndarray]
    stamps: dict[int, float]
    stamp: float
    measured: tuple[Pose, Pose]
    spread: float


@dataclass(frozen=True)
class Refusal:
    """Why no observation is usable now; ``kind`` is a short key for the diagnostics counts."""

    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


class PolicyInputs:
    """Buffers camera frames and arm states; :meth:`observe` builds the newest usable observation."""

    def __init__(self, views: Sequence[str], image_size: tuple[int, int], max_spread: float,
                 max_age: float, state_gap: float = DEFAULT_STATE_GAP, state_history: int = 256) -> None:
        unknown = [v for v in views if v not in VIEW_IDS]
        if unknown:
            raise ValueError(f"views: {unknown} are not rig views {sorted(VIEW_IDS)}")
        if not (math.isfinite(max_age) and max_age > 0 and math.isfinite(state_gap) and state_gap > 0):
            raise ValueError(f"max_age and state_gap must be positive seconds, got {max_age}, {state_gap}")
        self.views = tuple(views)
        self.view_ids = tuple(VIEW_IDS[v] for v in self.views)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.pairer = FramePairer(self.views, max_spread=max_spread, max_age=max_age)
        self.state_gap = float(state_gap)
        self._states: deque[RigState] = deque(maxlen=state_history)
        self.last_stamp: float | None = None  # reference stamp of the last observation handed out

    def add_frame(self, frame: CameraFrame) -> None:
        self.pairer.add(frame)

    def add_state(self, state: RigState) -> None:
        if self._states and state.stamp <= self._states[-1].stamp:
            if state.stamp == self._states[-1].stamp:
                return
            self._states.clear()  # the clock went back (a restarted sim): the old timeline is gone
        self._states.append(state)

    @property
    def latest_state(self) -> RigState | None:
        return self._states[-1] if self._states else None

    def state_at(self, stamp: float) -> RigState | None:
        """The buffered state nearest to ``stamp`` within ``state_gap``."""
        if not self._states:
            return None
        stamps = [s.stamp for s in self._states]
        i = bisect.bisect_left(stamps, stamp)
        best = min((j for j in (i - 1, i) if 0 <= j < len(stamps)), key=lambda j: abs(stamps[j] - stamp))
        return self._states[best] if abs(stamps[best] - stamp) <= self.state_gap else None

    def observe(self, now: float) -> Observation | Refusal:
        """The newest paired set, not older than ``max_age`` and newer than the last one used."""
        result = self.pairer.pair(target=now, after=self.last_stamp)
        if not result.ok:
            return Refusal(f"cameras_{result.reason.value}" if result.reason else "cameras", result.detail)
        obs = result.observation
        frames = [obs.frames[v] for v in self.views]
        stamp = max(f.stamp for f in frames)
        state = self.state_at(stamp)
        if state is None:
            latest = self.latest_state
            have = f"newest at {latest.stamp:.3f}" if latest else "none yet"
            return Refusal("arm_state", f"no /arms/state within {self.state_gap * 1e3:.0f} ms of the observation "
                                        f"at {stamp:.3f} ({have})")
        stale = [name for name in ("left", "right") if not getattr(state, name).fresh]
        if stale:
            return Refusal("arm_state", f"arm data of {stale} not fresh at {state.stamp:.3f}")
        h, w = self.image_size
        images = {}
        # Area interpolation as the release trains (a2world.policy.engine.resize_view, which needs torch).
        for vid, f in zip(self.view_ids, frames):
            img = f.image if f.image.shape[:2] == (h, w) else cv2.resize(f.image, (w, h), interpolation=cv2.INTER_AREA)
            images[vid] = np.ascontiguousarray(img)
        self.last_stamp = obs.stamp
        return Observation(images, {vid: f.stamp for vid, f in zip(self.view_ids, frames)}, stamp,
                           (state.left.tcp_pose, state.right.tcp_pose), obs.spread)
