"""The policy's runtime core, ROS-free and clock-free: the timed action queue and its executor step
(``queue``), and the scheduler that requests chunks and merges them with real-time chunking
(``scheduler``). The policy node (issue 16) wires them to a timer and an inference worker."""

from a2w.policy.queue import ActionQueue, Tick
from a2w.policy.scheduler import ChunkRequest, ChunkResult, ChunkScheduler, DelayWindow, Mode

__all__ = ["ActionQueue", "ChunkRequest", "ChunkResult", "ChunkScheduler", "DelayWindow", "Mode", "Tick"]
