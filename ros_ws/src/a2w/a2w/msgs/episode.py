"""Messages of episode recording: start, save, discard, mark (a2w_interfaces/msg/EpisodeEvent), and the
recorder's episode control service (a2w_interfaces/srv/EpisodeControl)."""

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


class EpisodeCommand(str, enum.Enum):
    """What the recorder's ``/record/control`` service is asked to do (a2w_interfaces/srv/EpisodeControl)."""

    START = "start"
    SAVE = "save"
    DISCARD = "discard"
    RERECORD = "rerecord"  # discard the episode in progress and start again with its task


@dataclass(frozen=True)
class EpisodeControlRequest:
    """``task``: the instruction of the episode to start (START; RERECORD keeps the current one).
    ``seed``: recorded with the episode (the sim's seed; -1 when there is none)."""

    command: EpisodeCommand
    task: str = ""
    seed: int = -1

    def __post_init__(self) -> None:
        object.__setattr__(self, "command", enum_member("command", EpisodeCommand, self.command))
        if not isinstance(self.task, str):
            raise ValueError(f"task: must be a string, got {type(self.task).__name__}")
        if self.command is EpisodeCommand.START and not self.task.strip():
            raise ValueError("task: a started episode needs its task instruction")
        if not isinstance(self.seed, (int, np.integer)) or self.seed < -1:
            raise ValueError(f"seed: must be an integer >= -1, got {self.seed!r}")


@dataclass(frozen=True)
class EpisodeControlResponse:
    """``episode_index``: the episode the command acted on (-1 when none)."""

    success: bool
    message: str = ""
    episode_index: int = -1
