"""Episode control: the request and response of the recorder's ``/record/control`` service.

The same commands also arrive as ``EpisodeEvent`` on ``/episode/events`` (start and save and
discard; "rerecord" is a discard followed by a start of the same task), which is what a headset
button or a foot pedal publishes. The service answers with the outcome, the topic does not.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class EpisodeCommand(str, enum.Enum):
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
        try:
            object.__setattr__(self, "command", EpisodeCommand(self.command))
        except ValueError as exc:
            raise ValueError(f"command: unknown episode command {self.command!r}") from exc
        if not isinstance(self.task, str):
            raise ValueError(f"task: must be a string, got {type(self.task).__name__}")
        if self.command is EpisodeCommand.START and not self.task.strip():
            raise ValueError("task: a started episode needs its task instruction")
        if not isinstance(self.seed, int) or self.seed < -1:
            raise ValueError(f"seed: must be an integer >= -1, got {self.seed!r}")


@dataclass(frozen=True)
class EpisodeControlResponse:
    """``episode_index``: the episode the command acted on (-1 when none)."""

    success: bool
    message: str = ""
    episode_index: int = -1
