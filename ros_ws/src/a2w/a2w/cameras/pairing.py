"""Multi-view pairing: one frame per view, by stamp, within a spread limit.

The wrist D405s have no hardware-sync pins, so the three cameras free-run at 30 fps on librealsense
global time and consumers match frames in software (ros2_facts.md §1.1 "Hardware sync"). This
module is that matcher, shared by the policy, shadow and recorder nodes (docs/architecture.md §6):

* ``FramePairer.add(frame)`` keeps a small ring of recent frames per view;
* ``FramePairer.pair(target)`` picks, for a target time, the set of one frame per view whose stamps
  lie within ``max_spread`` (default 16 ms, about half a frame period) and whose median stamp is
  closest to the target, and returns a ``PairResult`` that either holds the
  ``MultiViewObservation`` or says why no set was usable.

No threads, no I/O: callers feed it from subscription callbacks. A lock makes it safe for one
thread adding while another pairs (an inference worker reading the latest set).
"""

from __future__ import annotations

import enum
import math
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from a2w.msgs.cameras import VIEW_NAMES, CameraFrame, MultiViewObservation

DEFAULT_MAX_SPREAD = 0.016  # s; < half of a 30 fps period (ros2_facts.md §1.1)
DEFAULT_BUFFER = 8  # frames per view, ~270 ms at 30 fps


class RejectReason(str, enum.Enum):
    """Why ``pair`` returned no observation."""

    MISSING_VIEW = "missing_view"  # a view has no buffered frame at all
    SPREAD = "spread"  # frames exist, but no set lies within the spread limit
    STALE = "stale"  # the best set is further from the target than ``max_age``
    NOT_NEWER = "not_newer"  # the best set is not newer than the ``after`` bound


@dataclass(frozen=True)
class PairResult:
    """Outcome of one pairing attempt.

    ``spread`` is the spread (max - min stamp, seconds) of the best candidate set, whether it was
    accepted or not (NaN when a view had no frame). ``reason`` is None when ``observation`` is set.
    """

    observation: MultiViewObservation | None
    spread: float
    reason: RejectReason | None = None
    detail: str = ""
    stamps: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.observation is not None

    def __str__(self) -> str:
        if self.ok:
            return f"paired {len(self.stamps)} views, spread {self.spread * 1e3:.1f} ms"
        return f"rejected ({self.reason.value if self.reason else '?'}): {self.detail}"


@dataclass
class PairingStats:
    """Running counts for diagnostics: accepted sets and rejections by reason (each result
    carries its own spread)."""

    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=lambda: {r.value: 0 for r in RejectReason})


def _fmt_stamps(stamps: dict[str, float], ref: float) -> str:
    return ", ".join(f"{v} {1e3 * (t - ref):+.1f} ms" for v, t in stamps.items())


def best_set(
    buffers: dict[str, Sequence[CameraFrame]], target: float, max_spread: float
) -> tuple[dict[str, CameraFrame], float, bool]:
    """The best one-frame-per-view set for ``target``.

    Every buffered frame is tried as an anchor; each other view contributes its frame nearest to
    the anchor. Among candidate sets within ``max_spread`` the one whose median stamp is closest to
    ``target`` wins (ties: smaller spread). If none is within the limit, the set with the smallest
    spread is returned with ``within=False`` so the caller can report how far off it was.
    Returns ``(frames, spread, within)``. All views must have at least one frame.
    """
    views = list(buffers)
    stamps = {v: np.array([f.stamp for f in buffers[v]]) for v in views}
    best: tuple[float, float] | None = None  # (distance to target, spread) of best valid set
    best_frames: dict[str, CameraFrame] = {}
    tightest: tuple[float, float] | None = None  # (spread, distance) of the tightest set
    tight_frames: dict[str, CameraFrame] = {}
    seen: set[tuple[int, ...]] = set()
    for anchor_view in views:
        for anchor in stamps[anchor_view]:
            idx = tuple(int(np.argmin(np.abs(stamps[v] - anchor))) for v in views)
            if idx in seen:
                continue
            seen.add(idx)
            chosen = [float(stamps[v][i]) for v, i in zip(views, idx)]
            spread = max(chosen) - min(chosen)
            dist = abs(float(np.median(chosen)) - target)
            frames = {v: buffers[v][i] for v, i in zip(views, idx)}
            if spread <= max_spread and (best is None or (dist, spread) < best):
                best, best_frames = (dist, spread), frames
            if tightest is None or (spread, dist) < tightest:
                tightest, tight_frames = (spread, dist), frames
    if best is not None:
        return best_frames, best[1], True
    assert tightest is not None
    return tight_frames, tightest[0], False


