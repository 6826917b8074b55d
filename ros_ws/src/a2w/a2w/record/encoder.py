"""Video encoding off the hot path: one thread per camera, fed through a bounded queue.

The recorder hands each row's frame to the camera's encoder with ``put``. The queue is bounded
(memory stays flat) and measured (high-water mark, how often and how long a producer waited).
A full queue never drops a frame: a dropped frame would shorten the video against the data rows,
the silent misalignment LeRobot's streaming encoder has (shared/reference/anchors_runtime.md
§1b). The producer waits instead, each wait is counted and reported, and a wait longer than
``put_timeout`` fails the episode with an error that says the encoder could not keep up.

Frames get presentation time ``frame_index / fps`` exactly, so every frame sits on the time
LeRobot's loader queries (its tolerance is 1e-4 s).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

_STOP = object()


class EncoderError(RuntimeError):
    """The encoder failed (disk full, codec error) or could not keep up."""


@dataclass(frozen=True)
class VideoSettings:
    codec: str = "libx264"
    crf: int = 23
    # ultrafast: ~4 ms of one core per 640x480 frame here (veryfast ~13 ms), so three cameras at
    # 30 fps fit on a loaded 2-core machine; files are about twice veryfast's size
    preset: str = "ultrafast"
    gop: int = 10  # keyframe interval: random access for training loaders vs size
    threads: int = 1  # per encoder; three run side by side
    queue_size: int = 60  # frames per camera (2 s at 30 fps)
    put_timeout: float = 5.0  # s a producer may wait on a full queue before the episode fails


@dataclass
class QueueStats:
    high_water: int = 0
    waits: int = 0  # puts that found the queue full
    wait_s: float = 0.0
    max_wait_s: float = 0.0
    encode_s: float = 0.0  # CPU-side time spent in the codec (encoder thread)


class VideoEncoder:
    """Encodes one camera's frames of one episode to ``path`` (H.264 in MP4, yuv420p)."""

    def __init__(self, path: Path, width: int, height: int, fps: int, settings: VideoSettings,
                 name: str = "") -> None:
        self.path = path
        self.width, self.height, self.fps = width, height, fps
        self.settings = settings
        self.name = name or path.name
        self.stats = QueueStats()
        self.frames = 0  # encoded so far
        self._queue: queue.Queue = queue.Queue(maxsize=settings.queue_size)
        self._error: BaseException | None = None
        self._aborting = False
        self._thread = threading.Thread(target=self._run, name=f"encode-{self.name}", daemon=True)
        self._started = False

    def start(self) -> None:
        self._thread.start()
        self._started = True

    @property
    def error(self) -> BaseException | None:
        return self._error

    def put(self, frame_index: int, image: np.ndarray) -> None:
        """Queue one frame; waits (counted) while the queue is full; raises ``EncoderError``."""
        if self._error is not None:
            raise EncoderError(f"{self.name}: encoder failed: {self._error}") from self._error
        item = (frame_index, image)
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            t0 = time.perf_counter()
            deadline = t0 + self.settings.put_timeout
            while True:
                try:
                    self._queue.put(item, timeout=0.05)
                    break
                except queue.Full:
                    if self._error is not None:
                        raise EncoderError(f"{self.name}: encoder failed: {self._error}") from self._error
                    if time.perf_counter() > deadline:
                        raise EncoderError(
                            f"{self.name}: encoder cannot keep up: queue of {self.settings.queue_size} "
                            f"frames full for {self.settings.put_timeout:.1f} s") from None
            waited = time.perf_counter() - t0
            self.stats.waits += 1
            self.stats.wait_s += waited
            self.stats.max_wait_s = max(self.stats.max_wait_s, waited)
            if self.stats.waits in (1, 10, 100) or self.stats.waits % 1000 == 0:
                log.warning("%s: encoder queue full (%d frames), the recorder waited %.1f ms; "
                            "%d waits so far: encoding is not keeping up", self.name,
                            self.settings.queue_size, waited * 1e3, self.stats.waits)
        self.stats.high_water = max(self.stats.high_water, self._queue.qsize())

    def finish(self) -> int:
        """Flush and close the file; returns the number of frames encoded. Raises ``EncoderError``."""
        while self._thread.is_alive():  # a dead encoder thread never empties a full queue
            try:
                self._queue.put(_STOP, timeout=0.1)
                break
            except queue.Full:
                continue
        self._thread.join()
        if self._error is not None:
            raise EncoderError(f"{self.name}: encoder failed: {self._error}") from self._error
        return self.frames

    def abort(self) -> None:
        """Stop without caring about the file (the episode is being thrown away)."""
        if not self._started:
            return
        self._aborting = True  # frames drained below are missed on purpose: no error for them
        while True:  # make room for the stop marker without blocking on a dead consumer
            try:
                self._queue.put_nowait(_STOP)
                break
            except queue.Full:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    pass
        self._thread.join(timeout=10.0)

    def _run(self) -> None:
        import av

        container = None
        try:
            container = av.open(str(self.path), mode="w", format="mp4")
            stream = container.add_stream(self.settings.codec, rate=self.fps)
            stream.width, stream.height = self.width, self.height
            stream.pix_fmt = "yuv420p"
            stream.codec_context.time_base = Fraction(1, self.fps)
            stream.codec_context.gop_size = self.settings.gop
            stream.options = {"crf": str(self.settings.crf), "preset": self.settings.preset,
                              "threads": str(self.settings.threads)}
            while True:
                item = self._queue.get()
                if item is _STOP:
                    break
                if self._aborting:
                    break
                index, image = item
                if index != self.frames:
                    raise EncoderError(f"frame {index} arrived when {self.frames} was due")
                t0 = time.perf_counter()
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                frame.pts = index
                frame.time_base = Fraction(1, self.fps)
                for packet in stream.encode(frame):
                    container.mux(packet)
                self.stats.encode_s += time.perf_counter() - t0
                self.frames += 1
            if self._error is None and not self._aborting:
                for packet in stream.encode():
                    container.mux(packet)
        except BaseException as exc:  # noqa: BLE001 - reported to the producer, never lost
            self._error = exc
            log.error("%s: encoder failed: %s", self.name, exc)
            while True:  # release a producer blocked on the full queue
                try:
                    if self._queue.get_nowait() is _STOP:
                        break
                except queue.Empty:
                    break
        finally:
            if container is not None:
                try:
                    container.close()
                except BaseException as exc:  # noqa: BLE001 - e.g. disk full while writing the index
                    if self._error is None:
                        self._error = exc
                        log.error("%s: closing the video failed: %s", self.name, exc)
