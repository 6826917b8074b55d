"""Quality-of-service profiles, kept in one place so every node agrees (ros2_facts.md §6)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Reliability(str, enum.Enum):
    BEST_EFFORT = "best_effort"
    RELIABLE = "reliable"


@dataclass(frozen=True)
class QoS:
    """Keep-last ``depth`` queue. ``latched`` keeps the last message for late subscribers.

    In-process semantics: a subscription's queue holds at most ``depth`` messages; when full the
    oldest is dropped and counted. With depth 1 that is "newest wins" (sensor streams).
    """

    reliability: Reliability = Reliability.RELIABLE
    depth: int = 10
    latched: bool = False

    def __post_init__(self) -> None:
        if self.depth < 1:
            raise ValueError(f"depth: must be >= 1, got {self.depth}")

    @staticmethod
    def sensor() -> "QoS":
        """Camera frames and other streams where only the newest sample matters."""
        return QoS(Reliability.BEST_EFFORT, 1)

    @staticmethod
    def reliable(depth: int = 10) -> "QoS":
        """Commands, targets, chunks, events: nothing silently lost while the queue has room."""
        return QoS(Reliability.RELIABLE, depth)

    @staticmethod
    def latched_state() -> "QoS":
        """Configuration and mode that late joiners need (transient local, depth 1)."""
        return QoS(Reliability.RELIABLE, 1, latched=True)
