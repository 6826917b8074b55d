"""Plumbing between the arm node and an RDK worker process (stdlib only; both sides import it).

* Requests and replies, and the worker's state stream, travel as pickled tuples over a
  ``multiprocessing.connection.Connection`` on an inherited socket (not stdout: RDK logs there).
* Streaming targets go through ``TargetSlot``, a small shared file mapped on both sides with a
  sequence lock: the node overwrites it at its command rate without ever blocking, and the
  worker always reads the newest target, whatever it was doing in between (latest wins).
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass

# seq (u64), then: stamp, pose x y z qw qx qy qz (RDK order), gripper width (m, NaN = none),
# max_linear_vel, max_angular_vel, max_linear_acc, max_angular_acc.
_SEQ = struct.Struct("<Q")
_DATA = struct.Struct("<13d")
SLOT_SIZE = _SEQ.size + _DATA.size


@dataclass(frozen=True)
class SlotTarget:
    seq: int
    stamp: float
    pose: tuple[float, ...]  # 7, [x, y, z, qw, qx, qy, qz]
    gripper_width: float
    limits: tuple[float, float, float, float]


class TargetSlot:
    """Single-writer, single-reader latest-target mailbox in a mapped file."""

    def __init__(self, path: str, create: bool = False) -> None:
        self.path = path
        flags = os.O_RDWR | (os.O_CREAT if create else 0)
        fd = os.open(path, flags, 0o600)
        try:
            if create:
                os.ftruncate(fd, SLOT_SIZE)
            self._mm = mmap.mmap(fd, SLOT_SIZE)
        finally:
            os.close(fd)
        self._seq = _SEQ.unpack_from(self._mm, 0)[0] if not create else 0

    def write(self, stamp: float, pose: tuple[float, ...], gripper_width: float,
              limits: tuple[float, float, float, float]) -> int:
        seq = self._seq + 2
        _SEQ.pack_into(self._mm, 0, seq - 1)  # odd: write in progress
        _DATA.pack_into(self._mm, _SEQ.size, stamp, *pose, gripper_width, *limits)
        _SEQ.pack_into(self._mm, 0, seq)
        self._seq = seq
        return seq // 2

    def read(self) -> SlotTarget | None:
        for _ in range(100):
            s1 = _SEQ.unpack_from(self._mm, 0)[0]
            if s1 % 2:
                continue
            data = _DATA.unpack_from(self._mm, _SEQ.size)
            if _SEQ.unpack_from(self._mm, 0)[0] == s1:
                if s1 == 0:
                    return None
                return SlotTarget(s1 // 2, data[0], tuple(data[1:8]), data[8], tuple(data[9:13]))  # type: ignore[arg-type]
        return None

    def close(self) -> None:
        try:
            self._mm.close()
        except (BufferError, ValueError):
            pass
