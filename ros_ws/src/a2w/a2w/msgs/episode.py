"""Messages of episode recording: start, save, discard, mark (a2w_interfaces/msg/EpisodeEvent)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from a2w.msgs.checks import enum_member, finite_scalar


class EpisodeEventKind(str, enum.Enum):
    START = "start"
    SAVE = "save"
    DISCARD = "discard"
    MARK = "mark"  # an annotation inside the episode (e.g. subtask boundary)


@dataclass(frozen=True)
class EpisodeEvent:
    kind: EpisodeEventKind
    stamp: float
    episode_index: int = -1  # -1 while unknown (assigned by the recorder)
    task: str = ""
    note: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", enum_member("kind", EpisodeEventKind, self.kind))
        object.__setattr__(self, "stamp", finite_scalar("stamp", self.stamp))
        if not isinstance(self.episode_index, (int, np.integer)) or self.episode_index < -1:
            raise ValueError(f"episode_index: must be an integer >= -1, got {self.episode_index!r}")