class FramePairer:
    """Buffers recent frames per view and pairs them by stamp (see module docstring).

    ``max_age``: if set, a set whose median stamp is further than this from the target is
    rejected as stale (e.g. a camera froze and only old frames are left to pair).
    """

    def __init__(
        self,
        views: Iterable[str] = VIEW_NAMES,
        max_spread: float = DEFAULT_MAX_SPREAD,
        buffer: int = DEFAULT_BUFFER,
        max_age: float | None = None,
    ) -> None:
        self.views: tuple[str, ...] = tuple(views)
        if not self.views:
            raise ValueError("views: at least one view is required")
        if len(set(self.views)) != len(self.views):
            raise ValueError(f"views: duplicate names in {self.views}")
        if not (isinstance(max_spread, (int, float)) and math.isfinite(max_spread) and max_spread >= 0):
            raise ValueError(f"max_spread: must be a finite number >= 0 seconds, got {max_spread!r}")
        if not isinstance(buffer, int) or buffer < 1:
            raise ValueError(f"buffer: must be an integer >= 1, got {buffer!r}")
        if max_age is not None and not max_age > 0:
            raise ValueError(f"max_age: must be positive seconds or None, got {max_age!r}")
        self.max_spread = float(max_spread)
        self.max_age = max_age
        self._buffers: dict[str, deque[CameraFrame]] = {v: deque(maxlen=buffer) for v in self.views}
        self._lock = threading.Lock()
        self.stats = PairingStats()

    def add(self, frame: CameraFrame) -> None:
        """Buffer ``frame``. Frames of unknown views raise ``ValueError``; a frame older than the
        newest of its view (a restarted or replayed camera) clears that view's buffer first, so
        the old timeline never pairs with the new one."""
        buf = self._buffers.get(frame.view)
        if buf is None:
            raise ValueError(f"frame.view: {frame.view!r} is not one of {self.views}")
        with self._lock:
            if buf and frame.stamp <= buf[-1].stamp:
                if frame.stamp == buf[-1].stamp:
                    return  # the same frame delivered twice
                buf.clear()
            buf.append(frame)

    def clear(self) -> None:
        with self._lock:
            for buf in self._buffers.values():
                buf.clear()

    def newest(self, view: str) -> CameraFrame | None:
        with self._lock:
            buf = self._buffers[view]
            return buf[-1] if buf else None

    def pair(self, target: float | None = None, after: float | None = None) -> PairResult:
        """Pick the best set for ``target`` (default: the newest buffered stamp, i.e. "latest").

        ``after``: only accept a set whose median stamp is greater (a recorder or policy that must
        not see the same set twice passes the stamp of the last set it used).
        """
        with self._lock:
            buffers = {v: list(b) for v, b in self._buffers.items()}
        missing = [v for v, b in buffers.items() if not b]
        if missing:
            return self._reject(RejectReason.MISSING_VIEW, math.nan,
                                f"no frame yet from view(s) {missing}", {})
        if target is None:
            target = max(b[-1].stamp for b in buffers.values())
        frames, spread, within = best_set(buffers, float(target), self.max_spread)
        stamps = {v: f.stamp for v, f in frames.items()}
        if not within:
            return self._reject(
                RejectReason.SPREAD, spread,
                f"tightest set spreads {spread * 1e3:.1f} ms > limit {self.max_spread * 1e3:.1f} ms "
                f"({_fmt_stamps(stamps, min(stamps.values()))})", stamps)
        obs = MultiViewObservation(frames)
        if self.max_age is not None and abs(obs.stamp - target) > self.max_age:
            return self._reject(
                RejectReason.STALE, spread,
                f"best set is {abs(obs.stamp - target) * 1e3:.1f} ms from the target "
                f"(limit {self.max_age * 1e3:.1f} ms; {_fmt_stamps(stamps, target)})", stamps)
        if after is not None and obs.stamp <= after:
            return self._reject(
                RejectReason.NOT_NEWER, spread,
                f"best set (stamp {obs.stamp:.6f}) is not newer than {after:.6f}", stamps)
        self.stats.accepted += 1
        return PairResult(obs, spread, None, "", stamps)

    def _reject(self, reason: RejectReason, spread: float, detail: str,
                stamps: dict[str, float]) -> PairResult:
        self.stats.rejected[reason.value] += 1
        return PairResult(None, spread, reason, detail, stamps)


def pair_frames(
    frames_by_view: dict[str, Sequence[CameraFrame]],
    target: float,
    max_spread: float = DEFAULT_MAX_SPREAD,
) -> PairResult:
    """One-shot pairing over given frame lists (offline use: recorder export, tests)."""
    pairer = FramePairer(frames_by_view, max_spread=max_spread,
                         buffer=max(1, max((len(v) for v in frames_by_view.values()), default=1)))
    for view, frames in frames_by_view.items():
        for f in sorted(frames, key=lambda f: f.stamp):
            if f.view != view:
                raise ValueError(f"frames_by_view[{view!r}]: contains a frame of view {f.view!r}")
            pairer.add(f)
    return pairer.pair(target)
